"""The container's capability sets, limited to what this host can give.

A capability missing from the runtime's own bounding set (here CAP_SYS_RESOURCE) cannot be
granted by anyone, so every set is intersected with the host's bounding set, as Docker and runc
effectively do, instead of failing on a default that names it. The bounding set is reduced
first (it needs CAP_SETPCAP, which the user switch may drop), the other sets are set after the
user switch (with PR_SET_KEEPCAPS so the permitted set survives setresuid), ambient last
(each needs to be permitted and inheritable already).
"""

from __future__ import annotations

from reference.linux.syscall import CAP_LAST_KNOWN, PR_CAPBSET_READ, Syscall, cap_mask
from reference.oci.spec import Capabilities


class CapSets:
    __slots__ = ("ambient", "bounding", "effective", "inheritable", "permitted")

    def __init__(
        self, bounding: int, effective: int, permitted: int, inheritable: int, ambient: int
    ) -> None:
        self.bounding = bounding
        self.effective = effective
        self.permitted = permitted
        self.inheritable = inheritable
        self.ambient = ambient

    def __repr__(self) -> str:
        return (
            f"CapSets(bounding={self.bounding:#x}, effective={self.effective:#x}, "
            f"permitted={self.permitted:#x}, inheritable={self.inheritable:#x}, "
            f"ambient={self.ambient:#x})"
        )


def last_cap() -> int:
    """The running kernel's highest capability number."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return CAP_LAST_KNOWN


def host_bounding(sc: Syscall, last: int) -> int:
    mask = 0
    for cap in range(last + 1):
        if sc.prctl(PR_CAPBSET_READ, cap) == 1:
            mask |= 1 << cap
    return mask


def compute(caps: Capabilities | None, available: int) -> CapSets:
    """The sets to apply: the spec's (none if absent, as runc) within `available`."""
    if caps is None:
        return CapSets(0, 0, 0, 0, 0)
    bounding = cap_mask(caps.bounding) & available
    effective = cap_mask(caps.effective) & available
    permitted = cap_mask(caps.permitted) & available
    inheritable = cap_mask(caps.inheritable) & available
    # An ambient capability must be permitted and inheritable, or the kernel refuses it.
    ambient = cap_mask(caps.ambient) & permitted & inheritable
    return CapSets(bounding, effective, permitted, inheritable, ambient)


def drop_bounding(sc: Syscall, sets: CapSets, last: int) -> None:
    for cap in range(last + 1):
        if not sets.bounding & (1 << cap) and sc.prctl(PR_CAPBSET_READ, cap) == 1:
            sc.drop_bounding(cap)


def apply(sc: Syscall, sets: CapSets, last: int) -> None:
    sc.set_capabilities(sets.effective, sets.permitted, sets.inheritable)
    sc.clear_ambient()
    for cap in range(last + 1):
        if sets.ambient & (1 << cap):
            sc.set_ambient(cap)
