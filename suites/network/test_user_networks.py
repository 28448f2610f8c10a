"""User-defined bridge networks: their own subnet, gateway, allocation range and bridge,
isolation from the default bridge and from each other, and name resolution between their
containers.

Networks are made with the driver's `network_create` (subnets drawn at random from a /16 of
the suite's, another draw when the engine says a pool overlaps) and always removed. Name
lookups go to the engine's DNS server; its upstream (--dns) is the WAN host's address, a
namespace of the suite's, so nothing can leave the machine.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from fixtures.containers import Containers
from fixtures.errors import TargetError
from fixtures.etcfiles import ipv4_only, parse_resolv_conf, read_etc
from fixtures.netlab import Endpoint, Netns, Wan, endpoint, settle
from fixtures.probe import SLEEP, probe
from fixtures.session import unique_name
from fixtures.targets.base import Container, ContainerSpec, Driver
from fixtures.traffic import udp_receiver

SUBNETS = ipaddress.IPv4Network("10.231.0.0/16")  # user networks get a random /24 of it
ATTEMPTS = 5
PORT = 7171
# By target kind: the bridge device a network gets (NET-07) and the nameserver its containers
# are given (NET-40). Networks are made without options: isolation is the default asked for.
# (podman 4.3's `--opt isolate=true` with CNI only drops traffic *from* isolated bridges, and
# the CNI firewall plugin leaves its isolation rules behind after the network is removed.)
BRIDGE_NAMES: dict[str, Callable[[str], str]] = {
    "docker": lambda net_id: f"br-{net_id[:12]}",
    "reference": lambda net_id: f"br-{net_id[:12]}",  # refd names them as Docker does
}
RESOLVERS = {"docker": "127.0.0.11", "reference": "127.0.0.11"}

pytestmark = pytest.mark.needs("user-networks")


@dataclass(frozen=True)
class Network:
    name: str
    id: str  # what the engine printed
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address | None  # as asked for; None: the engine's choice
    ip_range: ipaddress.IPv4Network | None


NetworkFactory = Callable[..., Network]


@pytest.fixture
def networks(target: Driver, containers: Containers) -> Iterator[NetworkFactory]:
    """networks(gateway_host=None, range_prefix=None) -> Network: a new bridge network on a
    free /24, with the gateway at that host number and an allocation range of that prefix
    (the last but one of the subnet: neither its first nor its last addresses) if asked.
    All are removed after the test."""
    made: list[Network] = []

    def make(gateway_host: int | None = None, range_prefix: int | None = None) -> Network:
        name = unique_name("net")
        for _ in range(ATTEMPTS):
            subnet = random.choice(list(SUBNETS.subnets(new_prefix=24)))
            gateway = subnet[gateway_host] if gateway_host is not None else None
            ip_range = list(subnet.subnets(new_prefix=range_prefix))[-2] if range_prefix else None
            try:
                net_id = target.network_create(
                    name,
                    str(subnet),
                    str(gateway) if gateway else None,
                    str(ip_range) if ip_range else None,
                )
            except TargetError as exc:
                if "overlap" in str(exc):
                    continue
                raise
            made.append(Network(name, net_id, subnet, gateway, ip_range))
            return made[-1]
        raise AssertionError(f"no free /24 in {SUBNETS} after {ATTEMPTS} draws")

    try:
        yield make
    finally:
        containers.close()  # an engine refuses to remove a network that has endpoints
        for network in reversed(made):
            target.network_remove(network.name)


def start_on(containers: Containers, network: str | None, dns: tuple[str, ...] = ()) -> Container:
    return containers.start(ContainerSpec(command=SLEEP, network=network, dns=dns))


def attached(container: Container, engine_ns: Netns) -> Endpoint:
    found = endpoint(container.pid, engine_ns)
    assert found.bridge is not None, f"{container.name}: eth0 is not bridged: {found}"
    return found


@pytest.mark.req("NET-52")
def test_network_has_its_subnet_gateway_and_range(
    networks: NetworkFactory, containers: Containers, engine_ns: Netns
) -> None:
    network = networks(gateway_host=254, range_prefix=27)
    gateway, allocation = network.gateway, network.ip_range
    assert allocation is not None
    found = attached(start_on(containers, network.name), engine_ns)
    assert found.address.ip in allocation, f"{found.address} is outside the range {allocation}"
    assert found.address.network == network.subnet, found.address
    assert found.gateway == str(gateway), f"default route via {found.gateway}, not {gateway}"
    assert found.bridge is not None
    assert f"{gateway}/24" in found.bridge.addresses, found.bridge


@pytest.mark.req("NET-07")
def test_each_network_has_its_own_bridge(
    target: Driver, networks: NetworkFactory, containers: Containers, engine_ns: Netns
) -> None:
    default = attached(start_on(containers, None), engine_ns).bridge
    first, second = networks(), networks()
    bridges = [attached(start_on(containers, n.name), engine_ns).bridge for n in (first, second)]
    assert default is not None
    names = [b.name for b in bridges if b is not None]
    assert len(set(names)) == 2, f"the networks share a bridge: {names}"
    assert default.name not in names, f"a user network uses the default bridge {default.name}"
    if target.kind in BRIDGE_NAMES:
        expected = [BRIDGE_NAMES[target.kind](n.id) for n in (first, second)]
        assert names == expected, f"bridges {names}, expected {expected}"


@pytest.mark.req("NET-ISO-01")
def test_networks_are_isolated_from_each_other_and_the_default_bridge(
    networks: NetworkFactory, containers: Containers, engine_ns: Netns
) -> None:
    first, second = networks(), networks()
    receiver = start_on(containers, first.name)
    neighbour = start_on(containers, first.name)
    outsiders = {
        "default bridge": start_on(containers, None),
        "other network": start_on(containers, second.name),
    }
    address = str(attached(receiver, engine_ns).address.ip)
    with udp_receiver(containers.driver, receiver, PORT, timeout=5) as waiting:
        # The outsiders send first: if either got through, it would be what the receiver got.
        for where, outsider in outsiders.items():
            sent = containers.exec(outsider, probe("udp-send", address, PORT, where, 3))
            assert sent.exit_code == 0, f"{where}: {sent.stderr}"
        settle(1.0)
        containers.exec(neighbour, probe("udp-send", address, PORT, "neighbour", 3))
    assert waiting.got().get("data") == "neighbour", f"the receiver got {waiting.got()}"


@pytest.mark.req("NET-40")
@pytest.mark.needs("embedded-dns")
def test_containers_resolve_each_other_by_name(
    target: Driver, networks: NetworkFactory, containers: Containers, wan_host: Wan
) -> None:
    network = networks()
    upstream = (wan_host.wan_addr,)
    named, asking = (
        start_on(containers, network.name, upstream),
        start_on(containers, network.name, upstream),
    )
    if target.kind in RESOLVERS:
        nameservers = parse_resolv_conf(read_etc(asking.pid, "resolv.conf")).nameservers
        assert ipv4_only(nameservers) == (RESOLVERS[target.kind],), nameservers
    address = str(endpoint(named.pid, wan_host.host).address.ip)
    done = containers.exec(asking, ["ping", "-c", "1", "-W", "3", named.name])
    assert done.exit_code == 0, f"ping {named.name}: {done.stdout}{done.stderr}"
    assert f"({address})" in done.stdout.splitlines()[0], done.stdout
