"""--network host: the /etc files follow the host (hostname, hosts entries, resolv.conf).

"host" is the engine's network namespace: ours for Docker on this host, an engine host of its
own for a daemon started in one (refd's session daemon, fixtures.targets.reference). The files
are the host's either way: the namespace changes no file the engine reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import host
from fixtures.containers import Containers
from fixtures.etcfiles import parse_hosts, parse_resolv_conf, read_etc, uts_hostname
from fixtures.netlab import engine_netns
from fixtures.probe import SLEEP
from fixtures.targets.base import ContainerSpec, Driver


@pytest.mark.req("ETC-08")
@pytest.mark.needs("etc-files", "network-modes")
def test_host_network_files_follow_the_host(target: Driver, containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP, network="host"))
    assert host.ns_inode(container.pid, "net") == engine_netns(target).inode, (
        "--network host did not share the engine's network namespace"
    )
    assert uts_hostname(container.pid) == host.hostname()
    assert read_etc(container.pid, "hostname").removesuffix("\n") == host.hostname()
    # Engines may add their own entries (podman: host.containers.internal); the host's must
    # all be there.
    missing = set(parse_hosts(Path("/etc/hosts").read_text())) - set(
        parse_hosts(read_etc(container.pid, "hosts"))
    )
    assert not missing, f"host /etc/hosts entries missing in the container: {missing}"
    # The host's file as it is (on a Docker host the namespace is the host's, whose loopback
    # resolvers it reaches): all kept.
    assert parse_resolv_conf(read_etc(container.pid, "resolv.conf")) == parse_resolv_conf(
        Path("/etc/resolv.conf").read_text()
    )
