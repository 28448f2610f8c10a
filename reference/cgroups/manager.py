"""The cgroup manager interface, host detection, and (re-exported) the factory of a driver.

Detection reads mountinfo rather than probing /sys/fs/cgroup: controllers can be mounted anywhere,
and on a hybrid host the same controller name may exist in both hierarchies.
"""

from __future__ import annotations

import enum
import os
from typing import Literal, Protocol

# The factory lives in factory.py so that the runtime CLI can build a manager without this
# module's enum and typing imports; it is re-exported here, where the engine looks for it.
from reference.cgroups.factory import mounts_of as _mounts
from reference.cgroups.factory import new_manager as new_manager
from reference.errors import CgroupError

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see reference/records.py
if TYPE_CHECKING:
    from reference.cgroups.resources import Resources
    from reference.cgroups.stats import Stats
    from reference.linux.syscall import StrPath

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

    def describe(self) -> dict[str, object]:
        """JSON-able data from which `factory.from_description` rebuilds this manager."""
        ...


def detect(mountinfo_text: str | None = None, root: StrPath = "/") -> CgroupMode:
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
    raise CgroupError(
        "no cgroup or cgroup2 filesystem in mountinfo", obj=os.path.join(root, "proc/self")
    )
