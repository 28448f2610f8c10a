"""The bridge driver: a Linux bridge per network in refd's namespace, a veth pair per
endpoint (the host end on the bridge, the other end moved into the sandbox by the controller),
iptables for NAT, isolation and published ports (reference.network.firewall, .portmap).

Names as Docker 20.10: the default network's bridge is given by option (refd0, like docker0),
a user network's is "br-" + the first 12 hex of its id, a host-side veth "veth" + 7 hex. The
bridge gets a fixed locally administered MAC (02:42 + random) so its address does not follow
whichever port has the lowest MAC, which would change the gateway's MAC under the containers.
"""

from __future__ import annotations

import contextlib
import secrets
from ipaddress import IPv4Interface
from typing import Any

from reference.errors import ConfigError, ConflictError, RefError
from reference.network import sandbox
from reference.network.firewall import Firewall, Rule
from reference.network.model import (
    BRIDGE_NAME,
    DRIVER_MTU,
    ENABLE_ICC,
    ENABLE_IP_MASQ,
    HOST_BINDING_IPV4,
    Endpoint,
    JoinInfo,
    Network,
)
from reference.network.portmap import PortMapper

IFNAMSIZ = 15
TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # Go's strconv.ParseBool, as Docker parses
FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _bool_option(network: Network, key: str, default: bool) -> bool:
    value = network.options.get(key)
    if value is None or value == "":
        return default
    if value in TRUE or value in FALSE:
        return value in TRUE
    raise ConfigError(f"invalid value {value!r} for {key} (a boolean)", obj=network.name)


def _kind(link: Any) -> str | None:
    info = link.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info is not None else None


def _ipv4_addresses(ip: Any, index: int) -> list[str]:
    found = ip.get_addr(family=2, index=index)
    return [f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in found]


