"""Classic ways out of a default container, tried from inside with the probe: each must fail,
and fail for the reason confinement gives (the errno), not by accident of this host.

Where this host itself would refuse (it cannot open /dev/vda even as root; its kernel has no
module loader), a host-side control run of the same probe call decides what the container's
answer proves.
"""

from __future__ import annotations

import errno
import os
import subprocess
from typing import Any

import pytest

from fixtures.containers import Containers
from fixtures.image.build import ImageArtifacts, ensure_artifacts
from fixtures.probe import SLEEP, probe
from fixtures.security import (
    DEFAULTS,
    attempt,
    errno_name,
    host_openable_block_device,
    mounts_of,
    refused,
    run_probe_on_host,
)
from fixtures.session import CACHE_DIR
from fixtures.targets.base import Container, ContainerSpec, Driver

# Files under read-only /proc whose write would reach the whole host (core_pattern runs a
# program as host root) or just the container (hostname); opened, never written.
PROC_FILES = ("/proc/sys/kernel/core_pattern", "/proc/sys/kernel/hostname", "/proc/sysrq-trigger")


@pytest.fixture(scope="module")
def image() -> ImageArtifacts:
    return ensure_artifacts(CACHE_DIR / "image")


def try_op(containers: Containers, container: Container, *args: str | int) -> dict[str, Any]:
    """`probe try ARGS` inside: {"op", "ok", "errno"}."""
    return attempt(containers, container, "try", *args)


@pytest.mark.req("SEC-ESC-01")
def test_mount_is_refused(containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP))
    problem = refused(try_op(containers, container, "mount-tmpfs", "/mnt"), errno.EPERM)
    assert problem is None, problem
    assert not [m for m in mounts_of(container.pid) if m.mount_point == "/mnt"]


@pytest.mark.req("SEC-ESC-02")
def test_raw_block_device_cannot_be_opened(containers: Containers, target: Driver) -> None:
    device = host_openable_block_device()
    if device is None:
        pytest.skip("no block device that host root itself may open: nothing to prove")
    # With CAP_MKNOD (a Docker default, asked for where the defaults lack it) the node can be
    # made; the device cgroup must still refuse its use.
    extra = () if "CAP_MKNOD" in DEFAULTS[target.kind].caps else ("MKNOD",)
    if extra and "security-opts" not in target.capabilities:
        pytest.skip(f"{target.name} cannot add CAP_MKNOD: the device cgroup cannot be reached")
    container = containers.start(ContainerSpec(command=SLEEP, cap_add=extra))
    made = try_op(containers, container, "mknod", "/tmp/cts-blk", *device)
    if not made["ok"]:  # a device cgroup that also denies mknod ('m') holds as well
        assert made["errno"] == errno.EPERM, f"mknod: {errno_name(made['errno'])}"
        return
    problem = refused(try_op(containers, container, "open-rdwr", "/tmp/cts-blk"), errno.EPERM)
    assert problem is None, f"block device {device[0]}:{device[1]}: {problem}"


@pytest.mark.req("SEC-05", "SEC-ESC-03")
def test_kernel_tunables_cannot_be_opened_for_writing(containers: Containers) -> None:
    paths = [p for p in PROC_FILES if os.path.exists(p)]
    container = containers.start(ContainerSpec(command=SLEEP))
    problems = {
        path: problem
        for path in paths
        if (problem := refused(try_op(containers, container, "open-rdwr", path), errno.EROFS))
    }
    assert not problems, problems


@pytest.mark.req("SEC-ESC-04")
def test_kernel_modules_cannot_be_loaded(
    containers: Containers, target: Driver, image: ImageArtifacts
) -> None:
    control = run_probe_on_host(image.probe, "try", "init-module")
    assert not control["ok"], "the host loaded an all-zero module image"
    filtered = DEFAULTS[target.kind].seccomp == 2
    # Without CAP_SYS_MODULE (or behind a seccomp filter) the answer is EPERM. A kernel built
    # without modules answers ENOSYS before any capability check, so there only a filter shows.
    expected = errno.ENOSYS if control["errno"] == errno.ENOSYS and not filtered else errno.EPERM
    container = containers.start(ContainerSpec(command=SLEEP))
    problem = refused(try_op(containers, container, "init-module"), expected)
    assert problem is None, f"{problem} (host control: {errno_name(control['errno'])})"


@pytest.mark.req("SEC-ESC-05")
def test_host_processes_cannot_be_signalled(containers: Containers) -> None:
    host_process = subprocess.Popen(["sleep", "120"])
    try:
        container = containers.start(ContainerSpec(command=SLEEP))
        problems = [
            problem
            for pid in (host_process.pid, os.getpid())
            if (problem := refused(try_op(containers, container, "kill", pid, 0), errno.ESRCH))
        ]
        seen = containers.exec(container, probe("pids")).json()["procs"]
    finally:
        host_process.kill()
        host_process.wait()
    assert not problems, problems
    assert {p["comm"] for p in seen} == {"probe"}, f"host processes visible: {seen}"
