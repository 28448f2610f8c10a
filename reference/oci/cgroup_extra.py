"""The hierarchies runc joins besides the controllers' ones: named v1 hierarchies (name=systemd)
and, on a hybrid host, the unified cgroup2 tree.

reference.cgroups manages controllers; a container must also leave these hierarchies' root, or
`/proc/<pid>/cgroup` shows it in the host's systemd and unified cgroups and nothing marks them
as the container's (runc puts the container at its cgroupsPath there too, and removes that on
delete). They carry no limits, so joining (mkdir + cgroup.procs) and rmdir is all there is.
"""

from __future__ import annotations

import os

from reference.cgroups import _fs
from reference.cgroups.mounts import cgroup_path, parse_mountinfo, parse_proc_cgroup, v1_mounts
from reference.errors import CgroupError

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see reference/records.py
if TYPE_CHECKING:
    from reference.cgroups.mounts import Mount


def extra_dirs(cgroups_path: str, mounts: list[Mount] | None = None) -> dict[str, str]:
    """{"name=systemd": dir, "": dir-in-unified} for this host (empty on a pure v1 or v2 one).
    `mounts`: the host's cgroup mounts if already parsed (else /proc/self/mountinfo is read)."""
    if mounts is None:
        mounts = parse_mountinfo(_fs.read("/proc/self/mountinfo"))
    if not v1_mounts(mounts):
        return {}  # pure cgroup2: the v2 manager already owns the unified tree
    own = parse_proc_cgroup(_fs.read("/proc/self/cgroup"))
    found: dict[str, str] = {}
    for m in mounts:
        if m.is_v2:
            key = ""
        elif m.name and not m.controllers:
            key = f"name={m.name}"
        else:
            continue
        if key in found or (not cgroups_path.startswith("/") and key not in own):
            continue
        found[key] = cgroup_path(m, cgroups_path, own, key, "/")
    return found


def join(dirs: dict[str, str], pid: int) -> None:
    for d in dirs.values():
        _fs.mkdir(d, fake=False)
        _fs.write(os.path.join(d, "cgroup.procs"), pid)


def remove(dirs: dict[str, str]) -> None:
    first: CgroupError | None = None
    for d in dirs.values():
        try:
            _fs.remove(d, fake=False)
        except CgroupError as e:
            first = first or e
    if first is not None:
        raise first
