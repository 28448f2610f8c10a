"""Translate a spec mount's `options` into the arguments of mount(2).

An OCI mount option is one of three things: a flag of the first mount(2) call (`ro`, `nosuid`,
`bind`), a propagation change that needs its own mount(2) call per entry (`rslave`), or fs-specific
data passed through verbatim (`mode=755`, `size=65536k`, `newinstance`). A few names are handled by
the runtime itself (`tmpcopyup`, `idmap`, recursive `rro`-style attributes for mount_setattr(2))
and are returned separately so the mount code can act on them, not hand them to the kernel.
"""

from __future__ import annotations

from reference.linux.syscall import (
    MS_BIND,
    MS_DIRSYNC,
    MS_I_VERSION,
    MS_LAZYTIME,
    MS_MANDLOCK,
    MS_NOATIME,
    MS_NODEV,
    MS_NODIRATIME,
    MS_NOEXEC,
    MS_NOSUID,
    MS_NOSYMFOLLOW,
    MS_POSIXACL,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_RELATIME,
    MS_REMOUNT,
    MS_SHARED,
    MS_SILENT,
    MS_SLAVE,
    MS_STRICTATIME,
    MS_SYNCHRONOUS,
    MS_UNBINDABLE,
)

# name -> (flag, clear). `clear` options ("rw", "dev", ...) undo an earlier or default flag, so
# that "ro,rw" ends read-write, as mount(8) reads options left to right.
FLAGS: dict[str, tuple[int, bool]] = {
    "acl": (MS_POSIXACL, False),
    "async": (MS_SYNCHRONOUS, True),
    "atime": (MS_NOATIME, True),
    "bind": (MS_BIND, False),
    "defaults": (0, False),
    "dev": (MS_NODEV, True),
    "diratime": (MS_NODIRATIME, True),
    "dirsync": (MS_DIRSYNC, False),
    "exec": (MS_NOEXEC, True),
    "iversion": (MS_I_VERSION, False),
    "lazytime": (MS_LAZYTIME, False),
    "loud": (MS_SILENT, True),
    "mand": (MS_MANDLOCK, False),
    "noacl": (MS_POSIXACL, True),
    "noatime": (MS_NOATIME, False),
    "nodev": (MS_NODEV, False),
    "nodiratime": (MS_NODIRATIME, False),
    "noexec": (MS_NOEXEC, False),
    "noiversion": (MS_I_VERSION, True),
    "nolazytime": (MS_LAZYTIME, True),
    "nomand": (MS_MANDLOCK, True),
    "norelatime": (MS_RELATIME, True),
    "nostrictatime": (MS_STRICTATIME, True),
    "nosuid": (MS_NOSUID, False),
    "nosymfollow": (MS_NOSYMFOLLOW, False),
    "rbind": (MS_BIND | MS_REC, False),
    "relatime": (MS_RELATIME, False),
    "remount": (MS_REMOUNT, False),
    "ro": (MS_RDONLY, False),
    "rw": (MS_RDONLY, True),
    "silent": (MS_SILENT, False),
    "strictatime": (MS_STRICTATIME, False),
    "suid": (MS_NOSUID, True),
    "sync": (MS_SYNCHRONOUS, False),
}

# Propagation cannot be combined with other flags in one mount(2) call (the kernel changes only
# the propagation and ignores the rest), so each is kept as its own call, in order.
PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}

# Options the runtime implements itself: passing them as fs data would make mount(2) fail.
RUNTIME_OPTIONS = frozenset(
    {"tmpcopyup", "idmap", "ridmap"}
    | {
        "r" + attr
        for attr in ("ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "noatime",
                     "atime", "relatime", "norelatime", "strictatime", "nostrictatime",
                     "nodiratime", "diratime", "nosymfollow", "symfollow")
    }
)  # fmt: skip

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see reference/records.py
if TYPE_CHECKING:
    from dataclasses import dataclass
else:
    # Not typing.NamedTuple: `typing` costs ~4 ms to import on every `refrun create`.
    from reference.records import dataclass


@dataclass(frozen=True)
class MountOptions:
    flags: int
    propagation: tuple[int, ...]
    data: str
    runtime: tuple[str, ...] = ()


def parse_mount_options(options: tuple[str, ...] | list[str]) -> MountOptions:
    """Split `options` into mount(2) flags, propagation calls, fs data and runtime options."""
    flags = 0
    propagation: list[int] = []
    data: list[str] = []
    runtime: list[str] = []
    for opt in options:
        if not opt:
            continue  # "ro,,nosuid" style leftovers; mount(8) skips them too
        if opt in FLAGS:
            flag, clear = FLAGS[opt]
            flags = flags & ~flag if clear else flags | flag
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        elif opt in RUNTIME_OPTIONS:
            runtime.append(opt)
        else:
            # Unknown words (mode=755, size=64k, newinstance, gid=5) belong to the filesystem.
            data.append(opt)
    return MountOptions(flags, tuple(propagation), ",".join(data), tuple(runtime))
