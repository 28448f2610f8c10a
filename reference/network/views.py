"""The Engine API documents of networks (NetworkResource) and of a container's network
settings (NetworkSettings, the container list's Ports), built from the controller's records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reference.network.model import BRIDGE_NAME, Network

if TYPE_CHECKING:
    from reference.engine.store import Container
    from reference.network.controller import Controller


def network_resource(ctl: Controller, net: Network, verbose: bool = False) -> dict[str, Any]:
    containers = {}
    for ep in ctl.attached(net):
        containers[ep.container_id] = {
            "Name": ep.name,
            "EndpointID": ep.id,
            "MacAddress": ep.mac,
            "IPv4Address": ep.address,
            "IPv6Address": "",
        }
    config = []
    for pool in net.ipam:
        entry: dict[str, Any] = {"Subnet": pool.subnet}
        if pool.gateway:
            entry["Gateway"] = pool.gateway
        if pool.ip_range:
            entry["IPRange"] = pool.ip_range
        if pool.aux_addresses:
            entry["AuxiliaryAddresses"] = dict(pool.aux_addresses)
        config.append(entry)
    return {
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": net.scope,
        "Driver": net.driver,
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None if not net.ipam else {}, "Config": config},
        "Internal": net.internal,
        "Attachable": net.attachable,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers,
        "Options": dict(net.options),
        "Labels": dict(net.labels),
    }


def _ports(ctl: Controller, c: Container) -> dict[str, Any]:
    """NetworkSettings.Ports: every exposed or published port; bindings as published."""
    ports: dict[str, Any] = {key: None for key in (c.config.get("ExposedPorts") or {})}
    for ep in list(ctl.endpoints.values()):
        if ep.container_id != c.id:
            continue
        for p in ep.ports:
            key = f"{p.container_port}/{p.proto}"
            entry = {"HostIp": p.host_ip or "0.0.0.0", "HostPort": str(p.host_port)}
            ports[key] = [*(ports.get(key) or []), entry]
    return ports


def network_settings(ctl: Controller, c: Container) -> dict[str, Any]:
    running = c.state.running
    bridge = c.networks.get("bridge") or {}
    key = str(ctl.netns_dir / c.id[:12]) if running and ctl.endpoints_of(c) else ""
    default = ctl.networks_by_id.get(bridge.get("NetworkID", ""))
    networks = {}
    for name, settings in c.networks.items():
        networks[name] = {
            "IPAMConfig": settings.get("IPAMConfig"),
            "Links": None,
            "Aliases": settings.get("Aliases"),
            "NetworkID": settings.get("NetworkID", ""),
            "EndpointID": settings.get("EndpointID", ""),
            "Gateway": settings.get("Gateway", ""),
            "IPAddress": settings.get("IPAddress", ""),
            "IPPrefixLen": settings.get("IPPrefixLen", 0),
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "MacAddress": settings.get("MacAddress", ""),
            "DriverOpts": settings.get("DriverOpts"),
        }
    return {
        "Bridge": (default.options.get(BRIDGE_NAME, "") if default and running else ""),
        "SandboxID": c.id if key else "",
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": _ports(ctl, c) if running else {},
        "SandboxKey": key,
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": bridge.get("EndpointID", ""),
        "Gateway": bridge.get("Gateway", ""),
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": bridge.get("IPAddress", ""),
        "IPPrefixLen": bridge.get("IPPrefixLen", 0),
        "IPv6Gateway": "",
        "MacAddress": bridge.get("MacAddress", ""),
        "Networks": networks,
    }


def list_ports(ctl: Controller, c: Container) -> list[dict[str, Any]]:
    """The container list's Ports: [{IP, PrivatePort, PublicPort, Type}] (exposed-only ports
    without IP and PublicPort), as Docker lists them."""
    found: list[dict[str, Any]] = []
    published = set()
    for ep in ctl.endpoints_of(c):
        for p in ep.ports:
            published.add(f"{p.container_port}/{p.proto}")
            found.append(
                {
                    "IP": p.host_ip or "0.0.0.0",
                    "PrivatePort": p.container_port,
                    "PublicPort": p.host_port,
                    "Type": p.proto,
                }
            )
    for key in c.config.get("ExposedPorts") or {}:
        if key not in published:
            port, _, proto = key.partition("/")
            found.append({"PrivatePort": int(port), "Type": proto or "tcp"})
    return found
