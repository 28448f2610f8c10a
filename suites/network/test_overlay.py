"""Overlay networks across two hosts: VXLAN over an underlay, with an external store (etcd).

Two lab hosts (network namespaces on one underlay "switch", fixtures/overlay.py) each run the
target's engine configured with the same cluster store. An overlay network made on host A
must be the same global network on host B, a container on A must reach one on B, and on the
underlay the traffic must be VXLAN: UDP to port 4789 between the hosts' advertised
addresses, with the VNI of the network's VXLAN device, carrying the containers' own packets.
The witnesses are the kernel (links and VNIs read in the namespaces), the store (read from
the switch), and frames sniffed on host A's switch port.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv4Network
from typing import Any

import pytest

from fixtures.daemon_config import lab_containers
from fixtures.engine_network import Network, engine_network, inspect_network
from fixtures.errors import TargetError
from fixtures.netlab import Netns, capture, host_probe, settle
from fixtures.overlay import (
    VXLAN_PORT,
    OverlayLab,
    overlay_lab,
    overlay_link,
    overlay_sandbox,
    vxlan_ids,
)
from fixtures.probe import SLEEP, probe
from fixtures.targets.base import CAPABILITIES, Container, ContainerSpec, Driver

SUBNETS = "10.199.0.0/16"  # overlay networks get a random /24 of it, inside the lab only
DNS = ("198.51.100.53",)  # never the host's resolver
PORT = 5000  # any port: the listener runs in the namespace of B's container

pytestmark = pytest.mark.needs("overlay")


@dataclass(frozen=True)
class Scene:
    lab: OverlayLab
    network: Network  # made on host A
    containers: tuple[Container, Container]  # one on A, one on B

    def address(self, index: int) -> IPv4Interface:
        link = overlay_link(self.containers[index].pid, self.network.subnet)
        return IPv4Interface(link.addresses[0])

    def vnis(self, index: int) -> set[int]:
        """VNIs of the VXLAN devices in host `index`'s sandbox of the network (the kernel's)."""
        host, container = self.lab.hosts[index], self.containers[index]
        pid = host.lab.daemon_pid
        return set(vxlan_ids(overlay_sandbox(pid, container.pid, self.network.subnet)).values())

    def exchange(self, message: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """A's container sends `message` over TCP to a listener in B's container's network
        namespace: (what the sender got back, what the listener saw)."""
        a, b = self.containers
        with host_probe(Netns(f"/proc/{b.pid}/ns/net"), "tcp-listen", PORT, 1) as listener:
            assert listener.line() == {"listening": PORT}
            ip = str(self.address(1).ip)
            sent = self.lab.hosts[0].driver.exec(a, probe("tcp-send", ip, PORT, message))
            assert sent.exit_code == 0, f"A's container cannot reach {ip}: {sent.stderr}"
            return sent.json(), listener.line()


@pytest.fixture(scope="module")
def scene(request: pytest.FixtureRequest, target: Driver) -> Iterator[Scene]:
    """Two lab hosts, an overlay network made on A, a sleeping container on each host."""
    # Module scope runs before the per-test capability check: skip here too.
    if "overlay" not in target.capabilities:
        pytest.skip(f"{target.name} lacks capability 'overlay': {CAPABILITIES['overlay']}")
    with ExitStack() as stack:
        try:
            lab = stack.enter_context(overlay_lab(target))
        except TargetError as exc:
            pytest.skip(f"no lab hosts for {target.name}: {exc}")
        network = stack.enter_context(engine_network(lab.hosts[0].driver, "overlay", SUBNETS))
        spec = ContainerSpec(command=SLEEP, network=network.name, dns=DNS)
        started = [
            stack.enter_context(lab_containers(host.lab, request.node.nodeid)).start(spec)
            for host in lab.hosts
        ]
        yield Scene(lab, network, (started[0], started[1]))


@pytest.mark.req("NET-44")
def test_overlay_network_is_one_global_network_on_every_host(scene: Scene) -> None:
    for number, host in enumerate(scene.lab.hosts, 1):
        seen = inspect_network(host.driver, scene.network.name)
        assert seen is not None, f"host {number} does not know the overlay network"
        found = (seen["Id"], seen["Scope"], seen["Driver"])
        assert found == (scene.network.id, "global", "overlay"), f"host {number}: {found}"
        subnets = [IPv4Network(c["Subnet"]) for c in seen["IPAM"]["Config"]]
        assert subnets == [scene.network.subnet], f"host {number}: {seen['IPAM']}"
    # The record lives in the shared store, not in either daemon alone.
    stored = scene.lab.store_get("/?recursive=true")
    assert stored is not None, "the cluster store is empty"
    assert scene.network.id in str(stored), "the store has no record of the network"


@pytest.mark.req("NET-OVL-01")
def test_containers_on_two_hosts_reach_each_other(scene: Scene) -> None:
    a, b = scene.address(0), scene.address(1)
    assert a != b
    assert a.network == b.network == scene.network.subnet, (a, b)
    reply, seen = scene.exchange("over-the-overlay")
    assert reply == {"reply": "echo:over-the-overlay"}
    # No address translation on an overlay: B sees A's own overlay address.
    assert seen["peer"].split(":")[0] == str(a.ip), seen
    assert seen["data"] == "over-the-overlay"


@pytest.mark.req("NET-OVL-02")
def test_overlay_traffic_is_vxlan_on_the_underlay(scene: Scene) -> None:
    import scapy.layers.vxlan  # noqa: F401 - binds VXLAN to UDP port 4789 for parsing
    from scapy.layers.inet import IP, UDP
    from scapy.layers.vxlan import VXLAN

    host_a, host_b = scene.lab.hosts
    on_a, on_b = scene.vnis(0), scene.vnis(1)
    assert on_a == on_b, f"VNIs of the VXLAN devices: host A {on_a}, host B {on_b}"
    assert len(on_a) == 1, f"VNIs of the VXLAN devices: {on_a}"
    (vni,) = on_a

    def is_vxlan(frame: Any) -> bool:
        return UDP in frame and frame[UDP].dport == VXLAN_PORT

    with capture(scene.lab.switch, [host_a.port], is_vxlan) as sniffed:
        scene.exchange("vxlan")
        settle()
    frames = sniffed.stop()
    assert frames, f"no UDP/{VXLAN_PORT} frame on host A's underlay link"
    outer = {(f[IP].src, f[IP].dst) for f in frames}
    assert outer == {(host_a.address, host_b.address), (host_b.address, host_a.address)}, outer
    assert {f[VXLAN].vni for f in frames} == {vni}
    a, b = str(scene.address(0).ip), str(scene.address(1).ip)
    inner = {(f[VXLAN][IP].src, f[VXLAN][IP].dst) for f in frames if IP in f[VXLAN]}
    assert inner == {(a, b), (b, a)}, f"inner packets: {inner}"
