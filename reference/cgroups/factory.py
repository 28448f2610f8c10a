"""Picking the cgroup driver for this host, and rebuilding a container's manager from state.

Kept apart from manager.py, which holds the `CgroupManager` protocol and `CgroupMode` (an enum)
for the engine: `enum` and `typing` cost ~8 ms to import, and `refrun create`/`delete` need
neither, only a manager. manager.py re-exports `new_manager`.
"""

from __future__ import annotations

import os

from reference.cgroups import _fs
from reference.cgroups.mounts import (
    Mount,
    clean_cgroups_path,
    parse_mountinfo,
    parse_proc_cgroup,
    v1_mounts,
)
from reference.cgroups.v1 import V1Manager
from reference.cgroups.v2 import V2Manager
from reference.errors import CgroupError

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see reference/records.py
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from reference.cgroups.manager import CgroupManager
    from reference.linux.syscall import StrPath


def read_mountinfo(root: StrPath = "/") -> str:
    """`root`/proc/self/mountinfo (the host's, unless `root` is a fake tree)."""
    return _fs.read(os.path.join(os.fspath(root), "proc/self/mountinfo"))


def mounts_of(mounts: str | Sequence[Mount] | None, root: StrPath = "/") -> list[Mount]:
    """The cgroup mounts given (mountinfo text or parsed), or read from `root`."""
    if mounts is None:
        return parse_mountinfo(read_mountinfo(root))
    if isinstance(mounts, str):
        return parse_mountinfo(mounts)
    return list(mounts)


def new_manager(
    cgroups_path: str,
    *,
    mounts: str | Sequence[Mount] | None = None,
    root: StrPath = "/",
    proc_self_cgroup: str | None = None,
    timeout: float = 5.0,
) -> CgroupManager:
    """A manager for `cgroups_path` on this host (or on the fake tree under `root`).

    `mounts` is mountinfo text or parsed mounts (default: `root`/proc/self/mountinfo);
    `proc_self_cgroup` is consulted for relative paths (default: `root`/proc/self/cgroup).
    When any controller we manage is mounted as v1 (legacy and hybrid hosts, where cgroup2 holds
    at most leftovers such as hugetlb), the v1 driver is used; otherwise the v2 one.
    `timeout` bounds freeze/thaw waits.
    """
    clean_cgroups_path(cgroups_path)  # reject "" and "/" before touching the host
    parsed = mounts_of(mounts, root)
    if not parsed:
        raise CgroupError("no cgroup or cgroup2 filesystem is mounted", obj=cgroups_path)
    own = None
    if not cgroups_path.startswith("/"):
        text = (
            proc_self_cgroup
            if proc_self_cgroup is not None
            else _fs.read(os.path.join(os.fspath(root), "proc/self/cgroup"))
        )
        own = parse_proc_cgroup(text)
    if v1_mounts(parsed):
        return V1Manager.from_mounts(cgroups_path, parsed, own=own, root=root, timeout=timeout)
    return V2Manager.from_mounts(cgroups_path, parsed, own=own, root=root, timeout=timeout)


def from_description(desc: Mapping[str, object]) -> CgroupManager:
    """The manager a `describe()` came from, on this host. The directories are the ones
    resolved when it was made: a relative cgroupsPath must not be resolved again against the
    cgroup of whoever asks later."""
    path = str(desc.get("path", ""))
    if desc.get("driver") == "v2":
        return V2Manager(path, str(desc["dir"]), mount_dir=str(desc["mount_dir"]))
    dirs, mounts = desc.get("dirs"), desc.get("mount_dirs")
    return V1Manager(
        path,
        {str(k): str(v) for k, v in (dirs.items() if isinstance(dirs, dict) else ())},
        mount_dirs={
            str(k): str(v) for k, v in (mounts.items() if isinstance(mounts, dict) else ())
        },
    )
