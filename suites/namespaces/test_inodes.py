"""Which namespaces a container gets: its own, or the host's, read as /proc/<pid>/ns inodes.

The host side is /proc/self/ns (PID 1's links are unreadable on the project machine).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import host
from fixtures.containers import Containers
from fixtures.probe import SLEEP, probe
from fixtures.targets.base import ContainerSpec
from reference.cgroups.manager import CgroupMode, detect
from reference.linux.procfs import parse_proc_cgroup

# A plain run: True = a namespace of its own, False = the host's. The user namespace is the
# host's unless the target remaps users (userns-remap, covered by the security suite).
DEFAULT_IS_NEW: dict[str, bool] = {
    "uts": True,
    "ipc": True,
    "net": True,
    "mnt": True,
    "pid": True,
    "user": False,
}
# NS-CG-01: Docker's default-cgroupns-mode is "host" while any v1 hierarchy is in use and
# "private" on a cgroup v2-only host (podman and runc's `spec` agree).
CGROUPNS_DEFAULT_IS_NEW: dict[CgroupMode, bool] = {
    CgroupMode.V1: False,
    CgroupMode.HYBRID: False,
    CgroupMode.UNIFIED: True,
}
IDENTITY_MAP = ["0", "0", "4294967295"]
HOST_MODE_SPECS = {
    "ipc": ContainerSpec(command=SLEEP, ipc="host"),
    "pid": ContainerSpec(command=SLEEP, pid="host"),
    "uts": ContainerSpec(command=SLEEP, uts="host"),
}


def expected_new(ns: str) -> bool:
    return CGROUPNS_DEFAULT_IS_NEW[detect()] if ns == "cgroup" else DEFAULT_IS_NEW[ns]


def remaps_users(pid: int) -> bool:
    """True when the process runs under a non-identity uid map (a userns-remap target)."""
    lines = Path(f"/proc/{pid}/uid_map").read_text().splitlines()
    return [line.split() for line in lines] != [IDENTITY_MAP]


def describe(new: bool) -> str:
    return "a namespace of its own" if new else "the host's namespace"


@pytest.mark.parametrize(
    "ns",
    [
        pytest.param("uts", marks=pytest.mark.req("NS-01")),
        pytest.param("ipc", marks=pytest.mark.req("NS-01", "NS-IPC-01")),
        pytest.param("net", marks=pytest.mark.req("NS-01")),
        pytest.param("mnt", marks=pytest.mark.req("NS-01", "NS-MNT-01")),
        pytest.param("pid", marks=pytest.mark.req("NS-01", "NS-PID-01")),
        pytest.param("user", marks=pytest.mark.req("NS-USER-01")),
        pytest.param("cgroup", marks=pytest.mark.req("NS-CG-01")),
    ],
)
def test_default_namespace(containers: Containers, ns: str) -> None:
    container = containers.start(ContainerSpec(command=SLEEP))
    if ns == "user" and remaps_users(container.pid):
        pytest.skip("the target remaps user ids (userns-remap): a user namespace is expected")
    want = expected_new(ns)
    got = host.ns_inode(container.pid, ns) != host.ns_inode("self", ns)
    assert got == want, f"{ns}: expected {describe(want)}, the container has {describe(got)}"


@pytest.mark.req("NS-CG-01")
@pytest.mark.needs("cgroupns")
def test_private_cgroupns_is_new(containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP, cgroupns="private"))
    assert host.ns_inode(container.pid, "cgroup") != host.ns_inode("self", "cgroup")
    # Inside its own cgroup namespace the container's cgroups are the roots of its view.
    seen = containers.exec(container, probe("cgroup"))
    assert seen.exit_code == 0, seen.stderr
    paths = {line.path for line in parse_proc_cgroup(seen.stdout)}
    assert paths == {"/"}, f"cgroup paths seen inside a private cgroup namespace: {seen.stdout}"


@pytest.mark.parametrize(
    "ns",
    [
        pytest.param("ipc", marks=pytest.mark.req("NS-IPC-06")),
        pytest.param("pid", marks=pytest.mark.req("NS-PID-02")),
        pytest.param("uts", marks=pytest.mark.req("NS-UTS-05")),
    ],
)
@pytest.mark.needs("namespace-modes")
def test_host_mode_shares_the_host_namespace(containers: Containers, ns: str) -> None:
    container = containers.start(HOST_MODE_SPECS[ns])
    assert host.ns_inode(container.pid, ns) == host.ns_inode("self", ns), (
        f"--{ns}=host: the container did not get the host's {ns} namespace"
    )
    # Only the one namespace asked for is shared.
    assert host.ns_inode(container.pid, "mnt") != host.ns_inode("self", "mnt")
