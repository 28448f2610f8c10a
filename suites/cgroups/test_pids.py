"""pids controller: --pids-limit caps the number of tasks, so a fork bomb is contained."""

from __future__ import annotations

import pytest

from fixtures.cgroupfs import Cgroup, spec
from fixtures.containers import Containers
from fixtures.probe import probe
from fixtures.targets.base import wait_for

LIMIT = 20


@pytest.mark.req("CG-24")
@pytest.mark.needs("pids-limit")
def test_pids_limit_contains_a_fork_bomb(containers: Containers) -> None:
    # PID 1 tries to fork twice the limit and holds its children for a minute.
    container = containers.start(spec(probe("fork", 2 * LIMIT, 60), pids_limit=LIMIT))
    cgroup = Cgroup(container.pid)
    assert cgroup.value("pids.max") == LIMIT
    wait_for(lambda: cgroup.value("pids.max_hits") >= 1, 15, "a fork to be refused at the limit")
    assert cgroup.value("pids.current") == LIMIT
    assert len(cgroup.ids("procs")) == LIMIT, "the cgroup holds more or fewer tasks than counted"
