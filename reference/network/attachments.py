"""Containers on networks: the endpoints and the sandbox of each container, in libnetwork's
order.

A container's wanted networks are `c.networks` (network name → EndpointSettings as the Engine
API spells them), persisted with the container. At start, for each of them in order:
IPAM address → driver.create_endpoint → the sandbox (once: a netns bound at
exec-root/netns/<short id>) → driver.join → the link moved in and configured (sandbox.plumb)
→ driver.program (published ports). At exit, in reverse: driver.leave → the link out of the
sandbox → driver.delete_endpoint → the address released → the sandbox deleted. A failure
undoes what this attach did before the error is raised: nothing is left half-made.
"""

from __future__ import annotations

import contextlib
import secrets
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any

from reference.errors import ConfigError, ConflictError, RefError
from reference.network import sandbox
from reference.network.model import Endpoint, Network, PortBinding

if TYPE_CHECKING:
    from reference.engine.store import Container
    from reference.network.controller import Controller

SHARED_MODES = ("host", "none")


def sandbox_key(ctl: Controller, c: Container) -> str:
    return str(ctl.netns_dir / c.id[:12])


def mode_network(c: Container) -> str | None:
    """host or none when the container is in one of those modes (no endpoints then)."""
    names = list(c.networks)
    for mode in SHARED_MODES:
        if mode in names:
            return mode
    return None


def port_bindings(
    host_config: dict[str, Any], exposed: dict[str, Any] | None = None
) -> list[PortBinding]:
    """HostConfig.PortBindings {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]} → bindings;
    with PublishAllPorts (-P) every exposed port without one gets an ephemeral host port."""
    found = []
    if host_config.get("PublishAllPorts"):
        bound = set(host_config.get("PortBindings") or {})
        extra: dict[str, list[dict[str, str]]] = {k: [{}] for k in exposed or {} if k not in bound}
        host_config = {"PortBindings": {**(host_config.get("PortBindings") or {}), **extra}}
    for key, entries in (host_config.get("PortBindings") or {}).items():
        port, _, proto = str(key).partition("/")
        proto = proto or "tcp"
        if proto == "sctp":
            raise ConfigError(f"sctp ports are not supported by refd: {key}", obj="PortBindings")
        if proto not in ("tcp", "udp") or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"invalid port specification: {key}", obj="PortBindings")
        for entry in entries or [{}]:
            host_ip = (entry or {}).get("HostIp") or ""
            host_port = str((entry or {}).get("HostPort") or "0")
            if "-" in host_port:
                raise ConfigError(
                    f"host port ranges are not supported by refd: {host_port}", obj="PortBindings"
                )
            if host_ip:
                try:
                    ip_address(host_ip)
                except ValueError:
                    raise ConfigError(
                        f"invalid IP address: {host_ip}", obj="PortBindings"
                    ) from None
            if not host_port.isdigit() or not 0 <= int(host_port) < 65536:
                raise ConfigError(f"invalid host port: {host_port}", obj="PortBindings")
            found.append(PortBinding(proto, int(port), host_ip, int(host_port)))
    return found


def attach(ctl: Controller, c: Container) -> str | None:
    """Endpoints for every network the container wants; the sandbox key, or None when it
    shares the engine's namespace (host) or gets an empty one from the runtime (none)."""
    if mode_network(c) is not None or not c.networks:
        return None
    key = sandbox_key(ctl, c)
    made: list[Endpoint] = []
    # Not under the controller's lock: the drivers' calls (a plugin's may hang until its
    # timeout) must not hold up other containers; the engine holds this container's lock,
    # IPAM its own, and the records are single dictionary operations.
    try:
        ports = port_bindings(c.host_config, c.config.get("ExposedPorts"))
        for name in list(c.networks):
            net = ctl.get(name)
            ep = _join(ctl, c, net, key, ports if _takes_ports(net) else [])
            if _takes_ports(net):
                ports = []  # published once, on the first bridge network
            made.append(ep)
    except BaseException:
        for ep in reversed(made):
            drop_endpoint(ctl, ep, [])
        with contextlib.suppress(RefError, OSError):
            sandbox.delete(ctl.netns_dir / c.id[:12])
        raise
    for ep in made:
        _record(ctl, c, ep)
    ctl.save_container(c)
    return key


def _takes_ports(net: Network) -> bool:
    return net.driver == "bridge"


def _join(
    ctl: Controller, c: Container, net: Network, key: str, ports: list[PortBinding]
) -> Endpoint:
    settings = c.networks.get(net.name) or {}
    wanted_ip = ((settings.get("IPAMConfig") or {}).get("IPv4Address")) or ""
    impl = ctl.driver(net.driver)
    ep = Endpoint(
        secrets.token_hex(32),
        net.id,
        c.id,
        c.name.lstrip("/"),
        gateway=net.ipam[0].gateway if net.ipam else "",
        ports=ports,
        aliases=list(settings.get("Aliases") or []),
        mac=c.config.get("MacAddress") or "",
    )
    if wanted_ip and net.name in ("bridge",):
        raise ConfigError("user specified IP address is supported on user defined networks only")
    if net.scope == "global":
        ep.address = impl.allocate_address(net, wanted_ip)  # type: ignore[attr-defined]
    elif net.ipam:
        ep.address = ctl.ipam.request_address(net.id, wanted_ip)
    steps: list[str] = []
    try:
        impl.create_endpoint(net, ep)
        steps.append("endpoint")
        if not sandbox.exists(key):
            sandbox.create(ctl.netns_dir / c.id[:12])
        info = impl.join(net, ep, key)
        steps.append("join")
        if ctl.endpoints_of(c):
            info.gateway = ""  # one default route per sandbox: the first network's
        ep.src_name, ep.src_netns = info.src_name, info.src_netns
        ep.sandbox_key = key
        ep.ifname = sandbox.plumb(info, ep, key)
        impl.program(net, ep)
    except BaseException:
        errors: list[str] = []
        _undo(ctl, net, ep, steps, errors)
        raise
    ctl.endpoints[ep.id] = ep
    ctl.persist_endpoint(ep)
    return ep


