"""Remote network drivers: the engine speaks libnetwork's remote protocol to a plugin it finds
by its socket, and containers end up with the interface the plugin made.

The plugin is the suite's own (fixtures/remote_plugin.py): pure protocol, no Docker code, one
real veth pair per joined endpoint. What the engine asked for (the recorded calls, their order
and payloads) is checked against the kernel: the container's network namespace is the
SandboxKey's, its eth0 is the peer of the plugin's veth and carries the address IPAM gave the
endpoint, and its frames come out of the plugin's end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Interface, ip_interface
from pathlib import Path
from typing import Any

import pytest

from fixtures import host
from fixtures.containers import Containers
from fixtures.engine_network import Network, engine_network, inspect_network
from fixtures.netlab import Netns, capture, endpoint, links, settle
from fixtures.probe import SLEEP, probe
from fixtures.remote_plugin import DOCKER_PLUGIN_DIR, DST_PREFIX, RemoteNetworkPlugin, remote_plugin
from fixtures.targets.base import Container, ContainerSpec, Driver

# By target kind: where the engine discovers plugin sockets (<dir>/<name>.sock); refd's is its
# own, beside Docker's, so a refd never finds a plugin served to the host's Docker.
PLUGIN_DIRS = {"docker": DOCKER_PLUGIN_DIR, "reference": Path("/run/refd/plugins")}
SUBNETS = "10.213.0.0/16"  # plugin networks get a random /24 of it; nothing routes there
DNS = ("198.51.100.53",)  # never the host's resolver

ACTIVATE = "Plugin.Activate"
GET_CAPABILITIES = "NetworkDriver.GetCapabilities"
CREATE_NETWORK = "NetworkDriver.CreateNetwork"
CREATE_ENDPOINT = "NetworkDriver.CreateEndpoint"
JOIN = "NetworkDriver.Join"
OPER_INFO = "NetworkDriver.EndpointOperInfo"
LEAVE = "NetworkDriver.Leave"
DELETE_ENDPOINT = "NetworkDriver.DeleteEndpoint"
DELETE_NETWORK = "NetworkDriver.DeleteNetwork"

pytestmark = pytest.mark.needs("remote-plugin")


@pytest.fixture
def plugin(target: Driver, engine_ns: Netns) -> Iterator[RemoteNetworkPlugin]:
    directory = PLUGIN_DIRS.get(target.kind)
    if directory is None:
        pytest.skip(f"no known plugin socket directory for {target.kind or target.name}")
    with remote_plugin(directory, engine_ns) as served:
        yield served


@pytest.fixture
def network(target: Driver, plugin: RemoteNetworkPlugin) -> Iterator[Network]:
    """Tests name it before `containers`: their containers must go before the network."""
    with engine_network(target, plugin.name, SUBNETS) as created:
        yield created


def in_order(methods: Sequence[str], *wanted: str) -> bool:
    """Whether `wanted` occurs in `methods` as a subsequence (other calls may come between)."""
    remaining = iter(methods)
    return all(method in remaining for method in wanted)


def start_on(containers: Containers, network: Network) -> Container:
    return containers.start(ContainerSpec(command=SLEEP, network=network.name, dns=DNS))


def engine_link_names(engine_ns: Netns) -> set[str]:
    return {link.name for link in links(engine_ns)}


def only(plugin: RemoteNetworkPlugin, method: str) -> dict[str, Any]:
    """The body of the one `method` call the plugin got."""
    bodies = plugin.bodies(method)
    assert len(bodies) == 1, f"expected one {method} call, got {bodies}"
    return bodies[0]


def endpoint_address(plugin: RemoteNetworkPlugin) -> IPv4Interface:
    body = only(plugin, CREATE_ENDPOINT)
    address = ip_interface(body["Interface"]["Address"])
    assert isinstance(address, IPv4Interface), body
    return address


@pytest.mark.req("NET-45", "NET-46", "NET-50")
def test_network_create_activates_the_plugin_found_by_its_socket(
    plugin: RemoteNetworkPlugin, network: Network
) -> None:
    methods = plugin.methods()
    assert methods[:1] == [ACTIVATE], methods
    assert in_order(methods, ACTIVATE, GET_CAPABILITIES, CREATE_NETWORK), methods
    # Both carry no payload at all.
    payloads = [call.body for call in plugin.calls if call.method in (ACTIVATE, GET_CAPABILITIES)]
    assert payloads == [None] * len(payloads), payloads


@pytest.mark.req("NET-47")
def test_network_create_and_remove_reach_the_plugin(
    target: Driver, plugin: RemoteNetworkPlugin, network: Network
) -> None:
    created = only(plugin, CREATE_NETWORK)
    assert created["NetworkID"] == network.id
    pools = created.get("IPv4Data") or []
    assert [pool["Pool"] for pool in pools] == [str(network.subnet)], created
    gateway = ip_interface(pools[0]["Gateway"])
    assert gateway.network == network.subnet, created
    assert not [m for m in plugin.methods() if "Endpoint" in m or m == JOIN]

    target.network_remove(network.name)
    assert plugin.methods()[-1] == DELETE_NETWORK, plugin.methods()
    assert only(plugin, DELETE_NETWORK) == {"NetworkID": network.id}
    assert inspect_network(target, network.name) is None, "the engine still lists the network"


@pytest.mark.req("NET-48", "NET-49")
def test_container_joins_the_sandbox_through_the_plugin(
    plugin: RemoteNetworkPlugin, network: Network, containers: Containers, engine_ns: Netns
) -> None:
    container = start_on(containers, network)
    methods = plugin.methods()
    assert in_order(methods, CREATE_NETWORK, CREATE_ENDPOINT, JOIN, OPER_INFO), methods
    created = only(plugin, CREATE_ENDPOINT)
    join = only(plugin, JOIN)
    ids = {"NetworkID": network.id, "EndpointID": created["EndpointID"]}
    assert {key: join[key] for key in ids} == ids, join
    assert all({k: b[k] for k in ids} == ids for b in plugin.bodies(OPER_INFO))
    address = endpoint_address(plugin)
    assert address.network == network.subnet, f"IPAM address {address} not in {network.subnet}"

    # The sandbox the plugin was told about is the container's network namespace.
    assert os.stat(join["SandboxKey"]).st_ino == host.ns_inode(container.pid, "net"), join

    # The engine moved the plugin's peer in, named it <DstPrefix>0, gave it IPAM's address.
    veth = plugin.veths[created["EndpointID"]]
    assert veth.peer not in engine_link_names(engine_ns), f"{veth.peer} was not moved in"
    attached = endpoint(container.pid, engine_ns, f"{DST_PREFIX}0")
    peer = attached.host_veth
    assert peer is not None, f"the peer of {DST_PREFIX}0 is not in the host's namespace"
    assert peer.name == veth.host, f"{DST_PREFIX}0 is not the peer of the plugin's {veth.host}"
    assert peer.peer_index == attached.eth0.index
    assert str(address) in attached.eth0.addresses, (attached.eth0, address)


@pytest.mark.req("NET-48", "NET-49")
def test_container_removal_leaves_and_deletes_the_endpoint(
    plugin: RemoteNetworkPlugin, network: Network, containers: Containers, engine_ns: Netns
) -> None:
    container = start_on(containers, network)
    endpoint_id = only(plugin, CREATE_ENDPOINT)["EndpointID"]
    veth = plugin.veths[endpoint_id]
    sandbox = Path(only(plugin, JOIN)["SandboxKey"])
    before = len(plugin.calls)

    containers.remove(container)
    after = plugin.methods()[before:]
    assert in_order(after, LEAVE, DELETE_ENDPOINT), after
    assert not {JOIN, CREATE_ENDPOINT} & set(after), after
    ids = {"NetworkID": network.id, "EndpointID": endpoint_id}
    assert plugin.bodies(LEAVE) == [ids]
    assert plugin.bodies(DELETE_ENDPOINT) == [ids]
    # The plugin deletes its veth on DeleteEndpoint; nothing of the pair may be left.
    outside = engine_link_names(engine_ns)
    assert not {veth.host, veth.peer} & outside, f"the plugin's veth is left: {veth}"
    assert not host.mountinfo_lines_with(sandbox.name), f"{sandbox} is still mounted"


@pytest.mark.req("NET-49")
def test_container_frames_leave_through_the_plugin_veth(
    plugin: RemoteNetworkPlugin, network: Network, containers: Containers, engine_ns: Netns
) -> None:
    """The container sends to a neighbour that does not exist: its ARP request, with the IPAM
    address as sender, must come out of the plugin's end of the pair (and go nowhere)."""
    container = start_on(containers, network)
    address = endpoint_address(plugin)
    veth = plugin.veths[only(plugin, CREATE_ENDPOINT)["EndpointID"]]
    eth0 = endpoint(container.pid, engine_ns, f"{DST_PREFIX}0").eth0
    neighbour = str(network.subnet[-2])
    from scapy.layers.l2 import ARP

    def asks_for_neighbour(frame: Any) -> bool:
        return ARP in frame and frame[ARP].op == 1 and frame[ARP].pdst == neighbour

    with capture(engine_ns, [veth.host], asks_for_neighbour) as sniffed:
        sent = containers.exec(container, probe("udp-send", neighbour, 9, "cts", 3))
        assert sent.exit_code == 0, sent.stderr
        settle()
    frames = sniffed.stop()
    assert frames, f"no ARP request for {neighbour} came out of {veth.host}"
    senders = {(f[ARP].psrc, f[ARP].hwsrc) for f in frames}
    assert senders == {(str(address.ip), eth0.mac)}, [f.summary() for f in frames]
