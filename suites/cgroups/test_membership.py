"""Membership: what runs inside a container is in the container's cgroups: forked children
inherit them, and every thread is listed while cgroup.procs lists the process once."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import cgroupfs
from fixtures.cgroupfs import Cgroup, spec
from fixtures.containers import Containers
from fixtures.probe import probe
from fixtures.targets.base import wait_for

CHILDREN = 3
THREADS = 3


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.req("CG-TREE-01")
def test_forked_children_stay_in_the_container_cgroups(containers: Containers) -> None:
    container = containers.start(spec(probe("fork", CHILDREN, 60)))
    wait_for(lambda: len(children(container.pid)) == CHILDREN, 15, f"{CHILDREN} children")
    parent = Path(f"/proc/{container.pid}/cgroup").read_text()
    assert Cgroup(container.pid).dirs != cgroupfs.own().dirs, "the container is in our cgroups"
    for child in children(container.pid):
        assert Path(f"/proc/{child}/cgroup").read_text() == parent, f"child {child}"
    assert Cgroup(container.pid).ids("procs") == sorted([container.pid, *children(container.pid)])


@pytest.mark.req("CG-TREE-02")
def test_threads_are_listed_and_the_process_once(containers: Containers) -> None:
    container = containers.start(spec(probe("threads", THREADS, 60)))
    task_dir = Path(f"/proc/{container.pid}/task")
    wait_for(lambda: len(list(task_dir.iterdir())) == THREADS + 1, 15, f"{THREADS} threads")
    cgroup = Cgroup(container.pid)
    assert cgroup.ids("threads") == sorted(int(t.name) for t in task_dir.iterdir())
    assert cgroup.ids("procs") == [container.pid]
