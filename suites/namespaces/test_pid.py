"""PID namespace: the command is PID 1 and the host's processes are out of sight."""

from __future__ import annotations

import subprocess

import pytest

from fixtures import host
from fixtures.containers import Containers
from fixtures.probe import SLEEP, probe
from fixtures.targets.base import ContainerSpec


@pytest.mark.req("NS-01", "NS-PID-01")
def test_command_is_pid_1(containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP))
    assert host.ns_inode(container.pid, "pid") != host.ns_inode("self", "pid")
    # NSpid lists the PID in every namespace from the host's down to the container's.
    assert host.status(container.pid)["NSpid"].split() == [str(container.pid), "1"]


@pytest.mark.req("NS-PID-04")
def test_host_processes_are_invisible(containers: Containers) -> None:
    marker = subprocess.Popen(["sleep", "120"])  # a host process the container must not see
    try:
        seen = containers.run(ContainerSpec(command=probe("pids"))).json()
    finally:
        marker.kill()
        marker.wait()
    assert seen["pid"] == 1
    assert [p["pid"] for p in seen["procs"]] == [1], f"container sees other processes: {seen}"
