"""The network controller (libnetwork's): networks and their drivers, persistence, restore.

    controller = Controller(config, emit, save)  # at refd start, after the config is validated
    controller.start()                     # predefined networks (bridge, host, none), restore
    net = controller.create("n1", "bridge", [IpamConfig("10.1.0.0/24")], options, labels)
    controller.get("n1")                   # by id, name or unique id prefix (NotFoundError)
    controller.networks()                  # every network, global ones from the cluster store too
    controller.inspect(net)                # the Engine API NetworkResource document
    controller.remove("n1")                # ConflictError while endpoints are attached
    key = controller.attach(c)             # container start: sandbox + endpoints; netns path
    controller.detach(c)                   # container exit: endpoints and sandbox go
    controller.connect(c, "n1", settings)  # `network connect` (hot-plugs if running)
    controller.disconnect(c, "n1", force)
    controller.settings(c)                 # NetworkSettings of the container's inspect
    controller.dns                         # the embedded DNS server (user networks)
    controller.close()                     # refd shuts down; kernel objects stay
    controller.purge()                     # `refd --purge`: every network's kernel objects go

Containers' side (attach/detach/connect/settings) lives in reference.network.attachments;
the Engine API document shapes in reference.network.views. Records persist as one JSON file
each under data-root/network/{networks,endpoints}/ (written atomically); IPAM allocations
are rebuilt from them at start-up.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from collections.abc import Callable, Mapping
from ipaddress import IPv4Network, ip_interface
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reference.errors import ConfigError, ConflictError, NotFoundError, RefError
from reference.network import attachments, views
from reference.network.ipam import Ipam, host_routes
from reference.network.model import (
    BRIDGE_NAME,
    DEFAULT_BRIDGE,
    DRIVER_MTU,
    ENABLE_ICC,
    ENABLE_IP_MASQ,
    Endpoint,
    IpamConfig,
    Network,
    NetworkDriver,
)

if TYPE_CHECKING:
    from reference.engine.config import DaemonConfig
    from reference.engine.store import Container
    from reference.network.dns import DnsServer

PREDEFINED = {"bridge": "bridge", "host": "host", "none": "null"}  # name → driver
DEFAULT_BRIDGE_DEVICE = "refd0"
Emit = Callable[[str, str, str, Mapping[str, str]], Any]  # kind, action, id, attributes


def now_rfc3339() -> str:
    from reference.engine.store import now_rfc3339 as stamp

    return stamp()


class PassiveDriver:
    """host and null: no kernel objects of their own (the container keeps the engine's
    namespace, or the runtime makes an empty one)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def scope(self) -> str:
        return "local"

    def create_network(self, network: Network) -> None:
        pass

    def delete_network(self, network: Network) -> None:
        pass

    def create_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        raise ConfigError(f"the {self.name} network takes no endpoints", obj=network.name)

    def join(self, network: Network, endpoint: Endpoint, sandbox_key: str) -> Any:
        raise ConfigError(f"the {self.name} network takes no endpoints", obj=network.name)

    def program(self, network: Network, endpoint: Endpoint) -> None:
        pass

    def leave(self, network: Network, endpoint: Endpoint) -> None:
        pass

    def delete_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        pass

    def restore(self, networks: list[Network], endpoints: list[Endpoint]) -> None:
        pass

    def close(self) -> None:
        pass


