"""IPC namespace: SysV shared memory, semaphores and message queues stay in the container's
IPC namespace, and a container started with --ipc container:<donor> shares the donor's.

Objects are made inside with `probe ipc create KEY` (one of each kind under one key) and
looked for from the host side in /proc/sysvipc, read by a host `cat` in the namespace in
question (fixtures.nsenter.sysv_keys).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from fixtures import host, nsenter
from fixtures.containers import Containers
from fixtures.probe import SLEEP, probe
from fixtures.targets.base import Container, ContainerSpec

ALL_KINDS = {kind: True for kind in nsenter.SYSV_KINDS}
NO_KINDS = {kind: False for kind in nsenter.SYSV_KINDS}


@pytest.fixture
def key() -> Iterator[int]:
    """A fresh SysV key; whatever a broken runtime let the test make with it on the host is
    removed afterwards."""
    value = 0x63740000 | secrets.randbits(16)  # "ct" in the high bytes, for whoever finds one
    yield value
    if any(value in keys for keys in nsenter.sysv_keys().values()):
        nsenter.remove_sysv_key(value)


def create(containers: Containers, container: Container, key: int) -> None:
    done = containers.exec(container, probe("ipc", "create", hex(key)))
    assert done.exit_code == 0, f"probe ipc create failed: {done.stdout} {done.stderr}"


def holds(keys: dict[str, set[int]], key: int) -> dict[str, bool]:
    return {kind: key in found for kind, found in keys.items()}


@pytest.mark.req("NS-IPC-01")
def test_sysv_objects_stay_in_the_container(containers: Containers, key: int) -> None:
    maker = containers.start(ContainerSpec(command=SLEEP))
    other = containers.start(ContainerSpec(command=SLEEP))
    create(containers, maker, key)
    assert holds(nsenter.sysv_keys(maker.pid), key) == ALL_KINDS, "the objects were not made"
    assert holds(nsenter.sysv_keys(), key) == NO_KINDS, "objects made inside are on the host"
    assert holds(nsenter.sysv_keys(other.pid), key) == NO_KINDS, (
        "objects made in one container are visible in another"
    )
    # And what the other container itself lists.
    listed = containers.exec(other, probe("ipc", "list"))
    assert listed.exit_code == 0, listed.stderr
    assert holds({k: set(v) for k, v in listed.json().items()}, key) == NO_KINDS


@pytest.mark.req("NS-IPC-05")
@pytest.mark.needs("namespace-modes")
def test_ipc_container_mode_shares_the_donors_objects(containers: Containers, key: int) -> None:
    # Docker lets only a "shareable" donor (or one in the host's namespace) be joined.
    donor = containers.start(ContainerSpec(command=SLEEP, ipc="shareable"))
    assert host.ns_inode(donor.pid, "ipc") != host.ns_inode("self", "ipc"), (
        "the shareable donor has no IPC namespace of its own"
    )
    create(containers, donor, key)
    joiner = containers.start(ContainerSpec(command=SLEEP, ipc=f"container:{donor.id}"))
    assert host.ns_inode(joiner.pid, "ipc") == host.ns_inode(donor.pid, "ipc"), (
        "the joiner is not in the donor's IPC namespace"
    )
    listed = containers.exec(joiner, probe("ipc", "list"))
    assert listed.exit_code == 0, listed.stderr
    assert holds({k: set(v) for k, v in listed.json().items()}, key) == ALL_KINDS
    assert holds(nsenter.sysv_keys(), key) == NO_KINDS, "the shared objects are on the host"