class BridgeDriver:
    name = "bridge"

    def __init__(self, firewall: Firewall, ports: PortMapper, mtu_default: int = 1500) -> None:
        self.firewall = firewall
        self.ports = ports
        self.mtu_default = mtu_default

    def scope(self) -> str:
        return "local"

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def existing_address(name: str) -> str | None:
        """The first IPv4 "a.b.c.d/len" of the existing bridge `name` (daemon --bridge: the
        default network's subnet comes from it); None if there is no such link."""
        with sandbox.ipr() as ip:
            found = ip.link_lookup(ifname=name)
            if not found:
                return None
            link = ip.get_links(found[0])[0]
            if _kind(link) != "bridge":
                raise ConfigError(f"{name} is not a bridge (kind {_kind(link)})", obj=name)
            addresses = _ipv4_addresses(ip, found[0])
        if not addresses:
            raise ConfigError(f"bridge {name} has no IPv4 address", obj=name)
        return addresses[0]

    def _settings(self, network: Network) -> tuple[str, int, IPv4Interface]:
        """The bridge name, MTU and gateway interface a network asks for."""
        bridge = network.options.get(BRIDGE_NAME) or "br-" + network.id[:12]
        if len(bridge) > IFNAMSIZ or "/" in bridge or " " in bridge:
            raise ConfigError(f"invalid bridge name {bridge!r}", obj=network.name)
        raw = network.options.get(DRIVER_MTU, "")
        try:
            mtu = int(raw) if raw else self.mtu_default
        except ValueError:
            raise ConfigError(f"invalid MTU {raw!r}", obj=network.name) from None
        mtu = mtu or self.mtu_default
        if not 68 <= mtu <= 65535:
            raise ConfigError(f"invalid MTU {mtu}", obj=network.name)
        if not network.ipam or not network.ipam[0].gateway:
            raise ConfigError("a bridge network needs a subnet and a gateway", obj=network.name)
        config = network.ipam[0]
        prefix = IPv4Interface(config.subnet).network.prefixlen
        return bridge, mtu, IPv4Interface(f"{config.gateway}/{prefix}")

    def _rules(self, network: Network) -> tuple[bool, bool]:
        return (
            _bool_option(network, ENABLE_ICC, True),
            _bool_option(network, ENABLE_IP_MASQ, True),
        )

    def _make_bridge(self, network: Network) -> None:
        """The bridge, its address and state; fills driver_state. Idempotent: an existing
        bridge is taken as it is (only its gateway address added if missing, and set up)."""
        bridge, mtu, gateway = self._settings(network)
        state: dict[str, Any] = {"bridge": bridge, "mtu": mtu}
        with sandbox.ipr() as ip:
            found = ip.link_lookup(ifname=bridge)
            if found:
                link = ip.get_links(found[0])[0]
                if _kind(link) != "bridge":
                    raise ConflictError(f"link {bridge} exists and is not a bridge", obj=bridge)
                index = found[0]
                # --bridge (or a refd restart): not ours to delete, unless we made it before.
                state["existing"] = network.driver_state.get("existing", True)
                state["added_address"] = network.driver_state.get("added_address", False)
            else:
                mac = "02:42:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(4))
                ip.link("add", ifname=bridge, kind="bridge", mtu=mtu, address=mac)
                index = sandbox.link_index(ip, bridge)
                state["existing"] = False
                state["added_address"] = False
            try:
                if str(gateway) not in _ipv4_addresses(ip, index):
                    ip.addr(
                        "add",
                        index=index,
                        address=str(gateway.ip),
                        prefixlen=gateway.network.prefixlen,
                    )
                    state["added_address"] = state["added_address"] or state["existing"]
                ip.link("set", index=index, state="up")
            except Exception as exc:
                if not state["existing"]:
                    with contextlib.suppress(Exception):
                        ip.link("del", index=index)
                raise RefError(f"cannot set up bridge {bridge}: {exc}", obj=network.id) from exc
        network.driver_state.update(state)

    # -- networks ----------------------------------------------------------------------
    def create_network(self, network: Network) -> None:
        self._settings(network)  # refuse bad options before any change
        self._rules(network)
        # A new network: whether the bridge is ours is decided by what the kernel has now.
        network.driver_state.pop("existing", None)
        network.driver_state.pop("added_address", None)
        self._make_bridge(network)
        try:
            self._firewall(network)
        except BaseException:
            self._remove_bridge(network)
            raise

    def _firewall(self, network: Network) -> None:
        icc, masq = self._rules(network)
        self.firewall.setup_network(
            network.driver_state["bridge"], network.ipam[0].subnet, icc, masq, network.internal
        )

    def _remove_bridge(self, network: Network) -> None:
        bridge = network.driver_state.get("bridge", "")
        with sandbox.ipr() as ip:
            for index in ip.link_lookup(ifname=bridge):
                if not network.driver_state.get("existing"):
                    ip.link("del", index=index)
                elif network.driver_state.get("added_address"):
                    _, _, gateway = self._settings(network)
                    with contextlib.suppress(Exception):
                        ip.addr(
                            "del",
                            index=index,
                            address=str(gateway.ip),
                            prefixlen=gateway.network.prefixlen,
                        )

    def delete_network(self, network: Network) -> None:
        bridge = network.driver_state.get("bridge")
        if not bridge:
            return
        self.firewall.teardown_network(bridge, network.ipam[0].subnet)
        self.ports.release_bridge(bridge)
        self._remove_bridge(network)

    # -- endpoints ---------------------------------------------------------------------
    def create_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        if not endpoint.mac and endpoint.address:
            endpoint.mac = sandbox.mac_from_ip(endpoint.address)

    def join(self, network: Network, endpoint: Endpoint, sandbox_key: str) -> JoinInfo:
        bridge = network.driver_state.get("bridge", "")
        mtu = int(network.driver_state.get("mtu") or self.mtu_default)
        with sandbox.ipr() as ip:
            master = sandbox.link_index(ip, bridge)
            host, peer = self._free_names(ip)
            try:
                # The peer is made in the sandbox already: moving a link between namespaces
                # afterwards costs the kernel a device unregister and register (~10 ms).
                made = {"ifname": peer, "mtu": mtu, "net_ns_fd": sandbox_key}
                ip.link("add", ifname=host, kind="veth", mtu=mtu, peer=made)
                index = sandbox.link_index(ip, host)
                ip.link("set", index=index, master=master, state="up")
            except Exception as exc:
                for index in ip.link_lookup(ifname=host):
                    with contextlib.suppress(Exception):
                        ip.link("del", index=index)
                if isinstance(exc, RefError):
                    raise
                raise RefError(
                    f"cannot make veth {host} on {bridge}: {exc}", obj=endpoint.id
                ) from exc
        endpoint.driver_state["veth"] = host
        gateway = "" if network.internal else network.ipam[0].gateway
        return JoinInfo(peer, src_netns=sandbox_key, dst_prefix="eth", gateway=gateway, mtu=mtu)

    @staticmethod
    def _free_names(ip: Any) -> tuple[str, str]:
        names = {link.get_attr("IFLA_IFNAME") for link in ip.get_links()}
        while True:
            host, peer = ("veth" + secrets.token_hex(4)[:7] for _ in range(2))
            if host != peer and host not in names and peer not in names:
                return host, peer

    def program(self, network: Network, endpoint: Endpoint) -> None:
        if not endpoint.ports or not endpoint.address:
            return
        ephemeral = [i for i, b in enumerate(endpoint.ports) if not b.host_port]
        rules = self.ports.publish(
            network.driver_state["bridge"],
            endpoint.address,
            endpoint.ports,
            network.options.get(HOST_BINDING_IPV4, ""),
        )
        endpoint.driver_state["rules"] = [r.to_doc() for r in rules]
        endpoint.driver_state["ephemeral"] = ephemeral

    def leave(self, network: Network, endpoint: Endpoint) -> None:
        rules = [Rule.from_doc(doc) for doc in endpoint.driver_state.pop("rules", [])]
        if rules or endpoint.driver_state.get("ephemeral") is not None:
            self.ports.unpublish(endpoint.ports, rules)
            for i in endpoint.driver_state.pop("ephemeral", []):
                if i < len(endpoint.ports):
                    endpoint.ports[i].host_port = 0
        self._delete_veth(endpoint)

    def _delete_veth(self, endpoint: Endpoint) -> None:
        veth = endpoint.driver_state.pop("veth", "")
        if not veth:
            return
        with sandbox.ipr() as ip:
            for index in ip.link_lookup(ifname=veth):
                with contextlib.suppress(Exception):  # its peer's namespace may be going
                    ip.link("del", index=index)

    def delete_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        self._delete_veth(endpoint)  # normally gone with leave

    # -- refd lifecycle ----------------------------------------------------------------
    def restore(self, networks: list[Network], endpoints: list[Endpoint]) -> None:
        self.firewall.ensure_base()
        bridges: dict[str, str] = {}
        for network in networks:
            if network.driver != self.name:
                continue
            self._make_bridge(network)
            self._firewall(network)
            bridges[network.id] = network.driver_state["bridge"]
        for endpoint in endpoints:
            bridge = bridges.get(endpoint.network_id)
            if bridge is None or not endpoint.ports:
                continue
            rules = [Rule.from_doc(doc) for doc in endpoint.driver_state.get("rules", [])]
            self.ports.restore(bridge, endpoint.ports, rules)

    def close(self) -> None:
        self.ports.close()

    def purge(self) -> None:
        """`refd --purge`, every bridge network gone: refd's chains and their jumps go too
        (unless another refd in this namespace still has rules in them)."""
        self.firewall.remove_base()