class Controller:
    def __init__(
        self,
        config: DaemonConfig,
        emit: Emit | None = None,
        save: Callable[[Container], None] | None = None,
    ) -> None:
        self.config = config
        self.root = config.data_root / "network"
        self.netns_dir = config.exec_root / "netns"
        self.ipam = Ipam()
        self.lock = threading.RLock()
        self.networks_by_id: dict[str, Network] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self._drivers: dict[str, NetworkDriver] = {}
        self._pending: set[str] = set()  # names of networks being created
        self._emit = emit
        self.save_container: Callable[[Container], None] = save or _no_save
        self._dns: DnsServer | None = None
        # Set by the engine: give a running container the embedded DNS server (its
        # resolv.conf is the engine's); called when it joins a user-defined network.
        self.dns_setup: Callable[[Container], None] | None = None

    # -- the embedded DNS server -----------------------------------------------------------
    @property
    def dns(self) -> DnsServer:
        """Made at first use; its thread starts with the first sandbox served."""
        with self.lock:
            if self._dns is None:
                from reference.network.dns import DnsServer
                from reference.network.dnsnames import view_of

                self._dns = DnsServer(lambda cid: view_of(self, cid))
            return self._dns

    def stop_dns(self, key: str) -> None:
        if self._dns is not None:
            with contextlib.suppress(RefError):
                self._dns.stop(key)

    def wants_dns(self, c: Container) -> bool:
        """Whether the container has an endpoint on a user-defined network (Docker's rule
        for the embedded DNS server: not the default bridge, not host or none)."""
        from reference.network.dnsnames import user_defined

        nets = [self.networks_by_id.get(e.network_id) for e in self.endpoints_of(c)]
        return any(n is not None and user_defined(n) for n in nets)

    # -- drivers -------------------------------------------------------------------------
    def driver(self, name: str) -> NetworkDriver:
        """The driver called `name`, made at first use. Made outside the lock: activating a
        remote plugin may take up to its timeout, and nothing else must wait for that."""
        with self.lock:
            found = self._drivers.get(name)
        if found is not None:
            return found
        made = self._make_driver(name)
        with self.lock:
            return self._drivers.setdefault(name, made)

    def _make_driver(self, name: str) -> NetworkDriver:
        config = self.config
        if name in ("host", "null"):
            return PassiveDriver(name)
        if name == "bridge":
            from reference.network.drivers.bridge import BridgeDriver
            from reference.network.firewall import Firewall
            from reference.network.portmap import PortMapper

            firewall = Firewall(config.iptables, config.ip_forward)
            return BridgeDriver(firewall, PortMapper(firewall), config.mtu)
        if name == "overlay":
            if not config.cluster_store or not config.cluster_advertise:
                raise ConfigError(
                    "the overlay driver needs a cluster store: set cluster-store and "
                    "cluster-advertise",
                    obj="overlay",
                )
            from reference.network.drivers.overlay import OverlayDriver
            from reference.network.kvstore import KvStore

            return OverlayDriver(
                KvStore(config.cluster_store), config.cluster_advertise, config.exec_root
            )
        from reference.network.drivers.remote import remote_driver
        from reference.network.plugins import Discovery

        found = remote_driver(name, Discovery())
        if found is None:
            raise NotFoundError(f'plugin "{name}" not found')
        return found

    def _global_driver(self) -> Any | None:
        """The overlay driver when a cluster store is configured (it knows global networks)."""
        if not self.config.cluster_store:
            return None
        try:
            return self.driver("overlay")
        except RefError:
            return None

    # -- persistence ---------------------------------------------------------------------
    def _path(self, kind: str, ident: str) -> Path:
        return self.root / kind / f"{ident}.json"

    def persist_network(self, net: Network) -> None:
        _write(self._path("networks", net.id), net.to_doc())

    def persist_endpoint(self, ep: Endpoint) -> None:
        _write(self._path("endpoints", ep.id), ep.to_doc())

    def forget_endpoint(self, ep: Endpoint) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path("endpoints", ep.id).unlink()

    def _load(self) -> None:
        for kind in ("networks", "endpoints"):
            (self.root / kind).mkdir(parents=True, exist_ok=True, mode=0o700)
        for path in sorted((self.root / "networks").glob("*.json")):
            net = Network.from_doc(json.loads(path.read_text()))
            self.networks_by_id[net.id] = net
            if net.ipam:  # global ones too: a local pool must not overlap them
                self.ipam.adopt_pool(net.id, net.ipam[0])
        for path in sorted((self.root / "endpoints").glob("*.json")):
            ep = Endpoint.from_doc(json.loads(path.read_text()))
            if ep.network_id not in self.networks_by_id:
                path.unlink()
                continue
            self.endpoints[ep.id] = ep
            if ep.address:
                self.ipam.reserve(ep.network_id, ep.address)

    # -- start, stop ---------------------------------------------------------------------
    def start(self) -> None:
        with self.lock:
            self._load()
            for name, driver in PREDEFINED.items():
                if name == "bridge":
                    continue
                if self._by_name(name) is None:
                    self._register(Network(_new_id(), name, driver, created=now_rfc3339()))
            if self.config.bridge != "none":
                self._default_bridge()
            by_driver: dict[str, list[Network]] = {}
            for net in self.networks_by_id.values():
                by_driver.setdefault(net.driver, []).append(net)
            for name, nets in by_driver.items():
                ids = {n.id for n in nets}
                eps = [e for e in list(self.endpoints.values()) if e.network_id in ids]
                try:
                    self.driver(name).restore(nets, eps)
                except RefError as e:
                    # A plugin gone since the last run: its networks stay listed, unusable.
                    self._log(f"restoring networks of driver {name}: {e}")

    def _default_bridge(self) -> None:
        """The predefined "bridge" network on refd0 (or the --bridge device), re-made when the
        configuration changed since the last run and nothing is attached."""
        wanted = self._default_bridge_config()
        options = {
            BRIDGE_NAME: self.config.bridge or DEFAULT_BRIDGE_DEVICE,
            DEFAULT_BRIDGE: "true",
            ENABLE_ICC: str(self.config.icc).lower(),
            ENABLE_IP_MASQ: str(self.config.ip_masq).lower(),
            DRIVER_MTU: str(self.config.mtu),
        }
        old = self._by_name("bridge")
        if old is not None:
            if old.options == options and old.ipam[:1] == [wanted]:
                return
            if self.attached(old):
                self._log("the default bridge's configuration changed; kept: endpoints attached")
                return
            self._unregister(old)
        if not self.config.bridge:
            self._drop_stale_device(wanted)
        net = Network(_new_id(), "bridge", "bridge", options=options, created=now_rfc3339())
        if wanted.subnet:
            net.ipam = [self.ipam.request_pool(net.id, wanted)]
        else:
            taken = [r for r in host_routes() if not self._is_default_bridge_route(r)]
            net.ipam = [self.ipam.request_pool(net.id, None, taken)]
            if self.config.fixed_cidr:
                net.ipam[0].ip_range = self.config.fixed_cidr
                self.ipam.adopt_pool(net.id, net.ipam[0])
        try:
            self.driver("bridge").create_network(net)
        except BaseException:
            self.ipam.release_pool(net.id)
            raise
        self._register(net)

    @staticmethod
    def _drop_stale_device(wanted: IpamConfig) -> None:
        """refd0 left by an earlier run with another address (a changed --bip): the bridge
        driver would adopt it as an existing bridge, so it goes first."""
        from reference.network.drivers.bridge import BridgeDriver
        from reference.network.sandbox import ipr

        have = BridgeDriver.existing_address(DEFAULT_BRIDGE_DEVICE)
        if have is None or not wanted.subnet:
            return
        iface = ip_interface(have)
        if (str(iface.network), str(iface.ip)) != (wanted.subnet, wanted.gateway):
            with ipr() as ip:
                for index in ip.link_lookup(ifname=DEFAULT_BRIDGE_DEVICE):
                    ip.link("del", index=index)

    def _is_default_bridge_route(self, route: IPv4Network) -> bool:
        from reference.network.drivers.bridge import BridgeDriver

        existing = BridgeDriver.existing_address(DEFAULT_BRIDGE_DEVICE)
        return existing is not None and ip_interface(existing).network == route

    def _default_bridge_config(self) -> IpamConfig:
        """Docker's order: the address of the --bridge device; --bip; the address refd0 has
        from an earlier run; else the first free default pool ("" subnet here)."""
        from reference.network.drivers.bridge import BridgeDriver

        address = None
        if self.config.bridge:
            address = BridgeDriver.existing_address(self.config.bridge)
            if address is None:
                raise ConfigError(f"bridge device {self.config.bridge} not found", obj="bridge")
        elif self.config.bip:
            address = self.config.bip
        else:
            address = BridgeDriver.existing_address(DEFAULT_BRIDGE_DEVICE)
        if address is None:
            return IpamConfig("", "", self.config.fixed_cidr or "")
        iface = ip_interface(address)
        fixed = self.config.fixed_cidr or ""
        if fixed and not IPv4Network(fixed, strict=False).subnet_of(iface.network):  # type: ignore[arg-type]
            raise ConfigError(f"fixed-cidr {fixed} is not in the bridge's {iface.network}")
        return IpamConfig(str(iface.network), str(iface.ip), fixed)

    def close(self) -> None:
        with self.lock:
            for driver in self._drivers.values():
                with contextlib.suppress(RefError):
                    driver.close()
        if self._dns is not None:
            self._dns.close()

    def purge(self) -> None:
        """Every network this refd made goes, kernel objects and records (the test driver's
        last word; containers were removed before)."""
        with self.lock:
            for ep in list(self.endpoints.values()):
                attachments.drop_endpoint(self, ep, [])
            for net in list(self.networks_by_id.values()):
                with contextlib.suppress(RefError, OSError):
                    self._unregister(net)
            purge_base = getattr(self._drivers.get("bridge"), "purge", None)
            if purge_base is not None:
                with contextlib.suppress(RefError, OSError):
                    purge_base()
        self.close()

    # -- lookup --------------------------------------------------------------------------
    def _by_name(self, name: str) -> Network | None:
        return next((n for n in self.networks_by_id.values() if n.name == name), None)

    def get(self, ref: str) -> Network:
        with self.lock:
            found = self._find(ref, list(self.networks_by_id.values()))
            if found is None:
                found = self._find(ref, self._remote_networks())
                if found is not None:
                    # Another host's global network, used here: kept (and persisted) so its
                    # endpoints on this host survive a restart, its pool blocks local ones.
                    if found.ipam:
                        self.ipam.adopt_pool(found.id, found.ipam[0])
                    self._register(found)
            if found is None:
                raise NotFoundError(f"network {ref} not found")
            return found

    @staticmethod
    def _find(ref: str, nets: list[Network]) -> Network | None:
        exact = [n for n in nets if n.id == ref] or [n for n in nets if n.name == ref]
        if exact:
            return exact[0]
        prefixed = [n for n in nets if ref and n.id.startswith(ref)]
        if len(prefixed) > 1:
            raise ConflictError(f"network {ref} is ambiguous ({len(prefixed)} matches found)")
        return prefixed[0] if prefixed else None

    def _remote_networks(self) -> list[Network]:
        store = self._global_driver()
        if store is None:
            return []
        try:
            return list(store.remote_networks())
        except RefError as e:
            self._log(f"cluster store: {e}")
            return []

    def networks(self) -> list[Network]:
        with self.lock:
            found = dict(self.networks_by_id)
            for net in self._remote_networks():
                found.setdefault(net.id, net)
            return sorted(found.values(), key=lambda n: n.created)

    def attached(self, net: Network) -> list[Endpoint]:
        return [e for e in list(self.endpoints.values()) if e.network_id == net.id]

    def endpoints_of(self, c: Container) -> list[Endpoint]:
        return [e for e in list(self.endpoints.values()) if e.container_id == c.id]

    def inspect(self, net: Network, verbose: bool = False) -> dict[str, Any]:
        return views.network_resource(self, net, verbose)

    # -- create, remove ------------------------------------------------------------------
    def create(
        self,
        name: str,
        driver: str = "bridge",
        ipam: list[IpamConfig] | None = None,
        options: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        internal: bool = False,
        attachable: bool = False,
        check_duplicate: bool = True,
    ) -> Network:
        driver = driver or "bridge"
        if not name or not _NAME_OK(name):
            raise ConfigError(f"invalid network name {name!r}", obj="Name")
        if name in PREDEFINED:
            raise ConflictError(f"network with name {name} already exists")
        if driver in ("host", "null"):
            raise ConfigError(f'only one instance of "{driver}" network is allowed')
        if len(ipam or []) > 1:
            raise ConfigError("refd supports one IPv4 pool per network", obj="IPAM.Config")
        impl = self.driver(driver)
        # The lock covers the records only; the driver's calls (a plugin's, maybe hanging
        # until its timeout) are made outside it, the name held meanwhile.
        with self.lock:
            taken = name in self._pending or any(n.name == name for n in self.networks())
            if check_duplicate and taken:
                raise ConflictError(f"network with name {name} already exists")
            net = Network(
                _new_id(),
                name,
                driver,
                scope=impl.scope(),
                options=dict(options or {}),
                labels=dict(labels or {}),
                internal=internal,
                attachable=attachable,
                created=now_rfc3339(),
            )
            wanted = ipam[0] if ipam else None
            if net.scope == "global":
                if wanted is None or not wanted.subnet:
                    raise ConfigError("a global network needs --subnet", obj="IPAM.Config")
                self.ipam.adopt_pool(net.id, wanted)
                net.ipam = [self.ipam._pools[net.id]]
            else:
                net.ipam = [self.ipam.request_pool(net.id, wanted, host_routes())]
            self._pending.add(name)
        try:
            impl.create_network(net)
            if net.scope == "global":
                try:
                    impl.publish_network(net)  # type: ignore[attr-defined]
                except BaseException:
                    impl.delete_network(net)
                    raise
        except BaseException:
            self.ipam.release_pool(net.id)
            with self.lock:
                self._pending.discard(name)
            raise
        with self.lock:
            self._pending.discard(name)
            self._register(net)
        self.emit("create", net)
        return net

    def remove(self, ref: str) -> None:
        with self.lock:
            net = self.get(ref)
            if net.name in PREDEFINED and net.driver == PREDEFINED[net.name]:
                raise PredefinedError(f"{net.name} is a pre-defined network and cannot be removed")
            remote_peers = getattr(self.driver(net.driver), "peers", None)
            if self.attached(net) or (
                net.scope == "global" and remote_peers is not None and remote_peers(net)
            ):
                raise ConflictError(
                    f"error while removing network: network {net.name} id {net.id} has "
                    "active endpoints"
                )
            del self.networks_by_id[net.id]  # no new endpoint finds it meanwhile
        try:
            self._unregister(net)  # the driver's calls, outside the lock
        except BaseException:
            with self.lock:
                self.networks_by_id.setdefault(net.id, net)
            raise
        self.emit("destroy", net)

    def prune(self) -> list[str]:
        removed = []
        for net in self.networks():
            if net.name in PREDEFINED or self.attached(net) or net.id not in self.networks_by_id:
                continue
            with contextlib.suppress(RefError):
                self.remove(net.id)
                removed.append(net.name)
        return removed

    def _register(self, net: Network) -> None:
        self.networks_by_id[net.id] = net
        self.persist_network(net)

    def _unregister(self, net: Network) -> None:
        impl = self.driver(net.driver)
        impl.delete_network(net)
        if net.scope == "global":
            with contextlib.suppress(RefError):
                impl.withdraw_network(net)  # type: ignore[attr-defined]
        self.ipam.release_pool(net.id)
        self.networks_by_id.pop(net.id, None)
        with contextlib.suppress(FileNotFoundError):
            self._path("networks", net.id).unlink()

    # -- containers (reference.network.attachments) --------------------------------------
    def attach(self, c: Container) -> str | None:
        return attachments.attach(self, c)

    def detach(self, c: Container) -> list[str]:
        return attachments.detach(self, c)

    def connect(self, c: Container, ref: str, settings: dict[str, Any] | None = None) -> None:
        attachments.connect(self, c, ref, settings or {})

    def disconnect(self, c: Container, ref: str, force: bool = False) -> None:
        attachments.disconnect(self, c, ref, force)

    def settings(self, c: Container) -> dict[str, Any]:
        return views.network_settings(self, c)

    def forget_stale(self, running: set[str]) -> None:
        """Endpoints of containers that are not running (a crash left them): undone."""
        with self.lock:
            for ep in list(self.endpoints.values()):
                if ep.container_id not in running:
                    attachments.drop_endpoint(self, ep, [])
            if self.netns_dir.is_dir():
                from reference.network import sandbox

                for key in self.netns_dir.iterdir():
                    if key.name.startswith("ovl-"):
                        continue  # a network's sandbox (overlay), not a container's
                    if not any(c.startswith(key.name) for c in running):
                        with contextlib.suppress(RefError, OSError):
                            sandbox.delete(key)

    # -- events, logs --------------------------------------------------------------------
    def emit(self, action: str, net: Network, **extra: str) -> None:
        if self._emit is not None:
            self._emit("network", action, net.id, {"name": net.name, "type": net.driver, **extra})

    @staticmethod
    def _log(message: str) -> None:
        import sys

        sys.stderr.write(f'level=warning msg="network: {message}"\n')


class PredefinedError(ConflictError):
    """An operation on a predefined network (HTTP 403 in the Engine API)."""


def _NAME_OK(name: str) -> bool:
    import re

    return re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name) is not None


def _no_save(c: Container) -> None:
    pass


def _new_id() -> str:
    return secrets.token_hex(32)


def _write(path: Path, doc: dict[str, Any]) -> None:
    from reference.engine.store import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, json.dumps(doc).encode())
