"""IPAM: pools chosen or checked against other networks and the namespace's routes, addresses
handed out lowest first, never the network, broadcast, gateway or aux addresses."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from reference.errors import ConfigError, ConflictError
from reference.network.ipam import Ipam, parse_subnet
from reference.network.model import IpamConfig


def test_default_pool_is_172_17_then_the_next_free_one() -> None:
    ipam = Ipam()
    first = ipam.request_pool("a", None)
    assert (first.subnet, first.gateway) == ("172.17.0.0/16", "172.17.0.1")
    # docker0 holds 172.18 (a route of the namespace): skipped
    second = ipam.request_pool("b", None, [IPv4Network("172.18.0.0/16")])
    assert second.subnet == "172.19.0.0/16"


def test_requested_pool_overlapping_a_network_or_a_route_is_refused() -> None:
    ipam = Ipam()
    ipam.request_pool("a", IpamConfig("10.1.0.0/24"))
    with pytest.raises(ConflictError, match="overlaps"):
        ipam.request_pool("b", IpamConfig("10.1.0.128/25"))
    with pytest.raises(ConflictError, match="overlaps"):
        ipam.request_pool("c", IpamConfig("10.2.0.0/24"), [IPv4Network("10.2.0.0/16")])
    ipam.release_pool("a")
    assert ipam.request_pool("b", IpamConfig("10.1.0.128/25")).gateway == "10.1.0.129"


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (IpamConfig("10.0.0.0/33"), "subnet"),
        (IpamConfig("fd00::/64"), "subnet"),
        (IpamConfig("10.3.0.0/24", gateway="10.4.0.1"), "gateway"),
        (IpamConfig("10.3.0.0/24", ip_range="10.3.1.0/28"), "ip-range"),
        (IpamConfig("bogus"), "subnet"),
    ],
)
def test_bad_configs_name_the_field(config: IpamConfig, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Ipam().request_pool("x", config)
    assert caught.value.obj == field


def test_addresses_skip_reserved_ones_and_come_back() -> None:
    ipam = Ipam()
    ipam.request_pool(
        "n",
        IpamConfig("10.5.0.0/29", gateway="10.5.0.1", aux_addresses={"h": "10.5.0.2"}),
    )
    got = [ipam.request_address("n") for _ in range(4)]
    assert got == ["10.5.0.3/29", "10.5.0.4/29", "10.5.0.5/29", "10.5.0.6/29"]
    with pytest.raises(ConflictError, match="no available"):
        ipam.request_address("n")
    ipam.release_address("n", "10.5.0.4/29")
    assert ipam.request_address("n") == "10.5.0.4/29"


def test_ip_range_and_a_wanted_address() -> None:
    ipam = Ipam()
    ipam.request_pool("n", IpamConfig("10.6.0.0/24", ip_range="10.6.0.128/25"))
    assert ipam.request_address("n") == "10.6.0.129/24"
    assert ipam.request_address("n", "10.6.0.7") == "10.6.0.7/24"
    with pytest.raises(ConflictError, match="in use"):
        ipam.request_address("n", "10.6.0.7")
    with pytest.raises(ConflictError, match="in use"):
        ipam.request_address("n", "10.6.0.1")  # the gateway
    with pytest.raises(ConfigError, match="not in the subnet"):
        ipam.request_address("n", "10.7.0.7")


def test_reserve_rebuilds_allocations_after_a_restart() -> None:
    ipam = Ipam()
    ipam.adopt_pool("n", IpamConfig("10.8.0.0/24"))
    ipam.reserve("n", "10.8.0.2/24")
    assert ipam.request_address("n") == "10.8.0.3/24"


def test_parse_subnet_refuses_host_only_sizes() -> None:
    with pytest.raises(ConfigError):
        parse_subnet("10.0.0.0/31")
    assert parse_subnet("10.0.0.9/24") == IPv4Network("10.0.0.0/24")
