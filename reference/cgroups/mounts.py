"""Where the cgroup hierarchies are mounted, and where a cgroupsPath lands in each of them.

Nothing is hard-coded to /sys/fs/cgroup: mount points come from mountinfo (controllers may be
co-mounted, e.g. `cpu,cpuacct`, or mounted somewhere else entirely), and every path is joined
under a filesystem `root` so that the unit tests can point it at a fake tree.
"""

from __future__ import annotations

import os
import posixpath

from reference.errors import CgroupError, ConfigError
from reference.linux import procfs

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see reference/records.py
if TYPE_CHECKING:
    from collections.abc import Mapping
    from dataclasses import dataclass
    from pathlib import Path

    from reference.linux.syscall import StrPath
else:
    from reference.records import dataclass

# The v1 controllers this runtime manages; other v1 hierarchies (net_cls, name=systemd, ...) are
# left alone, as runc's cgroupfs driver does for controllers it has no resources for.
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "freezer", "devices")
# Key of the unified hierarchy in /proc/self/cgroup ("0::/path").
UNIFIED = ""


@dataclass(frozen=True)
class Mount:
    mountpoint: str  # absolute, in this mount namespace
    root: str  # the cgroup mounted there (mountinfo field 4): "/" unless inside a container
    fstype: str  # "cgroup" (v1) or "cgroup2"
    controllers: frozenset[str] = frozenset()  # v1 only; v2 lists them in cgroup.controllers
    name: str | None = None  # v1 named hierarchy (name=systemd) without controllers

    @property
    def is_v2(self) -> bool:
        return self.fstype == "cgroup2"

    def host_dir(self, root: StrPath) -> str:
        """Where this hierarchy is seen from `root` ("/" on the host, a fake tree in tests)."""
        rel = self.mountpoint.lstrip("/")
        return os.path.join(os.fspath(root), rel) if rel else os.fspath(root)


def parse_mountinfo(text: str) -> list[Mount]:
    """The cgroup and cgroup2 entries of a /proc/<pid>/mountinfo, in file order."""
    mounts: list[Mount] = []
    for entry in procfs.parse_mountinfo(text):
        if entry.fstype not in ("cgroup", "cgroup2"):
            continue
        opts = entry.super_options
        v1 = entry.fstype == "cgroup"
        mounts.append(
            Mount(
                mountpoint=entry.mount_point,
                root=entry.root,
                fstype=entry.fstype,
                controllers=frozenset(o for o in opts if o in V1_CONTROLLERS or o == "hugetlb")
                if v1
                else frozenset(),
                name=next((o.removeprefix("name=") for o in opts if o.startswith("name=")), None),
            )
        )
    return mounts


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/<pid>/cgroup as {controller: path}; the unified hierarchy is under the key ""."""
    out: dict[str, str] = {}
    for line in procfs.parse_proc_cgroup(text):
        if not line.controllers:
            out[UNIFIED] = line.path
        for name in line.controllers:
            out[name] = line.path
    return out


def v1_mounts(mounts: list[Mount]) -> dict[str, Mount]:
    """First mount of each managed v1 controller (a hierarchy can be bind-mounted twice)."""
    found: dict[str, Mount] = {}
    for m in mounts:
        if m.is_v2:
            continue
        for c in sorted(m.controllers):
            if c in V1_CONTROLLERS:
                found.setdefault(c, m)
    return found


def v2_mount(mounts: list[Mount]) -> Mount | None:
    return next((m for m in mounts if m.is_v2), None)


def clean_cgroups_path(cgroups_path: str) -> str:
    """Normalise lexically so that ".." cannot climb out of the hierarchy (runc's CleanPath)."""
    if not cgroups_path:
        raise ConfigError("must not be empty", obj="linux.cgroupsPath")
    # lstrip first: normpath keeps a leading "//" (POSIX leaves its meaning open).
    cleaned = posixpath.normpath("/" + cgroups_path.lstrip("/"))
    if cleaned == "/":
        raise ConfigError("must name a cgroup below the hierarchy root", obj="linux.cgroupsPath")
    return cleaned


def cgroup_dir(
    mount: Mount, cgroups_path: str, own: Mapping[str, str] | None, key: str, root: StrPath
) -> Path:
    """`cgroup_path` as a pathlib.Path (imported here, not by the runtime's hot path)."""
    from pathlib import Path

    return Path(cgroup_path(mount, cgroups_path, own, key, root))


def cgroup_path(
    mount: Mount, cgroups_path: str, own: Mapping[str, str] | None, key: str, root: StrPath
) -> str:
    """Directory of `cgroups_path` in the hierarchy `mount` (its /proc/self/cgroup key is `key`).

    As in runc's cgroupfs driver, an absolute path is taken from the hierarchy root, and a relative
    one from the cgroup this process is in (own[key]); the latter is relative to what is mounted,
    which differs from "/" when the hierarchy root is itself a container's cgroup.
    """
    cleaned = clean_cgroups_path(cgroups_path).lstrip("/")
    base = mount.host_dir(root)
    if cgroups_path.startswith("/"):
        return os.path.join(base, cleaned)
    if own is None or key not in own:
        raise CgroupError(
            f"relative cgroupsPath {cgroups_path!r} needs this process's {key or 'unified'} "
            "cgroup, which /proc/self/cgroup does not list",
            obj=base,
        )
    mine = posixpath.normpath(own[key])
    rel = posixpath.relpath(mine, mount.root)
    if rel == ".." or rel.startswith("../"):
        raise CgroupError(
            f"own cgroup {mine!r} lies outside the mounted part {mount.root!r}", obj=base
        )
    return os.path.join(base, rel, cleaned) if rel != "." else os.path.join(base, cleaned)
