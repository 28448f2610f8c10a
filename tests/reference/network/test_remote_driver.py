"""The remote driver: what it sends (Docker 20.10's bodies), what it accepts back and what it
rolls back, against a scripted plugin (no root). test_remote_driver_kernel.py runs a whole
container life against the suite's own plugin, with real links."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reference.errors import RefError
from reference.network.drivers.remote import (
    RemoteDriver,
    forget_remote_drivers,
    remote_driver,
)
from reference.network.model import Endpoint, IpamConfig, Network, PortBinding, StaticRoute
from reference.network.plugins import Client, Discovery, Plugin, PluginError, PluginUnreachable
from tests.reference.network._scripted_plugin import HANG, ScriptedPlugin, scripted_plugin

ACTIVATE, CAPS = "Plugin.Activate", "NetworkDriver.GetCapabilities"
ND = "NetworkDriver."


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Unix socket paths are at most 107 bytes: pytest's tmp_path can be longer."""
    path = Path(tempfile.mkdtemp(prefix="rd", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def plugin(short_dir: Path) -> Iterator[ScriptedPlugin]:
    with scripted_plugin(short_dir / "sp.sock") as served:
        yield served


@pytest.fixture
def driver(short_dir: Path, plugin: ScriptedPlugin) -> RemoteDriver:
    found = Plugin("sp", f"unix://{short_dir}/sp.sock", short_dir)
    return RemoteDriver(found, Client(found, call_timeout=2, retry_budget=0.2))


def make_network(internal: bool = False, scope: str = "local") -> Network:
    ipam = IpamConfig("10.213.5.0/24", "10.213.5.1", aux_addresses={"r": "10.213.5.9"})
    return Network(secrets.token_hex(32), "rn", "sp", scope, [ipam], {"o": "v"}, internal=internal)


def make_endpoint(net: Network, **fields: Any) -> Endpoint:
    base: dict[str, Any] = {"address": "10.213.5.2/24", "gateway": "10.213.5.1"}
    return Endpoint(secrets.token_hex(32), net.id, "c" * 64, "c1", **{**base, **fields})


def called(plugin: ScriptedPlugin) -> list[str]:
    return [m.removeprefix(ND) for m in plugin.methods() if m not in (ACTIVATE, CAPS)]


# -- networks -----------------------------------------------------------------------------------
def test_create_network_sends_what_docker_sends(
    driver: RemoteDriver, plugin: ScriptedPlugin
) -> None:
    net = make_network()
    driver.create_network(net)
    driver.delete_network(net)
    assert plugin.methods()[:3] == [ACTIVATE, CAPS, ND + "CreateNetwork"]
    assert plugin.bodies(ACTIVATE) == plugin.bodies(CAPS) == [None]
    assert plugin.bodies(ND + "CreateNetwork") == [
        {
            "NetworkID": net.id,
            "Options": {
                "com.docker.network.enable_ipv6": False,
                "com.docker.network.generic": {"o": "v"},
            },
            "IPv4Data": [
                {
                    "AddressSpace": "LocalDefault",
                    "Pool": "10.213.5.0/24",
                    "Gateway": "10.213.5.1/24",
                    "AuxAddresses": {"r": "10.213.5.9/24"},
                }
            ],
            "IPv6Data": [],
        }
    ]
    assert plugin.bodies(ND + "DeleteNetwork") == [{"NetworkID": net.id}]
    assert plugin.methods().count(ACTIVATE) == 1  # once per driver


def test_internal_and_global_networks(driver: RemoteDriver, plugin: ScriptedPlugin) -> None:
    driver.create_network(make_network(internal=True, scope="global"))
    body = plugin.bodies(ND + "CreateNetwork")[0]
    assert body["Options"]["com.docker.network.internal"] is True
    assert body["IPv4Data"][0]["AddressSpace"] == "GlobalDefault"


@pytest.mark.parametrize(
    ("answer", "scope", "reach"),
    [
        ({"Scope": "global"}, "global", "global"),  # ConnectivityScope defaults to Scope
        ({"Scope": "local", "ConnectivityScope": "global"}, "local", "global"),
    ],
)
def test_capabilities(
    driver: RemoteDriver, plugin: ScriptedPlugin, answer: dict[str, str], scope: str, reach: str
) -> None:
    plugin.answers[CAPS] = answer
    assert (driver.scope(), driver.connectivity_scope()) == (scope, reach)


@pytest.mark.parametrize(
    "answer", [{"Scope": "swarm"}, {}, {"Scope": "local", "ConnectivityScope": "x"}]
)
def test_bad_capabilities_are_refused_and_asked_again(
    driver: RemoteDriver, plugin: ScriptedPlugin, answer: dict[str, str]
) -> None:
    plugin.answers[CAPS] = answer
    with pytest.raises(PluginError, match="expecting 'local' or 'global'"):
        driver.create_network(make_network())
    plugin.answers[CAPS] = {"Scope": "local"}
    driver.create_network(make_network())
    assert plugin.methods() == [ACTIVATE, CAPS, ACTIVATE, CAPS, ND + "CreateNetwork"]


# -- endpoints ----------------------------------------------------------------------------------
def test_create_endpoint_sends_ipams_address_and_the_ports(
    driver: RemoteDriver, plugin: ScriptedPlugin
) -> None:
    net = make_network()
    ports = [PortBinding("tcp", 80, "", 8080), PortBinding("tcp", 80, "127.0.0.1", 8081)]
    ep = make_endpoint(net, ports=ports)
    driver.create_endpoint(net, ep)
    body = plugin.bodies(ND + "CreateEndpoint")[0]
    assert body["Interface"] == {"Address": "10.213.5.2/24", "AddressIPv6": "", "MacAddress": ""}
    assert (body["NetworkID"], body["EndpointID"]) == (net.id, ep.id)
    assert body["Options"] == {
        "com.docker.network.endpoint.exposedports": [{"Proto": 6, "Port": 80}],
        "com.docker.network.portmap": [
            {"Proto": 6, "Port": 80, "IP": "", "HostIP": "", "HostPort": 8080, "HostPortEnd": 8080},
            {
                "Proto": 6,
                "Port": 80,
                "IP": "",
                "HostIP": "127.0.0.1",
                "HostPort": 8081,
                "HostPortEnd": 8081,
            },
        ],
    }
    assert ep.mac == ""


def test_the_plugin_may_supply_the_mac_it_was_not_given(
    driver: RemoteDriver, plugin: ScriptedPlugin
) -> None:
    plugin.answers[ND + "CreateEndpoint"] = {"Interface": {"MacAddress": "AA:BB:CC:00:11:22"}}
    net = make_network()
    ep = make_endpoint(net)
    driver.create_endpoint(net, ep)
    assert (ep.mac, ep.address) == ("aa:bb:cc:00:11:22", "10.213.5.2/24")


@pytest.mark.parametrize(
    ("given", "mine", "complaint"),
    [
        ({"Address": "10.213.5.3/24"}, {}, "modified the address"),
        ({"MacAddress": "02:00:00:00:00:01"}, {"mac": "02:42:0a:d5:05:02"}, "modified the MAC"),
        ({"MacAddress": "zz:00:00:00:00:01"}, {}, "invalid MAC"),
        ({"Address": "10.213.5.300/24"}, {"address": ""}, "invalid address"),
        ({"AddressIPv6": "10.0.0.1/8"}, {}, "not an IPv6"),
        ("eth0", {}, "not an object"),
    ],
)
def test_an_interface_the_plugin_may_not_set_is_rolled_back(
    driver: RemoteDriver,
    plugin: ScriptedPlugin,
    given: Any,
    mine: dict[str, str],
    complaint: str,
) -> None:
    plugin.answers[ND + "CreateEndpoint"] = {"Interface": given}
    net = make_network()
    ep = make_endpoint(net, **mine)
    before = ep.to_doc()
    with pytest.raises(PluginError, match=complaint):
        driver.create_endpoint(net, ep)
    assert called(plugin) == ["CreateEndpoint", "DeleteEndpoint"]
    assert plugin.bodies(ND + "DeleteEndpoint") == [{"NetworkID": net.id, "EndpointID": ep.id}]
    assert ep.to_doc() == before


def test_join_answer_becomes_join_info(driver: RemoteDriver, plugin: ScriptedPlugin) -> None:
    plugin.answers[ND + "Join"] = {
        "InterfaceName": {"SrcName": "veth-ab", "DstPrefix": "net"},
        "Gateway": "10.213.5.1",
        "StaticRoutes": [
            {"Destination": "10.9.0.0/16", "RouteType": 0, "NextHop": "10.213.5.254"},
            {"Destination": "10.8.0.1/16", "RouteType": 1},
        ],
        "DisableGatewayService": True,
    }
    net = make_network()
    ep = make_endpoint(net)
    info = driver.join(net, ep, "/run/refd/netns/abc")
    assert plugin.bodies(ND + "Join") == [
        {
            "NetworkID": net.id,
            "EndpointID": ep.id,
            "SandboxKey": "/run/refd/netns/abc",
            "Options": {
                "com.docker.network.endpoint.exposedports": [],
                "com.docker.network.portmap": [],
            },
        }
    ]
    assert (info.src_name, info.dst_prefix, info.gateway) == ("veth-ab", "net", "10.213.5.1")
    assert info.src_netns is None  # the plugin serves from this very process
    assert info.routes == [StaticRoute("10.9.0.0/16", "10.213.5.254"), StaticRoute("10.8.0.0/16")]
    assert ep.driver_state["disable_gateway_service"] is True


IFACE = {"InterfaceName": {"SrcName": "x", "DstPrefix": "e"}}
ROUTE = {"Destination": "10.0.0.0/8"}
BAD_JOINS = [
    ({"InterfaceName": None}, "names no interface"),
    ({"InterfaceName": {"SrcName": "x", "DstPrefix": ""}}, "bad interface names"),
    ({"InterfaceName": {"SrcName": "a-name-too-long-for-linux"}}, "bad interface names"),
    ({"Gateway": "nope"}, "gateway"),
    ({"GatewayIPv6": "10.0.0.1"}, "not IPv6"),
    ({"StaticRoutes": [{}]}, "bad route destination"),
    ({"StaticRoutes": [{**ROUTE, "RouteType": 0}]}, "no NextHop"),
    ({"StaticRoutes": [{**ROUTE, "RouteType": 7}]}, "unknown RouteType"),
]


@pytest.mark.parametrize(("answer", "complaint"), BAD_JOINS)
def test_a_join_answer_refd_cannot_use_is_left_again(
    driver: RemoteDriver, plugin: ScriptedPlugin, answer: dict[str, Any], complaint: str
) -> None:
    plugin.answers[ND + "Join"] = {**IFACE, **answer}
    net = make_network()
    ep = make_endpoint(net)
    with pytest.raises(PluginError, match=complaint):
        driver.join(net, ep, "/k")
    assert called(plugin) == ["Join", "Leave"]
    assert ep.driver_state == {}


def test_without_a_gateway_program_only_asks_for_oper_info(
    driver: RemoteDriver, plugin: ScriptedPlugin
) -> None:
    plugin.answers[ND + "EndpointOperInfo"] = {"Value": {"k": 1}}
    net = make_network()
    ep = make_endpoint(net)
    driver.create_endpoint(net, ep)
    driver.join(net, ep, "/k")
    driver.program(net, ep)
    driver.leave(net, ep)
    driver.delete_endpoint(net, ep)
    assert called(plugin) == [
        "CreateEndpoint",
        "Join",
        "EndpointOperInfo",
        "Leave",
        "DeleteEndpoint",
    ]
    ids = {"NetworkID": net.id, "EndpointID": ep.id}
    for method in ("EndpointOperInfo", "Leave", "DeleteEndpoint"):
        assert plugin.bodies(ND + method) == [ids]
    assert ep.driver_state["oper_info"] == {"k": 1}


def gateway_join(plugin: ScriptedPlugin) -> None:
    plugin.answers[ND + "Join"] = {
        "InterfaceName": {"SrcName": "veth-ab", "DstPrefix": "eth"},
        "Gateway": "10.213.5.1",
    }


def test_a_gateway_endpoint_gets_external_connectivity(
    driver: RemoteDriver, plugin: ScriptedPlugin
) -> None:
    gateway_join(plugin)
    net = make_network()
    ep = make_endpoint(net)
    driver.join(net, ep, "/k")
    driver.program(net, ep)
    driver.leave(net, ep)
    assert called(plugin) == [
        "Join",
        "ProgramExternalConnectivity",
        "EndpointOperInfo",
        "RevokeExternalConnectivity",
        "Leave",
    ]
    assert plugin.bodies(ND + "ProgramExternalConnectivity")[0]["Options"] == {
        "com.docker.network.endpoint.exposedports": [],
        "com.docker.network.portmap": [],
    }


def test_external_connectivity_is_optional_and_never_on_internal_networks(
    driver: RemoteDriver, plugin: ScriptedPlugin
) -> None:
    gateway_join(plugin)
    plugin.answers[ND + "ProgramExternalConnectivity"] = (404, b"404 page not found")
    net = make_network()
    ep = make_endpoint(net)
    driver.join(net, ep, "/k")
    driver.program(net, ep)
    driver.leave(net, ep)
    internal = make_network(internal=True)
    other = make_endpoint(internal)
    driver.join(internal, other, "/k")
    driver.program(internal, other)
    assert called(plugin) == [
        "Join",
        "ProgramExternalConnectivity",
        "EndpointOperInfo",
        "Leave",
        "Join",
        "EndpointOperInfo",
    ]


def test_program_undoes_external_connectivity_when_oper_info_fails(
    driver: RemoteDriver, plugin: ScriptedPlugin
) -> None:
    gateway_join(plugin)
    plugin.answers[ND + "EndpointOperInfo"] = {"Err": "no"}
    net = make_network()
    ep = make_endpoint(net)
    driver.join(net, ep, "/k")
    with pytest.raises(PluginError, match="EndpointOperInfo: no"):
        driver.program(net, ep)
    assert called(plugin)[1:] == [
        "ProgramExternalConnectivity",
        "EndpointOperInfo",
        "RevokeExternalConnectivity",
    ]


def test_a_failing_leave_is_raised_naming_the_plugin(
    driver: RemoteDriver, plugin: ScriptedPlugin
) -> None:
    plugin.answers[ND + "Leave"] = {"Err": "endpoint busy"}
    net = make_network()
    with pytest.raises(PluginError, match=r"plugin sp: NetworkDriver\.Leave: endpoint busy"):
        driver.leave(net, make_endpoint(net))


def test_a_hung_plugin_fails_the_call_quickly(short_dir: Path, plugin: ScriptedPlugin) -> None:
    found = Plugin("sp", f"unix://{short_dir}/sp.sock", short_dir)
    hurried = RemoteDriver(found, Client(found, call_timeout=0.2))
    plugin.answers[ND + "CreateNetwork"] = HANG
    with pytest.raises(PluginUnreachable, match=r"CreateNetwork: no answer within 0\.2 s"):
        hurried.create_network(make_network())


# -- one driver per name ------------------------------------------------------------------------
def test_remote_driver_finds_activates_and_caches(short_dir: Path, plugin: ScriptedPlugin) -> None:
    found = Discovery((short_dir,), ())
    try:
        assert remote_driver("nothing", found) is None
        first = remote_driver("sp", found)
        assert first is not None
        assert first.name == "sp"
        assert remote_driver("sp", found) is first
        assert plugin.methods() == [ACTIVATE, CAPS]
    finally:
        forget_remote_drivers()


def test_remote_driver_does_not_cache_a_failed_activation(
    short_dir: Path, plugin: ScriptedPlugin
) -> None:
    found = Discovery((short_dir,), ())
    plugin.answers[ACTIVATE] = {"Implements": ["IpamDriver"]}
    try:
        with pytest.raises(RefError, match="does not implement NetworkDriver"):
            remote_driver("sp", found)
        plugin.answers[ACTIVATE] = {"Implements": ["NetworkDriver"]}
        assert remote_driver("sp", found) is not None
        assert plugin.methods() == [ACTIVATE, ACTIVATE, CAPS]
    finally:
        forget_remote_drivers()
