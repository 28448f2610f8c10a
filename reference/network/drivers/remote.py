"""Remote network drivers: libnetwork's remote protocol, spoken to a plugin found by name.

The plugin does the network technology; refd keeps IPAM, the records and the sandbox. The
messages and their order are Docker 20.10's (libnetwork drivers/remote, docs/remote.md, and
what dockerd sent to a recording plugin on this machine, notes section "g."):

    first use         Plugin.Activate, GetCapabilities          (remote_driver(), activate())
    network create    CreateNetwork                              (after IPAM's pool)
    container start   CreateEndpoint, [sandbox], Join, [plumb],
                      ProgramExternalConnectivity (only with a gateway), EndpointOperInfo
    container stop    RevokeExternalConnectivity (if programmed), Leave, [give the link back],
                      DeleteEndpoint
    network remove    DeleteNetwork

The plugin makes its link in its own network namespace. That is refd's when both run on the
host, as with Docker; when refd runs in a namespace of its own, the plugin's PID (the unix
socket's peer credentials) says where the link is, so the sandbox code moves it from there.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_interface, ip_network
from typing import Any

from reference.errors import ConfigError, RefError
from reference.network.model import Endpoint, IpamConfig, JoinInfo, Network, StaticRoute
from reference.network.plugins import (
    Client,
    Discovery,
    Plugin,
    PluginError,
    PluginNotImplemented,
)

log = logging.getLogger(__name__)

IMPLEMENTS = "NetworkDriver"
GET_CAPABILITIES = "NetworkDriver.GetCapabilities"
CREATE_NETWORK = "NetworkDriver.CreateNetwork"
DELETE_NETWORK = "NetworkDriver.DeleteNetwork"
CREATE_ENDPOINT = "NetworkDriver.CreateEndpoint"
DELETE_ENDPOINT = "NetworkDriver.DeleteEndpoint"
JOIN = "NetworkDriver.Join"
LEAVE = "NetworkDriver.Leave"
OPER_INFO = "NetworkDriver.EndpointOperInfo"
PROGRAM_EXTERNAL = "NetworkDriver.ProgramExternalConnectivity"
REVOKE_EXTERNAL = "NetworkDriver.RevokeExternalConnectivity"

# The option keys libnetwork puts in the requests (netlabel).
GENERIC = "com.docker.network.generic"
ENABLE_IPV6 = "com.docker.network.enable_ipv6"
INTERNAL = "com.docker.network.internal"
EXPOSED_PORTS = "com.docker.network.endpoint.exposedports"
PORT_MAP = "com.docker.network.portmap"
PROTOCOLS = {"tcp": 6, "udp": 17, "sctp": 132}  # types.Protocol: sent as numbers
SCOPES = ("local", "global")
IFNAMSIZ = 15
ROUTE_NEXTHOP, ROUTE_CONNECTED = 0, 1


@dataclass(frozen=True)
class Capabilities:
    scope: str  # where the network records live: "local" or "global"
    connectivity_scope: str  # how far endpoints reach


class RemoteDriver:
    """model.NetworkDriver for one plugin; activated once, on first use."""

    def __init__(self, plugin: Plugin, client: Client | None = None) -> None:
        self.name = plugin.name
        self.plugin = plugin
        self.client = client or Client(plugin)
        self._lock = threading.Lock()
        self._capabilities: Capabilities | None = None

    # -- activation ---------------------------------------------------------------------------
    def activate(self) -> Capabilities:
        """Plugin.Activate, then GetCapabilities; done once (a failure is retried next time)."""
        with self._lock:
            if self._capabilities is None:
                self.client.activate(IMPLEMENTS)
                answer = self.client.call(GET_CAPABILITIES)
                scope = answer.get("Scope")
                reach = answer.get("ConnectivityScope") or scope
                for value in (scope, reach):
                    if value not in SCOPES:
                        raise PluginError(
                            self.name,
                            GET_CAPABILITIES,
                            f"invalid capability: expecting 'local' or 'global', got {value!r}",
                        )
                self._capabilities = Capabilities(str(scope), str(reach))
            return self._capabilities

    def scope(self) -> str:
        return self.activate().scope

    def connectivity_scope(self) -> str:
        return self.activate().connectivity_scope

    def _call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        self.activate()
        return self.client.call(method, body)

    def _undo(self, method: str, body: dict[str, Any]) -> None:
        """Roll back a call whose answer refd cannot use (as libnetwork does)."""
        try:
            self.client.call(method, body)
        except RefError as exc:
            log.warning("%s: rolling back with %s failed: %s", self.name, method, exc)

    # -- networks -----------------------------------------------------------------------------
    def create_network(self, network: Network) -> None:
        pools = [(ip_network(c.subnet, strict=False), c) for c in network.ipam]
        space = "GlobalDefault" if network.scope == "global" else "LocalDefault"
        body = {
            "NetworkID": network.id,
            "Options": network_options(network),
            "IPv4Data": [ipam_data(p, c, space) for p, c in pools if p.version == 4],
            "IPv6Data": [ipam_data(p, c, space) for p, c in pools if p.version == 6],
        }
        self._call(CREATE_NETWORK, body)

    def delete_network(self, network: Network) -> None:
        self._call(DELETE_NETWORK, {"NetworkID": network.id})

    # -- endpoints ----------------------------------------------------------------------------
    def create_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        """IPAM's address (and a MAC if refd has one) go to the plugin, which may only fill
        in what was not given; anything else is refused and the endpoint deleted again."""
        ids = _ids(network, endpoint)
        interface = {"Address": endpoint.address, "AddressIPv6": "", "MacAddress": endpoint.mac}
        body = {**ids, "Options": endpoint_options(endpoint), "Interface": interface}
        answer = self._call(CREATE_ENDPOINT, body)
        try:
            mac, address, address6 = self._given_interface(endpoint, answer.get("Interface"))
        except RefError:
            self._undo(DELETE_ENDPOINT, ids)
            raise
        endpoint.mac = mac or endpoint.mac
        endpoint.address = address or endpoint.address
        if address6:
            endpoint.driver_state["address_ipv6"] = address6

    def _given_interface(self, endpoint: Endpoint, given: Any) -> tuple[str, str, str]:
        if given is None:
            return "", "", ""
        if not isinstance(given, dict):
            raise PluginError(self.name, CREATE_ENDPOINT, f"Interface is not an object: {given!r}")
        mac = str(given.get("MacAddress") or "")
        address = str(given.get("Address") or "")
        address6 = str(given.get("AddressIPv6") or "")
        if mac:
            if endpoint.mac:
                raise PluginError(
                    self.name, CREATE_ENDPOINT, f"driver modified the MAC address {endpoint.mac}"
                )
            mac = _mac(self.name, mac)
        for value, version in ((address, 4), (address6, 6)):
            if value and _interface(self.name, CREATE_ENDPOINT, value).version != version:
                raise PluginError(self.name, CREATE_ENDPOINT, f"not an IPv{version}: {value}")
        if address and endpoint.address:
            raise PluginError(
                self.name, CREATE_ENDPOINT, f"driver modified the address {endpoint.address}"
            )
        return mac, address, address6

    def join(self, network: Network, endpoint: Endpoint, sandbox_key: str) -> JoinInfo:
        ids = _ids(network, endpoint)
        body = {**ids, "SandboxKey": sandbox_key, "Options": endpoint_options(endpoint)}
        answer = self._call(JOIN, body)
        try:
            info, state = self._join_info(answer)
        except RefError:
            self._undo(LEAVE, ids)
            raise
        endpoint.driver_state.update(state)
        return info

    def _join_info(self, answer: dict[str, Any]) -> tuple[JoinInfo, dict[str, Any]]:
        names = answer.get("InterfaceName")
        if not isinstance(names, dict) or not names.get("SrcName"):
            raise PluginError(self.name, JOIN, "the answer names no interface (SrcName)")
        src, prefix = str(names["SrcName"]), str(names.get("DstPrefix") or "")
        if not _ifname_ok(src, 0) or not _ifname_ok(prefix, 2):
            raise PluginError(self.name, JOIN, f"bad interface names {src!r}/{prefix!r}")
        gateway = _address(self.name, answer.get("Gateway"), 4)
        gateway6 = _address(self.name, answer.get("GatewayIPv6"), 6)
        routes = [_route(self.name, raw) for raw in answer.get("StaticRoutes") or []]
        info = JoinInfo(
            src_name=src,
            src_netns=link_netns(src, self.client.peer_pid),
            dst_prefix=prefix,
            gateway=gateway,
            routes=routes,
        )
        state = {
            "gateway": gateway,
            "gateway_ipv6": gateway6,
            # Without a gateway and without this, Docker adds docker_gwbridge to the sandbox.
            "disable_gateway_service": bool(answer.get("DisableGatewayService")),
        }
        return info, state

    def program(self, network: Network, endpoint: Endpoint) -> None:
        """ProgramExternalConnectivity when the endpoint got a gateway (libnetwork calls it for
        the sandbox's gateway endpoint, never on internal networks; a 404 is fine), then
        EndpointOperInfo, whose Value is kept for inspect."""
        ids = _ids(network, endpoint)
        external = bool(endpoint.driver_state.get("gateway")) and not network.internal
        if external:
            try:
                self._call(PROGRAM_EXTERNAL, {**ids, "Options": endpoint_options(endpoint)})
            except PluginNotImplemented:
                external = False
        try:
            endpoint.driver_state["oper_info"] = self.oper_info(network, endpoint)
        except RefError:
            if external:
                self._undo(REVOKE_EXTERNAL, ids)
            raise
        endpoint.driver_state["external_connectivity"] = external

    def oper_info(self, network: Network, endpoint: Endpoint) -> dict[str, Any]:
        """EndpointOperInfo's Value (an arbitrary map)."""
        value = self._call(OPER_INFO, _ids(network, endpoint)).get("Value")
        if value is not None and not isinstance(value, dict):
            raise PluginError(self.name, OPER_INFO, f"Value is not an object: {value!r}")
        return value or {}

    def leave(self, network: Network, endpoint: Endpoint) -> None:
        ids = _ids(network, endpoint)
        if endpoint.driver_state.pop("external_connectivity", False):
            try:
                self._call(REVOKE_EXTERNAL, ids)
            except PluginNotImplemented:
                pass
            except RefError as exc:  # libnetwork warns and leaves all the same
                log.warning("%s: %s", self.name, exc)
        self._call(LEAVE, ids)

    def delete_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        self._call(DELETE_ENDPOINT, _ids(network, endpoint))

    # -- life cycle ---------------------------------------------------------------------------
    def restore(self, networks: list[Network], endpoints: list[Endpoint]) -> None:
        """The plugin keeps its own state: Docker only activates it again at start."""
        self.activate()

    def close(self) -> None:
        """Nothing held: every call has its own connection."""


# -- what goes into the requests ----------------------------------------------------------------
def _ids(network: Network, endpoint: Endpoint) -> dict[str, Any]:
    return {"NetworkID": network.id, "EndpointID": endpoint.id}


def network_options(network: Network) -> dict[str, Any]:
    """CreateNetwork's Options as libnetwork builds them: the driver options (-o) under
    "generic", IPv6 off (refd has none), and the internal flag when set."""
    options: dict[str, Any] = {ENABLE_IPV6: False, GENERIC: dict(network.options)}
    if network.internal:
        options[INTERNAL] = True
    return options


def ipam_data(pool: IPv4Network | IPv6Network, config: IpamConfig, space: str) -> dict[str, Any]:
    """One IPv4Data/IPv6Data entry; addresses carry the pool's prefix length ("a.b.c.d/16")."""
    data: dict[str, Any] = {"AddressSpace": space, "Pool": str(pool)}
    if config.gateway:
        data["Gateway"] = f"{config.gateway.split('/')[0]}/{pool.prefixlen}"
    if config.aux_addresses:
        data["AuxAddresses"] = {
            key: f"{value.split('/')[0]}/{pool.prefixlen}"
            for key, value in config.aux_addresses.items()
        }
    return data


def endpoint_options(endpoint: Endpoint) -> dict[str, Any]:
    """CreateEndpoint's and Join's Options: the exposed ports and the port map, as dockerd
    passes them (types.TransportPort / types.PortBinding, protocols as numbers)."""
    exposed: list[dict[str, Any]] = []
    mapped: list[dict[str, Any]] = []
    for port in endpoint.ports:
        proto = PROTOCOLS.get(port.proto)
        if proto is None:
            raise ConfigError(f"unknown protocol {port.proto!r}", obj=f"endpoint {endpoint.id}")
        pair = {"Proto": proto, "Port": port.container_port}
        if pair not in exposed:
            exposed.append(pair)
        mapped.append(
            {
                **pair,
                "IP": "",
                "HostIP": port.host_ip,
                "HostPort": port.host_port,
                "HostPortEnd": port.host_port,
            }
        )
    return {EXPOSED_PORTS: exposed, PORT_MAP: mapped}


# -- checking the answers -----------------------------------------------------------------------
def _ifname_ok(name: str, room: int) -> bool:
    """A link name (or prefix leaving `room` characters for the index) the kernel takes."""
    return 0 < len(name) <= IFNAMSIZ - room and not any(c in name for c in "/: \t\n\0")


def _mac(plugin: str, value: str) -> str:
    parts = value.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise PluginError(plugin, CREATE_ENDPOINT, f"invalid MAC address {value!r}")
    try:
        return ":".join(f"{int(p, 16):02x}" for p in parts)
    except ValueError:
        raise PluginError(plugin, CREATE_ENDPOINT, f"invalid MAC address {value!r}") from None


def _interface(plugin: str, method: str, value: str) -> Any:
    try:
        return ip_interface(value)
    except ValueError:
        raise PluginError(plugin, method, f"invalid address {value!r}") from None


def _address(plugin: str, value: Any, version: int) -> str:
    if not value:
        return ""
    try:
        parsed = ip_address(str(value))
    except ValueError:
        raise PluginError(plugin, JOIN, f"unable to parse gateway {value!r}") from None
    if parsed.version != version:
        raise PluginError(plugin, JOIN, f"gateway {value!r} is not IPv{version}")
    return str(parsed)


def _route(plugin: str, raw: Any) -> StaticRoute:
    if not isinstance(raw, dict):
        raise PluginError(plugin, JOIN, f"static route is not an object: {raw!r}")
    try:
        destination = ip_network(str(raw.get("Destination") or ""), strict=False)
    except ValueError:
        raise PluginError(plugin, JOIN, f"bad route destination in {raw!r}") from None
    kind = raw.get("RouteType", ROUTE_NEXTHOP)
    if kind == ROUTE_CONNECTED:
        return StaticRoute(str(destination))
    if kind != ROUTE_NEXTHOP:
        raise PluginError(plugin, JOIN, f"unknown RouteType in {raw!r}")
    hop = _address(plugin, raw.get("NextHop"), destination.version)
    if not hop:
        raise PluginError(plugin, JOIN, f"route via no NextHop: {raw!r}")
    return StaticRoute(str(destination), hop)


def link_netns(name: str, pid: int | None) -> str | None:
    """Where the plugin's link is: refd's own namespace (None) as Docker expects, since a
    plugin runs on the engine's host; failing that, the plugin process's namespace (a plugin
    in a network namespace apart, which Docker would not find)."""
    from reference.network import sandbox

    with sandbox.ipr() as ip:
        if ip.link_lookup(ifname=name):
            return None
    return plugin_netns(pid)


def plugin_netns(pid: int | None) -> str | None:
    """The network namespace of the plugin's process when it is not refd's (None: refd's)."""
    if pid is None:
        return None
    path = f"/proc/{pid}/ns/net"
    try:
        theirs, ours = os.stat(path), os.stat("/proc/self/ns/net")
    except OSError:
        return None
    return None if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino) else path


# -- one driver per plugin name -----------------------------------------------------------------
_drivers: dict[tuple[Discovery, str], RemoteDriver] = {}
_locks: dict[tuple[Discovery, str], threading.Lock] = {}
_registry_lock = threading.Lock()


def remote_driver(name: str, discovery: Discovery | None = None) -> RemoteDriver | None:
    """The activated driver of the plugin called `name`, None when no plugin has that name.
    Cached per name once activated (like Docker, which activates a plugin once); activation
    errors are raised and the next call tries again."""
    key = (discovery or Discovery(), name)
    with _registry_lock:
        if key in _drivers:
            return _drivers[key]
        lock = _locks.setdefault(key, threading.Lock())
    with lock:  # one activation per name at a time; other names are not held up
        with _registry_lock:
            if key in _drivers:
                return _drivers[key]
        plugin = key[0].find(name)
        if plugin is None:
            return None
        driver = RemoteDriver(plugin)
        driver.activate()
        with _registry_lock:
            _drivers[key] = driver
        return driver


def forget_remote_drivers() -> None:
    """Drop the cache (refd shutdown, tests); plugins are activated again on next use."""
    with _registry_lock:
        for driver in _drivers.values():
            driver.close()
        _drivers.clear()
        _locks.clear()
