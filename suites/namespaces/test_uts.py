"""UTS namespace: the container has its own, -h sets its hostname, the host keeps its own."""

from __future__ import annotations

import secrets

import pytest

from fixtures import host
from fixtures.containers import Containers
from fixtures.probe import SLEEP, probe
from fixtures.targets.base import ContainerSpec


@pytest.mark.req("NS-01")
def test_uts_namespace_is_new(containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP))
    assert host.ns_inode(container.pid, "uts") != host.ns_inode("self", "uts"), (
        "the container shares the host's UTS namespace"
    )


@pytest.mark.req("NS-UTS-02", "NS-UTS-08")
@pytest.mark.needs("hostname")
def test_hostname_flag_sets_container_hostname_only(containers: Containers) -> None:
    before = host.hostname()
    wanted = f"cts-h{secrets.token_hex(4)}"
    result = containers.run(ContainerSpec(command=probe("hostname"), hostname=wanted))
    assert result.exit_code == 0, result.stderr
    assert result.json()["hostname"] == wanted
    assert host.hostname() == before, "the host's hostname changed"