def _undo(ctl: Controller, net: Network, ep: Endpoint, steps: list[str], errors: list[str]) -> None:
    impl = ctl.driver(net.driver)
    remote = net.driver not in ("bridge", "overlay", "host", "null")

    def step(what: str, fn: Any) -> None:
        try:
            fn()
        except (RefError, OSError) as e:
            errors.append(f"{what} {ep.id[:12]}: {e}")

    if "join" in steps:
        # Docker's order: Leave, then the link leaves the sandbox (a plugin's goes back to
        # it), then DeleteEndpoint.
        step("leave", lambda: impl.leave(net, ep))
        step("unplumb", lambda: sandbox.unplumb(ep, give_back=remote))
    if "endpoint" in steps:
        step("delete endpoint", lambda: impl.delete_endpoint(net, ep))
    if ep.address:
        if net.scope == "global":
            step("release address", lambda: impl.release_address(net, ep.address))  # type: ignore[attr-defined]
        else:
            ctl.ipam.release_address(net.id, ep.address)


def drop_endpoint(ctl: Controller, ep: Endpoint, errors: list[str]) -> None:
    """Leave and delete one joined endpoint; forget it."""
    net = ctl.networks_by_id.get(ep.network_id)
    if net is not None:
        _undo(ctl, net, ep, ["endpoint", "join"], errors)
    ctl.endpoints.pop(ep.id, None)
    ctl.forget_endpoint(ep)


def detach(ctl: Controller, c: Container) -> list[str]:
    """Every endpoint of the container, then its sandbox. Errors are returned, not raised:
    teardown tries every step."""
    errors: list[str] = []
    ctl.stop_dns(sandbox_key(ctl, c))  # its sockets would keep the namespace alive
    for ep in reversed(ctl.endpoints_of(c)):  # not under the controller's lock: see attach
        drop_endpoint(ctl, ep, errors)
    try:
        sandbox.delete(ctl.netns_dir / c.id[:12])
    except (RefError, OSError) as e:
        errors.append(f"sandbox: {e}")
    for settings in c.networks.values():
        for key in ("EndpointID", "Gateway", "IPAddress", "MacAddress"):
            settings[key] = ""
        settings["IPPrefixLen"] = 0
    return errors


def _record(ctl: Controller, c: Container, ep: Endpoint) -> None:
    net = ctl.networks_by_id[ep.network_id]
    settings = c.networks.setdefault(net.name, {})
    address = ep.address.split("/")
    settings.update(
        {
            "NetworkID": net.id,
            "EndpointID": ep.id,
            "Gateway": ep.gateway,
            "IPAddress": address[0] if ep.address else "",
            "IPPrefixLen": int(address[1]) if ep.address else 0,
            "MacAddress": ep.mac,
        }
    )


def connect(ctl: Controller, c: Container, ref: str, settings: dict[str, Any]) -> None:
    net = ctl.get(ref)
    if net.name in SHARED_MODES or mode_network(c) is not None:
        raise ConfigError(
            "container sharing network namespace with another container or host cannot be "
            "connected to any other network"
        )
    with c.lock:
        if net.name in c.networks:
            raise ConflictError(
                f"endpoint with name {c.name.lstrip('/')} already exists in network {net.name}"
            )
        c.networks[net.name] = {**settings, "NetworkID": net.id}
        if c.state.running:
            try:
                ep = _join(ctl, c, net, sandbox_key(ctl, c), [])
            except BaseException:
                del c.networks[net.name]
                raise
            _record(ctl, c, ep)
            if ctl.dns_setup is not None:
                ctl.dns_setup(c)  # the first user network of a running container: as at start
        ctl.save_container(c)
    ctl.emit("connect", net, container=c.id)


def disconnect(ctl: Controller, c: Container, ref: str, force: bool) -> None:
    net = ctl.get(ref)
    with c.lock:
        if net.name not in c.networks:
            raise ConflictError(f"container {c.id} is not connected to network {net.name}")
        if net.name in SHARED_MODES and c.state.running:
            raise ConfigError(f"container cannot be disconnected from the {net.name} network")
        errors: list[str] = []
        for ep in ctl.endpoints_of(c):
            if ep.network_id == net.id:
                drop_endpoint(ctl, ep, errors)
        del c.networks[net.name]
        ctl.save_container(c)
        if errors and not force:
            raise RefError("; ".join(errors), obj=net.name)
    ctl.emit("disconnect", net, container=c.id)
