"""The default bridge network as the kernel shows it: the bridge with its gateway address and
the connected route, and per container a veth pair from the bridge to the container's eth0.

Everything is read over netlink from both sides: the engine's namespace (the host's, or a
private daemon's lab namespace, fixtures.netlab.engine_netns) and the container's own.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pytest

from fixtures.containers import Containers
from fixtures.netlab import Endpoint, Netns, endpoint, routes
from fixtures.probe import SLEEP
from fixtures.security import ALWAYS, Ranges, in_ranges, version_of
from fixtures.targets.base import ContainerSpec, Driver


@dataclass(frozen=True)
class DefaultBridge:
    names: tuple[str, ...]  # the bridge device, any of these
    gateway: str  # its address, "a.b.c.d/len"
    mtu: int


# By target kind: the default network as configured out of the box (Docker's defaults, NET-03;
# podman's default network: cni-podman0 with the CNI backend, podman0 with netavark; refd's
# defaults, in the engine host its session daemon runs in: Docker's, its bridge named refd0).
DEFAULT_BRIDGES = {
    "docker": DefaultBridge(("docker0",), "172.17.0.1/16", 1500),
    "podman": DefaultBridge(("cni-podman0", "podman0"), "10.88.0.1/16", 1500),
    "reference": DefaultBridge(("refd0",), "172.17.0.1/16", 1500),
}
# Docker derived the MAC from the IPv4 address (02:42 + 4 bytes) until 28.0 (NET-06); refd
# does as Docker 20.10 does, in every version.
MAC_FROM_IP: dict[str, Ranges] = {"docker": (((0,), (28,)),), "reference": ALWAYS}

pytestmark = pytest.mark.needs("bridge-network")


def default_bridge(target: Driver) -> DefaultBridge:
    if target.kind not in DEFAULT_BRIDGES:
        pytest.skip(f"no known default bridge for {target.kind or target.name}")
    return DEFAULT_BRIDGES[target.kind]


def attach(containers: Containers, engine_ns: Netns) -> Endpoint:
    container = containers.start(ContainerSpec(command=SLEEP))
    found = endpoint(container.pid, engine_ns)
    assert found.host_veth is not None, f"no link in the engine's namespace pairs eth0: {found}"
    assert found.bridge is not None, f"the host end {found.host_veth.name} has no master"
    return found


@pytest.mark.req("NET-03")
def test_default_bridge_has_the_gateway_and_the_route(
    target: Driver, containers: Containers, engine_ns: Netns
) -> None:
    expected = default_bridge(target)
    bridge = attach(containers, engine_ns).bridge
    assert bridge is not None
    assert bridge.kind == "bridge", bridge
    assert bridge.name in expected.names, bridge
    assert expected.gateway in bridge.addresses, bridge
    subnet = ipaddress.ip_interface(expected.gateway).network
    connected = [r for r in routes(engine_ns) if r.dst == str(subnet) and r.oif == bridge.index]
    assert connected, f"no route for {subnet} on {bridge.name}: {routes(engine_ns)}"
    assert (connected[0].scope, connected[0].proto, connected[0].gateway) == (253, 2, None), (
        f"not the kernel's connected (scope link) route: {connected[0]}"
    )


@pytest.mark.req("NS-NET-03")
def test_eth0_is_paired_with_a_veth_on_the_bridge(containers: Containers, engine_ns: Netns) -> None:
    found = attach(containers, engine_ns)
    eth0, veth, bridge = found.eth0, found.host_veth, found.bridge
    assert veth is not None
    assert bridge is not None
    assert (eth0.name, eth0.kind, veth.kind) == ("eth0", "veth", "veth"), (eth0, veth)
    assert veth.master == bridge.index, f"{veth.name} is not enslaved to {bridge.name}"
    # Each end names the other: its ifindex, and (by id) the namespace it lives in.
    assert eth0.peer_index == veth.index, (eth0, veth)
    assert veth.peer_index == eth0.index, (eth0, veth)
    assert found.nsid_of_host >= 0, "the container's namespace has no id for the engine's"
    assert eth0.peer_nsid == found.nsid_of_host, (eth0, found.nsid_of_host)
    assert found.nsid_of_container >= 0, "the engine's namespace has no id for the container's"
    assert veth.peer_nsid == found.nsid_of_container, (veth, found.nsid_of_container)
    assert eth0.up, eth0
    assert veth.up, veth


@pytest.mark.req("NET-05")
def test_container_address_and_default_route_use_the_bridge(
    containers: Containers, engine_ns: Netns
) -> None:
    found = attach(containers, engine_ns)
    assert found.bridge is not None
    assert found.bridge.addresses, f"{found.bridge.name} has no IPv4 address"
    gateway = ipaddress.ip_interface(found.bridge.addresses[0])
    assert found.address.network == gateway.network, (found.address, gateway)
    assert found.address.ip != gateway.ip
    assert found.gateway == str(gateway.ip), f"default route via {found.gateway}, not {gateway}"


@pytest.mark.req("NET-06")
def test_container_mac_address(target: Driver, containers: Containers, engine_ns: Netns) -> None:
    found = attach(containers, engine_ns)
    first = int(found.eth0.mac.split(":")[0], 16)
    assert first & 0x02, f"{found.eth0.mac} is not locally administered"
    assert not first & 0x01, f"{found.eth0.mac} is a multicast address"
    if in_ranges(version_of(target), MAC_FROM_IP.get(target.kind, ())):
        derived = "02:42:" + ":".join(f"{b:02x}" for b in found.address.ip.packed)
        assert found.eth0.mac == derived, (
            f"MAC {found.eth0.mac} is not derived from {found.address}"
        )


@pytest.mark.req("NET-MTU-01")
def test_veth_ends_have_the_network_mtu(
    target: Driver, containers: Containers, engine_ns: Netns
) -> None:
    expected = default_bridge(target).mtu
    found = attach(containers, engine_ns)
    assert found.host_veth is not None
    assert (found.eth0.mtu, found.host_veth.mtu) == (expected, expected)
