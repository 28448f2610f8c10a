"""The cgroup manager interface, host detection, and the factory that picks a driver.

Detection reads mountinfo rather than probing /sys/fs/cgroup: controllers can be mounted anywhere,
and on a hybrid host the same controller name may exist in both hierarchies.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

from reference.cgroups import _fs
from reference.cgroups.mounts import (
    Mount,
    clean_cgroups_path,
    parse_mountinfo,
    parse_proc_cgroup,
    v1_mounts,
)
from reference.cgroups.resources import Resources
from reference.cgroups.stats import Stats
from reference.cgroups.v1 import V1Manager
from reference.cgroups.v2 import V2Manager
from reference.errors import CgroupError

FreezerState = Literal["THAWED", "FROZEN"]


class CgroupMode(enum.Enum):
    V1 = "v1"  # legacy: only v1 hierarchies
    HYBRID = "hybrid"  # v1 hierarchies plus a cgroup2 mount (usually /sys/fs/cgroup/unified)
    UNIFIED = "unified"  # cgroup2 only


class CgroupManager(Protocol):
    """One container's cgroup. Every method raises `CgroupError` (or `UnsupportedError`)."""

    @property
    def path(self) -> str:
        """The cgroupsPath this manager was made for, as given."""
        ...

    def create(self) -> None:
        """Create the cgroup (and missing ancestors); idempotent."""
        ...

    def apply(self, pid: int) -> None:
        """Move process `pid` into the cgroup, creating it first if needed."""
        ...

    def set(self, resources: Resources) -> None:
        """Write the limits that are set (not None); the rest keep their current value."""
        ...

    def freeze(self) -> None:
        """Freeze every task; returns once frozen, or thaws back and raises after a timeout."""
        ...

    def thaw(self) -> None: ...

    def state(self) -> FreezerState: ...

    def pids(self) -> list[int]:
        """Every process in the cgroup and its descendants, sorted."""
        ...

    def stats(self) -> Stats: ...

    def oom_kill_count(self) -> int:
        """How many tasks the OOM killer has killed in this cgroup (0 if the kernel won't say)."""
        ...

    def destroy(self) -> None:
        """Remove the cgroup, retrying briefly while tasks drain; a missing cgroup is fine."""
        ...

    def exists(self) -> bool: ...


def _mountinfo(root: Path) -> str:
    return _fs.read(root / "proc/self/mountinfo")


def _mounts(mounts: str | Sequence[Mount] | None, root: Path) -> list[Mount]:
    if mounts is None:
        return parse_mountinfo(_mountinfo(root))
    if isinstance(mounts, str):
        return parse_mountinfo(mounts)
    return list(mounts)


def detect(mountinfo_text: str | None = None, root: Path = Path("/")) -> CgroupMode:
    """The host's cgroup layout, from mountinfo (read from `root`/proc/self/mountinfo if None).

    A named-only v1 hierarchy (name=systemd) next to cgroup2 counts as hybrid, as systemd calls
    it; `new_manager` still puts such a host on v2 because no v1 controller is mounted.
    """
    mounts = _mounts(mountinfo_text, root)
    has_v1 = any(not m.is_v2 for m in mounts)
    has_v2 = any(m.is_v2 for m in mounts)
    if has_v1 and has_v2:
        return CgroupMode.HYBRID
    if has_v1:
        return CgroupMode.V1
    if has_v2:
        return CgroupMode.UNIFIED
    raise CgroupError("no cgroup or cgroup2 filesystem in mountinfo", obj=str(root / "proc/self"))


def new_manager(
    cgroups_path: str,
    *,
    mounts: str | Sequence[Mount] | None = None,
    root: Path = Path("/"),
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
    parsed = _mounts(mounts, root)
    if not parsed:
        raise CgroupError("no cgroup or cgroup2 filesystem is mounted", obj=cgroups_path)
    own = None
    if not cgroups_path.startswith("/"):
        text = (
            proc_self_cgroup
            if proc_self_cgroup is not None
            else _fs.read(root / "proc/self/cgroup")
        )
        own = parse_proc_cgroup(text)
    if v1_mounts(parsed):
        return V1Manager.from_mounts(cgroups_path, parsed, own=own, root=root, timeout=timeout)
    return V2Manager.from_mounts(cgroups_path, parsed, own=own, root=root, timeout=timeout)
