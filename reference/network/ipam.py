"""IPAM apart from drivers (libnetwork's default ipam): pools for networks, addresses for
endpoints.

Pools: a network gets the subnet it asks for, unless it overlaps another network's or a
route of refd's namespace (another engine's bridge, e.g. a running Docker's docker0), which is
refused ("Pool overlaps with other one on this address space", Docker's wording). Without a
subnet, the first free pool of the default address pools is taken, as Docker does:
172.17.0.0/16 ... 172.31.0.0/16 as /16s, then 192.168.0.0/16 as /20s.

Addresses: the gateway is the first host address unless given; endpoints get the lowest free
address of ip_range (or the subnet), never the network, broadcast, gateway or aux addresses.
Allocations live in memory and are rebuilt from the persisted endpoints at start-up (the
controller calls `reserve`), so there is no second copy to drift. Global (overlay) networks
allocate through the cluster store instead (reference.network.drivers.overlay).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_network

from reference.errors import ConfigError, ConflictError
from reference.network.model import IpamConfig

# Docker's default address pools: 172.17.0.0/16 ... 172.31.0.0/16, then 192.168.0.0/16 in /20s.
DEFAULT_POOLS: tuple[tuple[str, int], ...] = (
    *((f"172.{n}.0.0/16", 16) for n in range(17, 32)),
    ("192.168.0.0/16", 20),
)


def parse_subnet(text: str, what: str = "subnet") -> IPv4Network:
    try:
        network = ip_network(text, strict=False)
    except ValueError:
        raise ConfigError(f"invalid {what} {text!r}: not an IPv4 CIDR", obj=what) from None
    if not isinstance(network, IPv4Network):
        raise ConfigError(f"invalid {what} {text!r}: only IPv4 is supported", obj=what)
    if network.prefixlen > 30:
        raise ConfigError(f"invalid {what} {text}: too small for any host", obj=what)
    return network


def default_pools() -> Iterable[IPv4Network]:
    for base, size in DEFAULT_POOLS:
        yield from IPv4Network(base).subnets(new_prefix=size)


def host_routes(netns: str | None = None) -> list[IPv4Network]:
    """Destinations of the routes in refd's namespace other than default ones (what libnetwork
    checks a new pool against, so that it never shadows an existing network)."""
    from reference.network.sandbox import ipr

    found = []
    with ipr(netns) as ip:
        for route in ip.get_routes(family=2, table=254):
            length = route["dst_len"]
            dst = route.get_attr("RTA_DST")
            if dst and length:
                found.append(IPv4Network(f"{dst}/{length}", strict=False))
    return found


class Ipam:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: dict[str, IpamConfig] = {}  # network id → its config
        self._used: dict[str, set[IPv4Address]] = {}  # network id → allocated addresses

    # -- pools ---------------------------------------------------------------------------
    def request_pool(
        self, net_id: str, wanted: IpamConfig | None, taken: Iterable[IPv4Network] = ()
    ) -> IpamConfig:
        """Claim a pool for network `net_id`: `wanted` (checked) or the first free default one.
        `taken`: other subnets in use (routes of the namespace)."""
        with self._lock:
            busy = [IPv4Network(c.subnet) for c in self._pools.values()]
            others = [*busy, *taken]
            if wanted is None or not wanted.subnet:
                subnet = next((p for p in default_pools() if not _overlaps(p, others)), None)
                if subnet is None:
                    raise ConflictError(
                        "could not find an available, non-overlapping IPv4 address pool "
                        "among the defaults to assign to the network"
                    )
                config = IpamConfig(str(subnet))
            else:
                subnet = parse_subnet(wanted.subnet)
                if _overlaps(subnet, busy):
                    raise ConflictError("Pool overlaps with other one on this address space")
                if _overlaps(subnet, list(taken)):
                    raise ConflictError(
                        f"Pool overlaps with other one on this address space (a route of the "
                        f"host covers {subnet})"
                    )
                config = IpamConfig(str(subnet), wanted.gateway, wanted.ip_range,
                                    dict(wanted.aux_addresses))  # fmt: skip
            config = _complete(config)
            self._pools[net_id] = config
            self._used[net_id] = set()
            return config

    def adopt_pool(self, net_id: str, config: IpamConfig) -> None:
        """A pool known from disk (restart) or from the cluster store (global networks)."""
        with self._lock:
            self._pools[net_id] = _complete(config)
            self._used.setdefault(net_id, set())

    def release_pool(self, net_id: str) -> None:
        with self._lock:
            self._pools.pop(net_id, None)
            self._used.pop(net_id, None)

    # -- addresses -----------------------------------------------------------------------
    def request_address(self, net_id: str, wanted: str = "") -> str:
        """An address of the network as "a.b.c.d/len" (`wanted`: that one, if free)."""
        with self._lock:
            config = self._pools[net_id]
            subnet = IPv4Network(config.subnet)
            used = self._used[net_id]
            address: IPv4Address | None
            if wanted:
                try:
                    address = IPv4Address(wanted)
                except ValueError:
                    raise ConfigError(f"invalid IPv4 address {wanted!r}") from None
                if address not in subnet:
                    raise ConfigError(f"address {wanted} is not in the subnet {subnet}")
                if address in used or address in _reserved(config):
                    raise ConflictError(f"Address already in use: {wanted}")
            else:
                space = IPv4Network(config.ip_range) if config.ip_range else subnet
                reserved = _reserved(config)
                address = next(
                    (a for a in space.hosts() if a not in used and a not in reserved), None
                )
                if address is None:
                    raise ConflictError(f"no available IPv4 addresses on the network {net_id[:12]}")
            used.add(address)
            return f"{address}/{subnet.prefixlen}"

    def reserve(self, net_id: str, address: str) -> None:
        with self._lock:
            if net_id in self._used:
                self._used[net_id].add(IPv4Interface(address).ip)

    def release_address(self, net_id: str, address: str) -> None:
        with self._lock:
            if address and net_id in self._used:
                self._used[net_id].discard(IPv4Interface(address).ip)


def _overlaps(subnet: IPv4Network, others: Iterable[IPv4Network]) -> bool:
    return any(subnet.overlaps(other) for other in others)


def _reserved(config: IpamConfig) -> set[IPv4Address]:
    subnet = IPv4Network(config.subnet)
    reserved = {subnet.network_address, subnet.broadcast_address}
    if config.gateway:
        reserved.add(IPv4Address(config.gateway))
    reserved.update(IPv4Address(a) for a in config.aux_addresses.values())
    return reserved


def _complete(config: IpamConfig) -> IpamConfig:
    """Checks a config and fills its gateway (the first host address)."""
    subnet = parse_subnet(config.subnet)
    gateway = config.gateway
    if gateway:
        try:
            if IPv4Address(gateway) not in subnet:
                raise ConfigError(f"gateway {gateway} is not in the subnet {subnet}", obj="gateway")
        except ValueError:
            raise ConfigError(f"invalid gateway {gateway!r}", obj="gateway") from None
    else:
        gateway = str(next(subnet.hosts()))
    if config.ip_range:
        ip_range = parse_subnet(config.ip_range, "ip-range")
        if not ip_range.subnet_of(subnet):
            raise ConfigError(f"ip-range {ip_range} is not in the subnet {subnet}", obj="ip-range")
    return IpamConfig(str(subnet), gateway, config.ip_range, dict(config.aux_addresses))
