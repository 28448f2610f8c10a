"""--network host: the /etc files follow the host (hostname, hosts entries, resolv.conf)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import host
from fixtures.containers import Containers
from fixtures.etcfiles import parse_hosts, parse_resolv_conf, read_etc, uts_hostname
from fixtures.probe import SLEEP
from fixtures.targets.base import ContainerSpec


@pytest.mark.req("ETC-08")
@pytest.mark.needs("etc-files", "network-modes")
def test_host_network_files_follow_the_host(containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP, network="host"))
    assert host.ns_inode(container.pid, "net") == host.ns_inode("self", "net"), (
        "--network host did not share the host's network namespace"
    )
    assert uts_hostname(container.pid) == host.hostname()
    assert read_etc(container.pid, "hostname").removesuffix("\n") == host.hostname()
    # Engines may add their own entries (podman: host.containers.internal); the host's must
    # all be there.
    missing = set(parse_hosts(Path("/etc/hosts").read_text())) - set(
        parse_hosts(read_etc(container.pid, "hosts"))
    )
    assert not missing, f"host /etc/hosts entries missing in the container: {missing}"
    # The network namespace is the host's, so its loopback resolvers are reachable: all kept.
    assert parse_resolv_conf(read_etc(container.pid, "resolv.conf")) == parse_resolv_conf(
        Path("/etc/resolv.conf").read_text()
    )
