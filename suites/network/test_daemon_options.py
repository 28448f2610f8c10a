"""Daemon options for the default bridge: --bip, --fixed-cidr, --mtu, --bridge, and --bridge
with --bip refused.

Each configuration runs the target's engine as a private daemon in a lab network namespace
(fixtures.daemon_config; the shared daemon is never restarted), and the kernel of that lab
namespace is the witness.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from fixtures.containers import Containers
from fixtures.daemon_config import LabHost, lab_containers, private_daemon
from fixtures.iptables import Packet, Ruleset, iptables_save
from fixtures.netlab import Endpoint, Netns, endpoint, lab_netns, links, routes
from fixtures.private_dockerd import DaemonExited
from fixtures.probe import SLEEP
from fixtures.targets.base import ContainerSpec, Driver

BIP = "10.66.0.1/24"
FIXED_CIDR = "10.66.0.128/25"
MTU = 1400
OWN_BRIDGE = "labbr0"  # made by the test in the lab namespace (names there are free)
OWN_BRIDGE_ADDRESS = "10.77.0.1/24"
EXCLUSIVE = "You specified -b & --bip, mutually exclusive options"
OUTSIDE = "198.51.100.1"  # any address off the bridge, for the masquerade walk

pytestmark = pytest.mark.needs("daemon-config")


@pytest.fixture(scope="module")
def sized(target: Driver, request: pytest.FixtureRequest) -> Iterator[tuple[LabHost, Containers]]:
    """One daemon for the three options that shape the default bridge."""
    # Module fixtures run before the per-test capability check: skip here too.
    if "daemon-config" not in target.capabilities:
        pytest.skip(f"{target.name} lacks capability 'daemon-config'")
    config = {"bip": BIP, "fixed-cidr": FIXED_CIDR, "mtu": MTU}
    with (
        private_daemon(target, config) as lab,
        lab_containers(lab, request.node.nodeid) as containers,
    ):
        yield lab, containers


def attach(lab: LabHost, containers: Containers) -> Endpoint:
    container = containers.start(ContainerSpec(command=SLEEP))
    found = endpoint(container.pid, lab.netns)
    assert found.host_veth is not None, found
    assert found.bridge is not None, found
    return found


def make_bridge(ns: Netns, name: str, address: str) -> None:
    with ns.ipr() as ipr:
        ipr.link("add", ifname=name, kind="bridge")
        index = ipr.link_lookup(ifname=name)[0]
        interface = ipaddress.ip_interface(address)
        ipr.addr(
            "add", index=index, address=str(interface.ip), prefixlen=interface.network.prefixlen
        )
        ipr.link("set", index=index, state="up")


@pytest.mark.req("NET-09")
def test_bip_sets_the_bridge_address(sized: tuple[LabHost, Containers]) -> None:
    lab, containers = sized
    found = attach(lab, containers)
    assert found.bridge is not None
    assert found.bridge.addresses == (BIP,), found.bridge
    subnet = str(ipaddress.ip_interface(BIP).network)
    assert [r for r in routes(lab.netns) if r.dst == subnet and r.oif == found.bridge.index], (
        f"no route for {subnet} on {found.bridge.name}: {routes(lab.netns)}"
    )
    assert found.gateway == str(ipaddress.ip_interface(BIP).ip)


@pytest.mark.req("NET-FIXED-01")
def test_fixed_cidr_narrows_the_addresses(sized: tuple[LabHost, Containers]) -> None:
    lab, containers = sized
    narrow = ipaddress.ip_network(FIXED_CIDR)
    for found in (attach(lab, containers), attach(lab, containers)):
        assert found.address.ip in narrow, f"{found.address} is outside {FIXED_CIDR}"
        assert found.address.network == ipaddress.ip_interface(BIP).network, found.address


@pytest.mark.req("NET-MTU-02")
def test_mtu_applies_to_both_veth_ends(sized: tuple[LabHost, Containers]) -> None:
    lab, containers = sized
    found = attach(lab, containers)
    assert found.host_veth is not None
    assert (found.eth0.mtu, found.host_veth.mtu) == (MTU, MTU)


@pytest.mark.req("NET-BRIDGE-01")
def test_bridge_option_uses_the_given_bridge(
    target: Driver, request: pytest.FixtureRequest
) -> None:
    with ExitStack() as stack:
        ns = stack.enter_context(lab_netns())
        make_bridge(ns, OWN_BRIDGE, OWN_BRIDGE_ADDRESS)
        lab = stack.enter_context(private_daemon(target, {"bridge": OWN_BRIDGE}, ns))
        containers = stack.enter_context(lab_containers(lab, request.node.nodeid))
        found = attach(lab, containers)
        assert found.bridge is not None
        assert found.bridge.name == OWN_BRIDGE, f"attached to {found.bridge.name}"
        own = ipaddress.ip_interface(OWN_BRIDGE_ADDRESS)
        assert found.address.network == own.network, found.address
        assert found.gateway == str(own.ip)
        walk = Ruleset(iptables_save(ns)).verdict(
            "nat", "POSTROUTING", Packet(str(found.address.ip), OUTSIDE, out_if="eth9")
        )
        assert walk.target == "MASQUERADE", f"{own.network} is not masqueraded: {walk}"


def processes_in(ns: Netns) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino == ns.inode:
                found.append(f"{pid} {Path(f'/proc/{pid}/comm').read_text().strip()}")
        except OSError:
            continue
    return found


@pytest.mark.req("NET-BRIDGE-02")
def test_bridge_with_bip_is_refused(target: Driver) -> None:
    with lab_netns() as ns:
        make_bridge(ns, OWN_BRIDGE, OWN_BRIDGE_ADDRESS)
        before = {link.name: link.addresses for link in links(ns)}
        config = {"bridge": OWN_BRIDGE, "bip": "10.88.0.1/24"}
        with pytest.raises(DaemonExited) as refused, private_daemon(target, config, ns):
            pass
        assert EXCLUSIVE in str(refused.value), str(refused.value)[-600:]
        assert not processes_in(ns), f"left running in the lab: {processes_in(ns)}"
        after = {link.name: link.addresses for link in links(ns)}
        assert after == before, f"links changed by a daemon that did not start: {after}"
