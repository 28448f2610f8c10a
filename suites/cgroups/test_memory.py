"""Memory controller: the limit the runtime was given is the one the kernel enforces, and what
the container allocates is charged to the container's cgroup."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from fixtures import cgroupfs, host
from fixtures.cgroupfs import Cgroup
from fixtures.containers import Containers
from fixtures.probe import PROBE, SLEEP, on_usr1
from fixtures.targets.base import ContainerSpec, Driver, wait_for

MIB = 1024 * 1024

# What the swap file holds for memory limit L and memory+swap limit S: v1 limits the sum,
# v2 limits swap alone (runc converts S to S - L).
SWAP_FILE_VALUE: dict[cgroupfs.Mode, Callable[[int, int], int]] = {
    "v1": lambda limit, total: total,
    "v2": lambda limit, total: total - limit,
}
# memory+swap when only --memory L is given. The 2L default is the engine's choice (Docker's
# daemon, podman likewise); an OCI runtime writes only what config.json says and leaves the
# kernel default (unlimited), so there is nothing of the runtime's own to check.
DEFAULT_TOTAL: dict[cgroupfs.TargetKind, Callable[[int], int] | None] = {
    "engine": lambda limit: 2 * limit,
    "oci": None,
}


def container_cgroup(containers: Containers, spec: ContainerSpec) -> Cgroup:
    container = containers.start(spec)
    cgroup = Cgroup(container.pid)
    own = cgroupfs.own()
    assert cgroup.path("memory.limit") != own.path("memory.limit"), (
        "the container runs in the suite's own memory cgroup"
    )
    return cgroup


def require_swap_accounting(cgroup: Cgroup) -> None:
    if not cgroup.has("memory.swap"):
        pytest.skip(f"no swap accounting on this host ({cgroup.knob('memory.swap').file} absent)")


@pytest.mark.req("CG-05")
@pytest.mark.needs("memory-limit")
def test_memory_limit_is_written_to_cgroupfs(containers: Containers) -> None:
    cgroup = container_cgroup(containers, cgroupfs.spec(SLEEP, memory=64 * MIB))
    assert cgroup.value("memory.limit") == 64 * MIB


@pytest.mark.req("CG-06")
@pytest.mark.needs("memory-limit")
def test_memory_swap_defaults_to_twice_the_limit(containers: Containers, target: Driver) -> None:
    default = DEFAULT_TOTAL[cgroupfs.target_kind(target)]
    if default is None:
        pytest.skip(
            f"{target.name}: the 2 x --memory swap default is an engine's, not an OCI runtime's"
        )
    cgroup = container_cgroup(containers, cgroupfs.spec(SLEEP, memory=64 * MIB))
    require_swap_accounting(cgroup)
    expected = SWAP_FILE_VALUE[cgroup.mode](64 * MIB, default(64 * MIB))
    assert cgroup.value("memory.swap") == expected


@pytest.mark.req("CG-06")
@pytest.mark.needs("memory-limit", "swap-limit")
def test_memory_swap_flag_sets_memory_plus_swap(containers: Containers) -> None:
    spec = cgroupfs.spec(SLEEP, memory=64 * MIB, memory_swap=100 * MIB)
    cgroup = container_cgroup(containers, spec)
    require_swap_accounting(cgroup)
    assert cgroup.value("memory.swap") == SWAP_FILE_VALUE[cgroup.mode](64 * MIB, 100 * MIB)


@pytest.mark.req("CG-MEM-01")
@pytest.mark.needs("memory-limit")
def test_memory_usage_follows_allocation(containers: Containers) -> None:
    # The shell waits for a signal so that the usage before the allocation can be read.
    spec = cgroupfs.spec(on_usr1(f"exec {PROBE} alloc 48 60"), memory=128 * MIB)
    container = containers.start(spec)
    cgroup = Cgroup(container.pid)
    before = cgroup.value("memory.usage")
    os.kill(container.pid, signal.SIGUSR1)
    # The shell's own pages go when it execs the probe, hence 46 rather than 48 MiB; the upper
    # bound leaves room for the probe's binary and page tables, not for a second copy.
    wait_for(
        lambda: cgroup.value("memory.usage") >= before + 46 * MIB,
        15,
        f"memory usage of {container.name} to rise by 48 MiB from {before}",
    )
    wait_for(lambda: probe_sleeps(container.pid), 15, "the probe to finish allocating")
    after = cgroup.value("memory.usage")
    assert before + 46 * MIB <= after <= before + 56 * MIB, (before, after)


def probe_sleeps(pid: int) -> bool:
    """PID 1 is the probe (the shell has exec'd it) and sleeps: its allocation is complete."""
    status = host.status(pid)
    return status["Name"] == "probe" and status["State"].startswith("S")
