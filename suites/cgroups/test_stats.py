"""Stats: the usage an engine reports is the usage the container's cgroup holds."""

from __future__ import annotations

import pytest

from fixtures.cgroupfs import Cgroup, spec
from fixtures.containers import Containers
from fixtures.probe import probe
from fixtures.targets.base import Driver, wait_for

MIB = 1024 * 1024
# Usage moves by a few pages between two reads (per-CPU charge batching, the probe's stack);
# the reported value must lie within this of the range the host saw around the stats call.
TOLERANCE = 1 * MIB


@pytest.mark.req("CG-STATS-01")
@pytest.mark.needs("memory-limit", "stats")
def test_stats_match_cgroupfs(containers: Containers, target: Driver) -> None:
    container = containers.start(spec(probe("fork", 2, 60), memory=64 * MIB))
    cgroup = Cgroup(container.pid)
    wait_for(lambda: cgroup.value("pids.current") == 3, 15, "PID 1 and its two children")
    low = cgroup.value("memory.usage")
    reported = target.stats(container)
    high = cgroup.value("memory.usage")
    low, high = min(low, high), max(low, high)
    assert low - TOLERANCE <= reported["memory_usage"] <= high + TOLERANCE, (low, reported, high)
    assert reported["memory_limit"] == cgroup.value("memory.limit") == 64 * MIB
    assert reported["pids"] == cgroup.value("pids.current") == 3
