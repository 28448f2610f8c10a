"""Masked and read-only kernel paths (Docker's `systempaths`), checked from the host through
the container's mount table and /proc/PID/root.

Only paths that exist on this host are checked (here /proc/kcore and /proc/sysrq-trigger do
not); which paths a kind of target masks, and since which version, is data.
"""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Mapping
from pathlib import Path

import pytest

from fixtures.containers import Containers
from fixtures.probe import SLEEP
from fixtures.security import (
    ALWAYS,
    Ranges,
    in_container,
    in_ranges,
    mounts_of,
    version_of,
)
from fixtures.targets.base import ContainerSpec, Driver
from reference.linux.procfs import mount_at

ALL_KINDS: Mapping[str, Ranges] = {
    "docker": ALWAYS,
    "podman": ALWAYS,
    "oci": ALWAYS,
    "reference": ALWAYS,  # refd: reference/engine/security.py MASKED_PATHS
}
SINCE_28_0_2: Ranges = (((28, 0, 2), None),)
# GHSA-jq35-85cj-fj4p: backported to 20.10.27 and 24.0.7, in every release from 25.0.
POWERCAP: Ranges = (((20, 10, 27), (21,)), ((24, 0, 7), (25,)), ((25,), None))

# path (a glob) → the kinds of target that mask it, with their versions that do. Sources:
# moby oci/defaults.go (docker), `runc spec` (oci), containers/common 0.50 (podman 4.3),
# reference/engine/security.py (reference: Docker 20.10.27's list).
MASKED: Mapping[str, Mapping[str, Ranges]] = {
    "/proc/acpi": ALL_KINDS,
    "/proc/asound": {"docker": ALWAYS, "oci": ALWAYS, "reference": ALWAYS},
    "/proc/kcore": ALL_KINDS,
    "/proc/keys": ALL_KINDS,
    "/proc/latency_stats": ALL_KINDS,
    "/proc/sched_debug": ALL_KINDS,
    "/proc/scsi": ALL_KINDS,
    "/proc/timer_list": ALL_KINDS,
    "/proc/timer_stats": ALL_KINDS,
    "/sys/firmware": ALL_KINDS,
    "/sys/dev/block": {"podman": ALWAYS},
    "/sys/fs/selinux": {"podman": ALWAYS},
    "/sys/devices/virtual/powercap": {"docker": POWERCAP, "reference": ALWAYS},
    "/proc/interrupts": {"docker": SINCE_28_0_2},
    "/sys/devices/system/cpu/cpu*/thermal_throttle": {"docker": SINCE_28_0_2},
}
# Bound onto themselves read-only, by every kind (moby oci/defaults.go, `runc spec`).
READ_ONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
DEV_NULL = (1, 3)


def expected_masks(target: Driver) -> list[str]:
    kind, version = target.kind, version_of(target)
    wanted = [
        pattern
        for pattern, kinds in MASKED.items()
        if kind in kinds and in_ranges(version, kinds[kind])
    ]
    return sorted(path for pattern in wanted for path in glob.glob(pattern))


def mask_problem(pid: int, path: str) -> str | None:
    """Why `path` is not masked in the container, or None if it is."""
    seen = in_container(pid, path)
    if Path(path).is_dir():
        # An empty read-only file system other than the kernel's own proc/sysfs.
        mount = mount_at(mounts_of(pid), path)
        assert mount is not None, "no mount at all"
        if mount.fstype in ("proc", "sysfs") or "ro" not in mount.options:
            return f"directory is the kernel's {mount.fstype} ({','.join(mount.options)})"
        if os.listdir(seen):
            return f"directory is not empty: {sorted(os.listdir(seen))[:5]}"
        return None
    st = os.stat(seen)
    if not stat.S_ISCHR(st.st_mode) or (os.major(st.st_rdev), os.minor(st.st_rdev)) != DEV_NULL:
        return f"file is not /dev/null (mode {oct(st.st_mode)}, rdev {st.st_rdev})"
    return None


@pytest.mark.req("SEC-04")
def test_kernel_paths_are_masked(containers: Containers, target: Driver) -> None:
    paths = expected_masks(target)
    if not paths:
        pytest.skip("none of the paths this target masks exists on this host")
    container = containers.start(ContainerSpec(command=SLEEP))
    problems = {p: why for p in paths if (why := mask_problem(container.pid, p)) is not None}
    assert not problems, f"not masked: {problems}"


@pytest.mark.req("SEC-05")
def test_kernel_paths_are_read_only(containers: Containers) -> None:
    paths = [p for p in READ_ONLY if os.path.exists(p)]
    container = containers.start(ContainerSpec(command=SLEEP))
    mounts = mounts_of(container.pid)
    writable = {}
    for path in paths:
        mount = mount_at(mounts, path)
        assert mount is not None, f"{path}: no mount at all"
        if "ro" not in mount.options:
            writable[path] = f"{mount.mount_point} {','.join(mount.options)}"
    assert not writable, f"writable in the container: {writable}"
