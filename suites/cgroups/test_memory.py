"""Memory controller: the limit the runtime was given is the one the kernel enforces."""

from __future__ import annotations

import os

import pytest

from fixtures import host
from fixtures.containers import Containers
from fixtures.probe import SLEEP
from fixtures.targets.base import ContainerSpec

MIB = 1024 * 1024


@pytest.mark.req("CG-05")
@pytest.mark.needs("memory-limit")
def test_memory_limit_is_written_to_cgroupfs(containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP, memory=64 * MIB))
    if "memory" in host.cgroup_mounts():  # v1 (hybrid hosts included)
        cgroup, limit_file = host.cgroup_dir(container.pid, "memory"), "memory.limit_in_bytes"
        own = host.cgroup_dir(os.getpid(), "memory")
    else:
        cgroup, limit_file = host.cgroup_dir(container.pid, ""), "memory.max"
        own = host.cgroup_dir(os.getpid(), "")
    assert cgroup != own, "the container runs in the suite's own memory cgroup"
    assert int((cgroup / limit_file).read_text()) == 64 * MIB
