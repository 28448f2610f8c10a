"""The CNM model (libnetwork's): networks, endpoints, sandboxes, and the driver interface.

    Network    a set of endpoints that reach each other; made by one driver; IPAM apart
    Endpoint   one container's attachment to one network: an address, a MAC, an interface
    Sandbox    a container's network namespace (a bind-mounted nsfs file: its "key")

Drivers (bridge, host, null, overlay, remote) implement `NetworkDriver`. The controller
(reference.network.controller) owns the records, persistence, IPAM and call order, and does
the part every driver shares: moving the interface a driver's `join` made into the sandbox,
naming it, addressing it (reference.network.sandbox.plumb). Drivers only make and unmake
their own kernel objects and answer what `join` needs.

Records are plain dataclasses, stored as JSON (to_doc/from_doc) under data-root/network/.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

# Option keys Docker uses (com.docker.network.*); refd reads the same ones.
BRIDGE_NAME = "com.docker.network.bridge.name"
ENABLE_ICC = "com.docker.network.bridge.enable_icc"
ENABLE_IP_MASQ = "com.docker.network.bridge.enable_ip_masquerade"
DRIVER_MTU = "com.docker.network.driver.mtu"
DEFAULT_BRIDGE = "com.docker.network.bridge.default_bridge"
HOST_BINDING_IPV4 = "com.docker.network.bridge.host_binding_ipv4"
OVERLAY_VNI = "com.docker.network.driver.overlay.vxlanid_list"


@dataclass
class IpamConfig:
    subnet: str  # "172.17.0.0/16"
    gateway: str = ""  # "172.17.0.1" ("" for drivers with no gateway)
    ip_range: str = ""  # addresses are handed out from here ("" = the whole subnet)
    aux_addresses: dict[str, str] = field(default_factory=dict)


@dataclass
class Network:
    id: str  # 64 hex
    name: str
    driver: str  # "bridge", "host", "null", "overlay", or a remote plugin's name
    scope: str = "local"  # "local" | "global" (overlay, global remote plugins)
    ipam: list[IpamConfig] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)  # driver options (-o)
    labels: dict[str, str] = field(default_factory=dict)
    internal: bool = False
    attachable: bool = False
    created: str = ""  # RFC 3339
    # What the driver keeps about its kernel objects (bridge device name, VNI, ...).
    driver_state: dict[str, Any] = field(default_factory=dict)

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Network:
        doc = dict(doc)
        doc["ipam"] = [IpamConfig(**i) for i in doc.get("ipam", [])]
        return cls(**doc)


@dataclass
class PortBinding:
    proto: str  # "tcp" | "udp"
    container_port: int
    host_ip: str = ""  # "" = every address
    host_port: int = 0  # 0 = an ephemeral one chosen by the engine


@dataclass
class Endpoint:
    id: str  # 64 hex
    network_id: str
    container_id: str
    name: str  # the container's name without "/"
    address: str = ""  # "172.17.0.2/16" (from IPAM)
    gateway: str = ""  # "172.17.0.1"
    mac: str = ""
    ifname: str = ""  # the name inside the sandbox, e.g. "eth0"
    sandbox_key: str = ""  # netns path while joined
    src_name: str = ""  # the link join made (JoinInfo.src_name) and where (src_netns)
    src_netns: str | None = None
    ports: list[PortBinding] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    driver_state: dict[str, Any] = field(default_factory=dict)  # e.g. the host-side veth

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Endpoint:
        doc = dict(doc)
        doc["ports"] = [PortBinding(**p) for p in doc.get("ports", [])]
        return cls(**doc)


@dataclass
class StaticRoute:
    destination: str  # "10.0.0.0/8"
    next_hop: str = ""  # "" = connected (RouteType 1)


@dataclass
class JoinInfo:
    """What a driver's join made: a link named `src_name` in the namespace `src_netns`
    (None = refd's own), to be moved into the sandbox and named `dst_prefix` + index."""

    src_name: str
    src_netns: str | None = None
    dst_prefix: str = "eth"
    gateway: str = ""  # default route via this address ("" = none from this network)
    routes: list[StaticRoute] = field(default_factory=list)
    mtu: int = 0  # 0 = leave the link's


class NetworkDriver(Protocol):
    """One network technology. Every method raises a reference.errors.RefError subclass that
    names the object (network or endpoint id, link name) on failure, and undoes its own
    partial work before raising: the controller never cleans up after a driver."""

    name: str

    def scope(self) -> str:
        """ "local" or "global" (global networks are stored in the cluster store)."""
        ...

    def create_network(self, network: Network) -> None:
        """Make the network's kernel objects (bridge, firewall rules, ...); may fill
        network.driver_state. IPAM has already filled network.ipam."""
        ...

    def delete_network(self, network: Network) -> None: ...

    def create_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        """IPAM has filled endpoint.address/gateway; the driver may set endpoint.mac."""
        ...

    def join(self, network: Network, endpoint: Endpoint, sandbox_key: str) -> JoinInfo:
        """Make the endpoint's interface (e.g. a veth pair, the host end on the bridge) and
        say which link goes into the sandbox. The controller moves and configures it."""
        ...

    def program(self, network: Network, endpoint: Endpoint) -> None:
        """After the interface is in the sandbox and up: external connectivity (published
        ports) and whatever needs the final state. No-op for most drivers."""
        ...

    def leave(self, network: Network, endpoint: Endpoint) -> None:
        """Undo join and program (the sandbox may already be gone)."""
        ...

    def delete_endpoint(self, network: Network, endpoint: Endpoint) -> None: ...

    def restore(self, networks: list[Network], endpoints: list[Endpoint]) -> None:
        """After a refd restart: re-create missing kernel objects and rules of these
        (persisted) networks and joined endpoints; must be idempotent."""
        ...

    def close(self) -> None:
        """refd shuts down: stop threads, close clients. Kernel objects stay."""
        ...
