"""Port publishing (-p HOST:CTR): the container's echo service answers on the host's loopback
and, from another namespace, on the host's address of the link between them; a DNAT rule
to the container exists while it runs and goes with it.

The service is the image's probe (`tcp-listen`, one echo per connection). The host port is
one the kernel found free in the engine's namespace just before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from fixtures.containers import Containers
from fixtures.iptables import Packet, Ruleset, iptables_save
from fixtures.netlab import Netns, Wan, endpoint, free_port, wait_until
from fixtures.probe import probe
from fixtures.targets.base import Container, ContainerSpec
from fixtures.traffic import tcp_exchange

CONTAINER_PORT = 8080
CONNECTIONS = 20  # the probe serves this many, then exits

pytestmark = pytest.mark.needs("bridge-network")


@dataclass(frozen=True)
class Published:
    container: Container
    address: str  # the container's
    host_port: int


def listening(pid: int, port: int) -> bool:
    """A TCP socket listens on `port` in the namespace of `pid` (state 0A in /proc/net/tcp)."""
    with open(f"/proc/{pid}/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return any(row[1].endswith(f":{port:04X}") and row[3] == "0A" for row in rows)


@pytest.fixture
def published(containers: Containers, engine_ns: Netns) -> Published:
    host_port = free_port(engine_ns)
    spec = ContainerSpec(
        command=probe("tcp-listen", CONTAINER_PORT, CONNECTIONS),
        ports=((host_port, CONTAINER_PORT),),
    )
    container = containers.start(spec)
    wait_until(lambda: listening(container.pid, CONTAINER_PORT), 10, "the echo service")
    return Published(container, str(endpoint(container.pid, engine_ns).address.ip), host_port)


def dnat_rules(engine_ns: Netns, published: Published) -> list[str]:
    to = f"--to-destination {published.address}:{CONTAINER_PORT}"
    port = re.compile(rf"--dports? {published.host_port}\b")
    rules = Ruleset(iptables_save(engine_ns, "nat")).lines("nat")
    return [rule for rule in rules if port.search(rule) and to in rule]


@pytest.mark.req("NET-PORT-01")
def test_published_port_answers_on_host_loopback(published: Published, engine_ns: Netns) -> None:
    reply = tcp_exchange(engine_ns, "127.0.0.1", published.host_port, "via-loopback")
    assert reply == "echo:via-loopback"


@pytest.mark.req("NET-PORT-02")
def test_published_port_answers_from_another_namespace(published: Published, wan_host: Wan) -> None:
    reply = tcp_exchange(wan_host.ns, wan_host.host_addr, published.host_port, "via-wan")
    assert reply == "echo:via-wan"


@pytest.mark.req("NET-29")
def test_dnat_rule_follows_the_container(
    published: Published, containers: Containers, engine_ns: Netns
) -> None:
    assert dnat_rules(engine_ns, published), (
        f"no DNAT of port {published.host_port} to {published.address}:{CONTAINER_PORT}"
    )
    arriving = Packet(
        "198.51.100.1", "198.51.100.2", in_if="cts-wan", dport=published.host_port, dst_local=True
    )
    walk = Ruleset(iptables_save(engine_ns, "nat")).verdict("nat", "PREROUTING", arriving)
    assert (walk.target, walk.args[-1:]) == (
        "DNAT",
        (f"{published.address}:{CONTAINER_PORT}",),
    ), walk
    containers.remove(published.container)
    assert not dnat_rules(engine_ns, published), "the DNAT rule outlived the container"
    with pytest.raises(ConnectionRefusedError):
        tcp_exchange(engine_ns, "127.0.0.1", published.host_port, "after-removal")
