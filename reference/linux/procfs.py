"""Parsers for the /proc files the runtime and the conformance suite read.

The parsers are pure (text in, records out) and depend on nothing but the standard library, so the
conformance suite can share them; only `read` and `ns_inode` touch the file system. The records
are small slotted classes rather than dataclasses or NamedTuples, because importing dataclasses
(~15 ms) or typing (~6 ms) would dominate the start-up of a runtime CLI that runs them.
Malformed input is a ValueError naming the line: the kernel's format is fixed, so it is a bug.
"""

from __future__ import annotations

import os

# OCI namespace type -> entry name under /proc/PID/ns (where they differ, the kernel's is shorter).
NS_FILES: dict[str, str] = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}


class _Record:
    """Field-wise equality and a readable repr for the slotted records below."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._fields)

    __hash__ = None  # type: ignore[assignment]  # mutable fields (dict), like a dataclass

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({fields})"


class MountInfo(_Record):
    """One line of /proc/PID/mountinfo (see proc(5)); paths have their octal escapes decoded."""

    __slots__ = (
        "fstype",
        "major",
        "minor",
        "mount_id",
        "mount_point",
        "optional",
        "options",
        "parent_id",
        "root",
        "source",
        "super_options",
    )
    _fields = (
        "mount_id",
        "parent_id",
        "major",
        "minor",
        "root",
        "mount_point",
        "options",
        "optional",
        "fstype",
        "source",
        "super_options",
    )

    def __init__(
        self,
        *,
        mount_id: int,
        parent_id: int,
        major: int,
        minor: int,
        root: str,
        mount_point: str,
        options: tuple[str, ...],
        optional: dict[str, str],
        fstype: str,
        source: str,
        super_options: tuple[str, ...],
    ) -> None:
        self.mount_id = mount_id
        self.parent_id = parent_id
        self.major = major
        self.minor = minor
        self.root = root
        self.mount_point = mount_point
        self.options = options  # per-mount: rw/ro, nosuid, nodev, noexec, relatime...
        self.optional = optional  # {"shared": "1", "master": "2", "propagate_from": "3"}...
        self.fstype = fstype
        self.source = source
        self.super_options = super_options  # per-superblock, e.g. ("rw", "size=65536k")

    @property
    def propagation(self) -> str:
        """`shared`, `slave`, `private` or `unbindable`, in OCI's words.

        A mount both shared and a slave (`shared:N master:M`) reports `shared`: it still
        propagates to its own peers, which is what rootfsPropagation=shared asks for.
        """
        if "unbindable" in self.optional:
            return "unbindable"
        if "shared" in self.optional:
            return "shared"
        if "master" in self.optional:
            return "slave"
        return "private"


class CgroupLine(_Record):
    """One line of /proc/PID/cgroup: `hierarchy-ID:controller-list:cgroup-path`.

    The cgroup v2 line is `0::/path` (no controllers); v1 lines list theirs, e.g. ("cpu",
    "cpuacct"), or a named hierarchy such as ("name=systemd",).
    """

    __slots__ = ("controllers", "hierarchy_id", "path")
    _fields = ("hierarchy_id", "controllers", "path")

    def __init__(self, hierarchy_id: int, controllers: tuple[str, ...], path: str) -> None:
        self.hierarchy_id = hierarchy_id
        self.controllers = controllers
        self.path = path


def unescape(field: str) -> str:
    """Decode the kernel's octal escapes (`\\040` space, `\\011` tab, `\\012` newline, `\\134`
    backslash) in a mountinfo path or source."""
    if "\\" not in field:
        return field
    out: list[str] = []
    i, n = 0, len(field)
    while i < n:
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            value = int(code, 8)
            # Bytes >= 0x80 become the surrogates os.fsdecode would give the raw byte.
            out.append(chr(value) if value < 0x80 else chr(0xDC00 + value))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _optional_fields(fields: list[str]) -> dict[str, str]:
    optional: dict[str, str] = {}
    for tag in fields:
        key, _, value = tag.partition(":")
        optional[key] = value
    return optional


def parse_mountinfo(text: str) -> list[MountInfo]:
    """Parse /proc/PID/mountinfo, in file order (later lines are mounted over earlier ones)."""
    mounts: list[MountInfo] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)  # the optional fields end at a lone "-"
            major, minor = fields[2].split(":")
            super_options = fields[sep + 3].split(",") if len(fields) > sep + 3 else []
            mounts.append(
                MountInfo(
                    mount_id=int(fields[0]),
                    parent_id=int(fields[1]),
                    major=int(major),
                    minor=int(minor),
                    root=unescape(fields[3]),
                    mount_point=unescape(fields[4]),
                    options=tuple(fields[5].split(",")),
                    optional=_optional_fields(fields[6:sep]),
                    fstype=fields[sep + 1],
                    source=unescape(fields[sep + 2]),
                    super_options=tuple(super_options),
                )
            )
        except (ValueError, IndexError):
            raise ValueError(f"malformed mountinfo line: {line!r}") from None
    return mounts


def mount_at(mounts: list[MountInfo], path: str) -> MountInfo | None:
    """The mount that `path` (absolute, normalised) resolves into: the longest mount point
    containing it, and of several at that point the last, which is on top."""
    best: MountInfo | None = None
    for m in mounts:
        point = m.mount_point
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.mount_point)):
            best = m
    return best


def parse_proc_cgroup(text: str) -> list[CgroupLine]:
    """Parse /proc/PID/cgroup. The path is split off last: cgroup names may contain colons."""
    lines: list[CgroupLine] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[0].isdigit():
            raise ValueError(f"malformed /proc/PID/cgroup line: {line!r}")
        controllers = tuple(c for c in parts[1].split(",") if c)
        lines.append(CgroupLine(int(parts[0]), controllers, parts[2]))
    return lines


def unified_path(lines: list[CgroupLine]) -> str | None:
    """The cgroup v2 path (the `0::` line), or None on a v1-only host."""
    return next((c.path for c in lines if c.hierarchy_id == 0 and not c.controllers), None)


def parse_status(text: str) -> dict[str, str]:
    """Parse /proc/PID/status into `{"Name": "sh", "CapEff": "000001ffffffffff", ...}`.

    Values are stripped but not split: `Uid` is "0\\t0\\t0\\t0", the caller knows its shape.
    """
    status: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if line.strip():
                raise ValueError(f"malformed /proc/PID/status line: {line!r}")
            continue
        status[key] = value.strip()
    return status


def read(pid: int | str, name: str) -> str:
    """Read /proc/PID/NAME (`pid` may be "self"); bytes that are not UTF-8 survive as surrogates,
    like os.fsdecode, so a path read here round-trips to os functions."""
    path = f"/proc/{pid}/{name}"
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except OSError as e:
        from reference.errors import KernelError

        raise KernelError("read", e.errno or 0, obj=path) from None


def ns_inode(pid: int | str, ns: str) -> int:
    """Inode of /proc/PID/ns/NS: equal inodes mean the same namespace.

    `ns` is an OCI namespace type (`network`, `mount`...) or a /proc entry name (`net`, `mnt`).
    """
    path = f"/proc/{pid}/ns/{NS_FILES.get(ns, ns)}"
    try:
        return os.stat(path).st_ino
    except OSError as e:
        from reference.errors import KernelError

        raise KernelError("stat", e.errno or 0, obj=path) from None
