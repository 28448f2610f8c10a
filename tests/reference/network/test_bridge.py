"""The bridge driver: its checks without root, and (as root) a whole life in a scratch network
namespace: networks, endpoints, a published port and NAT with real traffic
(tests/reference/network/_bridge_scenario.py runs inside the namespace, since the driver acts
on its own process's one)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.iptables import Packet, Ruleset
from reference.errors import ConfigError
from reference.network.drivers.bridge import BridgeDriver
from reference.network.firewall import Firewall
from reference.network.model import DRIVER_MTU, Endpoint, IpamConfig, Network
from reference.network.portmap import PortMapper

REPO = Path(__file__).resolve().parents[3]
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("iptables"), reason="needs root and iptables"
)


def driver() -> BridgeDriver:
    firewall = Firewall(enabled=False, ip_forward=False)
    return BridgeDriver(firewall, PortMapper(firewall), 1500)


def test_endpoint_mac_is_derived_from_its_address() -> None:
    net = Network(id="a" * 64, name="n", driver="bridge")
    ep = Endpoint(
        id="b" * 64, network_id=net.id, container_id="c", name="c", address="172.17.0.2/16"
    )
    driver().create_endpoint(net, ep)
    assert ep.mac == "02:42:ac:11:00:02"
    ep.mac = "02:00:00:00:00:01"
    driver().create_endpoint(net, ep)
    assert ep.mac == "02:00:00:00:00:01", "a given MAC is kept"


@pytest.mark.parametrize(
    ("options", "ipam", "word"),
    [
        ({DRIVER_MTU: "big"}, [IpamConfig("10.1.0.0/24", "10.1.0.1")], "MTU"),
        ({DRIVER_MTU: "20"}, [IpamConfig("10.1.0.0/24", "10.1.0.1")], "MTU"),
        (
            {"com.docker.network.bridge.name": "x" * 16},
            [IpamConfig("10.1.0.0/24", "10.1.0.1")],
            "name",
        ),
        ({}, [], "subnet"),
        (
            {"com.docker.network.bridge.enable_icc": "maybe"},
            [IpamConfig("10.1.0.0/24", "10.1.0.1")],
            "boolean",
        ),
    ],
)
def test_bad_network_settings_are_refused_before_any_change(
    options: dict[str, str], ipam: list[IpamConfig], word: str
) -> None:
    net = Network(id="a" * 64, name="bad", driver="bridge", ipam=ipam, options=options)
    with pytest.raises(ConfigError, match=word):
        driver().create_network(net)


def test_existing_address_of_a_missing_link_is_none() -> None:
    assert BridgeDriver.existing_address("cts-none-" + secrets.token_hex(3)) is None


def test_existing_address_of_a_non_bridge_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a bridge"):
        BridgeDriver.existing_address("lo")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """What _bridge_scenario saw in a scratch namespace (made and deleted here)."""
    name = f"cts-hbr-{secrets.token_hex(3)}"
    work = tmp_path_factory.mktemp("bridge")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        done = subprocess.run(
            ["ip", "netns", "exec", name, sys.executable, "-m",
             "tests.reference.network._bridge_scenario", str(work)],
            cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        yield json.loads(done.stdout)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@needs_root
def test_bridge_has_the_gateway_route_mtu_and_fixed_mac(scenario: dict[str, Any]) -> None:
    bridge = scenario["bridge"]
    assert (bridge["kind"], bridge["mtu"], bridge["up"]) == ("bridge", 1400, True), bridge
    assert bridge["addresses"] == ["10.201.0.1/24"]
    assert bridge["mac"].startswith("02:42:"), bridge
    route = [r for r in scenario["routes"] if r["dst"] == "10.201.0.0/24"]
    assert route == [{"dst": "10.201.0.0/24", "oif": bridge["index"], "scope": 253, "proto": 2}]


@needs_root
def test_endpoint_is_a_veth_pair_from_the_bridge(scenario: dict[str, Any]) -> None:
    veth, eth0 = scenario["veth"], scenario["eth0"]
    assert (veth["kind"], veth["master"], veth["mtu"], veth["up"]) == (
        "veth", scenario["bridge"]["index"], 1400, True,
    )  # fmt: skip
    assert (eth0["mac"], eth0["addresses"], eth0["mtu"]) == (
        "02:42:0a:c9:00:02", ["10.201.0.2/24"], 1400,
    )  # fmt: skip
    assert scenario["endpoint"]["ports"][0]["host_port"] in range(49153, 61000)


@needs_root
def test_traffic_published_port_nat_and_isolation(scenario: dict[str, Any]) -> None:
    # 127.0.0.1 of the engine namespace reaches the container, its source the gateway's
    # (route_localnet + masquerade); from the WAN the peer's own address arrives (DNAT only).
    assert scenario["loopback"] == "echo:hi from 10.201.0.1"
    assert scenario["from_wan"] == "echo:hi from 198.51.100.2"
    assert scenario["outbound"] == "echo:hi from 198.51.100.1", "not masqueraded"
    assert scenario["from_other_network"].startswith("TimeoutError"), "networks not isolated"
    assert scenario["after_leave"].startswith("ConnectionRefusedError")


@needs_root
def test_the_kernel_rules_walk_like_the_suite_expects(scenario: dict[str, Any]) -> None:
    rules = Ruleset(scenario["rules"])
    port = scenario["endpoint"]["ports"][0]["host_port"]
    arriving = Packet("198.51.100.2", "198.51.100.1", in_if="cts-wan", dport=port, dst_local=True)
    walk = rules.verdict("nat", "PREROUTING", arriving)
    assert (walk.target, walk.args[-1:]) == ("DNAT", ("10.201.0.2:8080",)), walk
    out = Packet("10.201.0.2", "198.51.100.2", out_if="cts-wan")
    assert rules.verdict("nat", "POSTROUTING", out).target == "MASQUERADE"


@needs_root
def test_everything_is_removed(scenario: dict[str, Any]) -> None:
    assert scenario["veth_after_leave"] == {}
    assert scenario["bridge_after"] == {}
    left = [line for line in scenario["after"] if "br-" in line or "10.20" in line]
    assert not left, left
    assert scenario["seconds"] < 20
