"""OOM: over its memory limit a container's process is killed by the kernel (or, with
--oom-kill-disable on v1, made to wait), and an engine says so in State.OOMKilled.

The hog asks for 200 MiB against a 32 MiB limit with memory+swap set to the same 32 MiB, so
that no swap can absorb it on any host: the memcg OOM killer must act within milliseconds.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from typing import Any

import pytest

from fixtures import cgroupfs, host
from fixtures.cgroupfs import Cgroup, spec
from fixtures.containers import Containers
from fixtures.probe import PROBE, on_usr1, probe
from fixtures.targets.base import ContainerSpec, Driver, wait_for

MIB = 1024 * 1024
LIMIT = 32 * MIB
HOG = probe("alloc", 200)
# The hog as a child of the shell (not PID 1); the shell's exit code says how the hog ended.
HOG_CHILD = f"{PROBE} alloc 200; [ $? = 137 ] && exit 3; exit 4"


def limited(command: Sequence[str], **fields: Any) -> ContainerSpec:
    """32 MiB of memory and no swap."""
    return spec(command, memory=LIMIT, memory_swap=LIMIT, **fields)


@pytest.mark.req("CG-12")
@pytest.mark.needs("memory-limit", "swap-limit")
def test_oom_kill_of_pid_1_exits_137(containers: Containers) -> None:
    result = containers.run(limited(HOG))
    assert result.exit_code == 137, result


@pytest.mark.req("CG-12", "CG-OOM-01")
@pytest.mark.needs("memory-limit", "swap-limit")
def test_oom_kill_is_counted_and_spares_pid_1(containers: Containers) -> None:
    # PID 1 (the shell) outlives the hog, so the cgroup and its counter can be read afterwards.
    command = ["sh", "-c", f"{PROBE} alloc 200; exec {PROBE} sleep forever"]
    container = containers.start(limited(command))
    cgroup = Cgroup(container.pid)
    # Once the hog is gone (however it ended) the shell execs the sleeping probe: PID 1 lives on.
    wait_for(lambda: host.status(container.pid)["Name"] == "probe", 15, "PID 1 to outlive the hog")
    assert cgroup.value("memory.oom_kills") == 1, "not exactly the one hog was OOM-killed"
    assert cgroup.ids("procs") == [container.pid]


@pytest.mark.req("CG-OOM-02")
@pytest.mark.needs("memory-limit", "swap-limit", "oom-flag", "wait")
def test_oomkilled_flag_for_pid_1(containers: Containers, target: Driver) -> None:
    # Detached, so that the container's state outlives its exit; the signal lets start()
    # see PID 1 alive before the hog runs.
    container = containers.start(limited(on_usr1(f"exec {PROBE} alloc 200")))
    os.kill(container.pid, signal.SIGUSR1)
    assert target.wait(container) == 137
    state = target.state(container)
    assert (state.exit_code, state.oom_killed) == (137, True), state


@pytest.mark.req("CG-13")
@pytest.mark.needs("memory-limit", "swap-limit", "oom-flag", "wait")
def test_oomkilled_flag_when_a_child_was_killed(containers: Containers, target: Driver) -> None:
    # Docker 20.10 sets the flag at exit (24.0+: at the OOM event); after exit both agree.
    container = containers.start(limited(on_usr1(HOG_CHILD)))
    os.kill(container.pid, signal.SIGUSR1)
    assert target.wait(container) == 3, "the hog was not SIGKILLed, or the shell died too"
    state = target.state(container)
    assert (state.exit_code, state.oom_killed) == (3, True), state


@pytest.mark.req("CG-15", "CG-32")
@pytest.mark.needs("memory-limit", "swap-limit", "oom-kill-disable", "update")
def test_oom_kill_disable_makes_the_task_wait_until_the_limit_is_raised(
    containers: Containers, target: Driver
) -> None:
    if "memory.under_oom" not in cgroupfs.FILES[cgroupfs.mode()]:
        pytest.skip(
            f"cgroup {cgroupfs.mode()} has no OOM-killer switch: engines discard "
            "--oom-kill-disable there with a warning and the normal OOM kill happens (CG-16)"
        )
    container = containers.start(limited(probe("alloc", 64, 60), oom_kill_disable=True))
    cgroup = Cgroup(container.pid)
    assert cgroup.value("memory.oom_kill_disable") == 1
    wait_for(lambda: cgroup.value("memory.under_oom") == 1, 15, "the cgroup to be under OOM")
    # The task waits in the memcg OOM wait queue, uninterruptibly, instead of being killed.
    assert host.status(container.pid)["State"].startswith("D"), host.status(container.pid)
    assert cgroup.value("memory.oom_kills") == 0
    # The container may still hang; removing it (SIGKILL) is the fixture's job either way.
    target.update(container, memory=128 * MIB, memory_swap=256 * MIB)
    assert cgroup.value("memory.limit") == 128 * MIB
    wait_for(lambda: cgroup.value("memory.under_oom") == 0, 15, "the OOM wait to end")
    wait_for(
        lambda: host.status(container.pid)["State"].startswith("S"),
        15,
        "the probe to finish its allocation and sleep",
    )
    assert cgroup.value("memory.usage") >= 64 * MIB
    assert cgroup.value("memory.oom_kills") == 0
