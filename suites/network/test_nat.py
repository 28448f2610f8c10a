"""NAT on the wire: a container talks to a fake WAN host (fixtures.netlab.wan), a namespace
with a TEST-NET address linked to the engine's namespace and with no route back to any
container subnet, so a reply can only come back if the source was rewritten.

On the WAN side the image's probe echoes (`tcp-listen`, run directly in the WAN namespace)
and prints each peer's address, and scapy sniffs the WAN link. The self-test runs this file
against a private daemon without masquerading (tests/selftest/test_network.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fixtures.containers import Containers
from fixtures.daemon_config import LabFactory
from fixtures.netlab import Netns, Wan, capture, endpoint, host_probe, settle, wan
from fixtures.probe import SLEEP, probe
from fixtures.targets.base import CommandResult, ContainerSpec

PORT = 8080
MESSAGE = "nat-probe"


@dataclass(frozen=True)
class Exchange:
    container_address: str
    result: CommandResult  # of the container's `probe tcp-send`
    sources: set[str]  # source addresses of the connection's packets on the WAN link
    peers: list[str]  # addresses the WAN server accepted connections from


def connect_out(containers: Containers, engine_ns: Netns, outside: Wan) -> Exchange:
    """A container on the default bridge connects to the WAN host's echo server."""
    container = containers.start(ContainerSpec(command=SLEEP))
    address = str(endpoint(container.pid, engine_ns).address.ip)
    towards_server = lambda p: p.haslayer("TCP") and p["TCP"].dport == PORT  # noqa: E731
    with (
        host_probe(outside.ns, "tcp-listen", PORT, 1) as server,
        capture(outside.ns, ["eth0"], towards_server) as wire,
    ):
        assert server.line() == {"listening": PORT}
        done = containers.exec(container, probe("tcp-send", outside.wan_addr, PORT, MESSAGE))
        settle()
        sources = {frame["IP"].src for frame in wire.stop()}
        peers = [server.line()["peer"].split(":")[0]] if done.exit_code == 0 else []
    return Exchange(address, done, sources, peers)


@pytest.mark.req("NET-NAT-01")
@pytest.mark.needs("bridge-network")
def test_outbound_connection_leaves_with_the_host_address(
    containers: Containers, engine_ns: Netns, wan_host: Wan
) -> None:
    seen = connect_out(containers, engine_ns, wan_host)
    assert seen.sources == {wan_host.host_addr}, (
        f"the WAN saw sources {seen.sources}, not the host's {wan_host.host_addr} "
        f"(container {seen.container_address})"
    )
    assert seen.result.exit_code == 0, f"no reply reached the container: {seen.result.stderr}"
    assert seen.result.json() == {"reply": f"echo:{MESSAGE}"}
    assert seen.peers == [wan_host.host_addr]


@pytest.mark.req("NET-NAT-02")
@pytest.mark.needs("daemon-config")
def test_without_ip_masq_the_container_address_leaves(lab_factory: LabFactory) -> None:
    lab, containers = lab_factory({"ip-masq": False})
    with wan(lab.netns) as outside:
        seen = connect_out(containers, lab.netns, outside)
    assert seen.sources == {seen.container_address}, f"the WAN saw sources {seen.sources}"
    # The WAN host has no route back to the container's subnet: no reply can arrive.
    assert seen.result.exit_code != 0, f"a reply arrived unmasqueraded: {seen.result.stdout}"
