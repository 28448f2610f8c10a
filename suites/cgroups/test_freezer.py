"""Freezer: pause stops every task of the container (no CPU at all), unpause resumes them."""

from __future__ import annotations

import time

import pytest

from fixtures import cgroupfs, host
from fixtures.cgroupfs import Cgroup, spec
from fixtures.containers import Containers
from fixtures.probe import probe
from fixtures.targets.base import Driver, wait_for

# The freezer's state as the cgroup file shows it (frozen, thawed), and the State a frozen task
# shows in /proc/PID/status: v1 parks it uninterruptibly in the refrigerator ("D"); v2 traps it
# in an interruptible sleep ("S"); neither is "R" however busy the task was.
FREEZER: dict[cgroupfs.Mode, tuple[str, str, str]] = {
    "v1": ("FROZEN", "THAWED", "D"),
    "v2": ("1", "0", "S"),
}
QUIET = 0.5  # seconds in which a frozen burner must get no CPU...
SLACK_NS = 1_000_000  # ...beyond accounting that lands after the freeze (a burner gets ~5e8)


def cpu_used(cgroup: Cgroup, seconds: float) -> int:
    before = cgroup.value("cpu.usage_ns")
    time.sleep(seconds)
    return cgroup.value("cpu.usage_ns") - before


@pytest.mark.req("CG-25")
@pytest.mark.needs("pause")
def test_pause_freezes_and_unpause_thaws(containers: Containers, target: Driver) -> None:
    container = containers.start(spec(probe("burn", 60)))
    cgroup = Cgroup(container.pid)
    frozen, thawed, frozen_task_state = FREEZER[cgroup.mode]
    assert cpu_used(cgroup, QUIET) > 0, "the burner does not run"
    target.pause(container)
    assert cgroup.text("freezer.state") == frozen
    states = {tid: host.status(tid)["State"] for tid in cgroup.ids("threads")}
    assert all(s.startswith(frozen_task_state) for s in states.values()), states
    assert cpu_used(cgroup, QUIET) <= SLACK_NS, "a task of the paused container still got CPU time"
    target.unpause(container)
    wait_for(lambda: cgroup.text("freezer.state") == thawed, 10, "the cgroup to thaw")
    assert not host.status(container.pid)["State"].startswith(frozen_task_state)
    assert cpu_used(cgroup, QUIET) > 0, "the burner did not resume"
