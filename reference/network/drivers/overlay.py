"""The overlay driver (Docker 20.10's classic overlay): global networks shared through a
cluster store (etcd, reference.network.kvstore), containers on several hosts on one L2
segment carried in VXLAN over the hosts' own network (the underlay).

Store layout (etcd v2 keys; values JSON unless said):

    /refd/network/v1.0/network/<network id>    the network record (Network.to_doc)
    /refd/vni/<vni>                            the network id that holds that VNI (text)
    /refd/ipam/<network id>/<a.b.c.d>          an address in use ({"host": advertise})
    /refd/overlay/<network id>/peers/<ep id>   a joined endpoint {"ip", "mac", "vtep"}

Allocations (VNIs from 256, addresses) are create-only keys, so two hosts never get the same.
The host that creates a network claims its VNI (create_network, into network.options before
publish_network stores the record); other hosts learn the network from the store and never
call create_network: a host's kernel objects (reference.network.drivers.overlay_ns) are made
by its first join and removed when its last endpoint leaves. While a host has endpoints on a
network, a thread long-polls the network's peers and programs every remote one.
"""

from __future__ import annotations

import contextlib
import json
import threading
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_address
from pathlib import Path

from reference.errors import ConfigError, ConflictError, NotFoundError, UnsupportedError
from reference.network import sandbox
from reference.network.drivers import overlay_ns
from reference.network.drivers.overlay_peers import Peer, PeerWatch, peers_dir
from reference.network.kvstore import KvStore, StoreError
from reference.network.model import (
    DRIVER_MTU,
    OVERLAY_VNI,
    Endpoint,
    IpamConfig,
    JoinInfo,
    Network,
)

ROOT = "/refd"
NETWORKS = f"{ROOT}/network/v1.0/network"
FIRST_VNI, LAST_VNI = 256, (1 << 24) - 1
MTU = 1450  # 1500 less VXLAN's 50 bytes of outer headers


def network_key(network_id: str) -> str:
    return f"{NETWORKS}/{network_id}"


def vni_key(vni: int) -> str:
    return f"{ROOT}/vni/{vni}"


def ipam_dir(network_id: str) -> str:
    return f"{ROOT}/ipam/{network_id}"


class OverlayDriver:
    name = "overlay"

    def __init__(self, store: KvStore, advertise: str, exec_root: Path) -> None:
        self.store = store
        self.advertise = advertise
        self.vtep = _vtep(advertise)
        self.netns_dir = Path(exec_root) / "netns"
        self._lock = threading.RLock()
        self._watches: dict[str, PeerWatch] = {}  # networks with endpoints on this host
        self._claimed: dict[str, int] = {}  # network id → the VNI this driver claimed for it

    def scope(self) -> str:
        return "global"

    def sandbox_key(self, network_id: str) -> Path:
        return self.netns_dir / f"ovl-{network_id[:12]}"

    # -- networks ------------------------------------------------------------------------
    def create_network(self, network: Network) -> None:
        """Claim the network's VNI (the one -o vxlanid_list names, or the lowest free from
        256) and keep it in network.options. Kernel objects wait for the first join."""
        if "encrypted" in network.options:
            raise UnsupportedError("encrypted overlay networks (IPsec needs swarm mode)",
                                   obj=network.name)  # fmt: skip
        _mtu(network)
        if not network.ipam:
            raise ConfigError("an overlay network needs a subnet", obj=network.name)
        wanted = network.options.get(OVERLAY_VNI, "").split(",")[0].strip()
        if wanted:
            vni = _parse_vni(wanted, network.name)
            if not self.store.create(vni_key(vni), network.id):
                raise ConflictError(f"VNI {vni} is already in use", obj=network.name)
        else:
            vni = self._free_vni(network)
        self._claimed[network.id] = vni
        network.options[OVERLAY_VNI] = str(vni)

    def _free_vni(self, network: Network) -> int:
        used = {int(k.rsplit("/", 1)[1]) for k in self.store.list(f"{ROOT}/vni")
                if k.rsplit("/", 1)[1].isdigit()}  # fmt: skip
        for vni in range(FIRST_VNI, LAST_VNI + 1):
            if vni not in used and self.store.create(vni_key(vni), network.id):
                return vni
        raise ConflictError("no free VXLAN id left", obj=network.name)

    def publish_network(self, network: Network) -> None:
        """Store the network's record for every host (after create_network)."""
        body = json.dumps(network.to_doc(), sort_keys=True)
        try:
            made = self.store.create(network_key(network.id), body)
        except StoreError:
            self._release_claim(network)
            raise
        if not made:
            self._release_claim(network)
            raise ConflictError("a network with this id is already in the cluster store",
                                obj=network.id)  # fmt: skip
        self._claimed.pop(network.id, None)

    def _release_claim(self, network: Network) -> None:
        vni = self._claimed.pop(network.id, None)
        if vni is not None:
            with contextlib.suppress(StoreError):
                self.store.delete(vni_key(vni), prev_value=network.id)

    def withdraw_network(self, network: Network) -> None:
        """Remove the network's record, its addresses, peers and VNI from the store."""
        self.store.delete(network_key(network.id))
        self.store.delete(ipam_dir(network.id), recursive=True)
        self.store.delete(f"{ROOT}/overlay/{network.id}", recursive=True)
        vni = network.options.get(OVERLAY_VNI, "")
        if vni.isdigit():
            self.store.delete(vni_key(int(vni)), prev_value=network.id)

    def remote_networks(self) -> list[Network]:
        """Every network in the store (this host's and the others'); damaged records are
        left out rather than hiding all the others."""
        found = []
        for _, value in sorted(self.store.list(NETWORKS).items()):
            try:
                found.append(Network.from_doc(json.loads(value)))
            except (ValueError, TypeError, KeyError):
                continue
        return found

    def peers(self, network: Network) -> dict[str, Peer]:
        """Endpoint id → Peer of the endpoints joined on any host (e.g. to refuse removing
        a network that still has some)."""
        found = {}
        for key, value in self.store.list(peers_dir(network.id)).items():
            peer = Peer.parse(value)
            if peer is not None:
                found[key.rsplit("/", 1)[1]] = peer
        return found

    def delete_network(self, network: Network) -> None:
        """This host's part: stop the watch, remove the overlay sandbox if there is one."""
        with self._lock:
            watch = self._watches.pop(network.id, None)
            if watch is not None:
                watch.stop()
            overlay_ns.teardown(self.sandbox_key(network.id))
            self._release_claim(network)  # created here but never published

    # -- addresses -----------------------------------------------------------------------
    def allocate_address(self, network: Network, wanted: str = "") -> str:
        """An address of the network's first pool, unique across hosts, as "a.b.c.d/len":
        `wanted` if free, else the lowest free one of ip_range (or the subnet)."""
        config = _pool(network)
        subnet = IPv4Network(config.subnet)
        reserved = _reserved(config)
        mine = json.dumps({"host": self.advertise})
        if wanted:
            try:
                address = ip_address(wanted)
            except ValueError:
                raise ConfigError(f"invalid address {wanted!r}", obj=network.name) from None
            if address not in subnet:
                raise ConfigError(f"address {wanted} is not in the subnet {subnet}",
                                  obj=network.name)  # fmt: skip
            if address in reserved or not self.store.create(_address_key(network, address), mine):
                raise ConflictError(f"Address already in use: {wanted}", obj=network.name)
            return f"{address}/{subnet.prefixlen}"
        used = {k.rsplit("/", 1)[1] for k in self.store.list(ipam_dir(network.id))}
        space = IPv4Network(config.ip_range) if config.ip_range else subnet
        for address in space.hosts():
            if address in reserved or str(address) in used:
                continue
            if self.store.create(_address_key(network, address), mine):
                return f"{address}/{subnet.prefixlen}"
        raise ConflictError(f"no available IPv4 addresses on the network {network.id[:12]}",
                            obj=network.name)  # fmt: skip

    def release_address(self, network: Network, address: str) -> None:
        if address:
            self.store.delete(_address_key(network, IPv4Interface(address).ip))

    # -- endpoints -----------------------------------------------------------------------
    def create_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        if not endpoint.address:
            raise ConfigError("an overlay endpoint needs an IPv4 address", obj=endpoint.id[:12])
        if not endpoint.mac:
            endpoint.mac = sandbox.mac_from_ip(endpoint.address)

    def join(self, network: Network, endpoint: Endpoint, sandbox_key: str) -> JoinInfo:
        """The endpoint's veth pair on the network's overlay sandbox (made by the first join
        on this host), its peer record published; the container end goes to the caller."""
        mtu = _mtu(network)
        key = self.sandbox_key(network.id)
        if not endpoint.mac:  # create_endpoint sets it; a peer record needs one
            self.create_endpoint(network, endpoint)
        with self._lock:
            self._up(network)
            try:
                outer = overlay_ns.add_port(key, endpoint.id, mtu)
                try:
                    self.store.put(_peer_key(endpoint), self._peer(endpoint).dump())
                except BaseException:
                    overlay_ns.remove_port(key, endpoint.id)
                    raise
            except BaseException:
                self._down_if_unused(network.id)
                raise
        endpoint.driver_state["overlay_sandbox"] = str(key)
        return JoinInfo(src_name=outer, dst_prefix="eth", mtu=mtu)

    def program(self, network: Network, endpoint: Endpoint) -> None:
        return None  # no published ports on an overlay

    def leave(self, network: Network, endpoint: Endpoint) -> None:
        """Remove the endpoint's port and peer record; the last endpoint on this host takes
        the overlay sandbox with it. The store is told last: a store that cannot be reached
        leaves a stale record (reported) but never stale kernel objects."""
        with self._lock:
            overlay_ns.remove_port(self.sandbox_key(network.id), endpoint.id)
            self._down_if_unused(network.id)
        endpoint.driver_state.pop("overlay_sandbox", None)
        self.store.delete(_peer_key(endpoint))

    def delete_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        with contextlib.suppress(StoreError):  # normally gone with leave already
            self.store.delete(_peer_key(endpoint))

    # -- the host's share of a network ---------------------------------------------------
    def _up(self, network: Network) -> None:
        """This host's overlay sandbox of the network, made if needed (or found intact after
        a restart), with the remote peers programmed and a watch keeping them current."""
        watch = self._watches.get(network.id)
        if watch is not None and watch.running:
            return
        vni = _vni(network)
        key = self.sandbox_key(network.id)
        if overlay_ns.intact(key, vni):
            overlay_ns.flush_peers(key)  # peers that left meanwhile; all re-read below
        else:
            overlay_ns.teardown(key)
            overlay_ns.build(key, network.id, vni, self.vtep, _mtu(network), _gateway(network))
        watch = PeerWatch(self.store, network.id, key, self.vtep, self._lock)
        try:
            watch.start()
        except BaseException:
            if not overlay_ns.ports(key):
                overlay_ns.teardown(key)
            raise
        self._watches[network.id] = watch

    def _peer(self, endpoint: Endpoint) -> Peer:
        return Peer(str(IPv4Interface(endpoint.address).ip), endpoint.mac, self.vtep)

    def _down_if_unused(self, network_id: str) -> None:
        key = self.sandbox_key(network_id)
        if overlay_ns.ports(key):
            return
        watch = self._watches.pop(network_id, None)
        if watch is not None:
            watch.stop()
        overlay_ns.teardown(key)

    # -- restart and shutdown ------------------------------------------------------------
    def restore(self, networks: list[Network], endpoints: list[Endpoint]) -> None:
        """After a restart: for each overlay network with endpoints joined on this host, its
        sandbox (kept if intact, else made again), its peers, its watch; the endpoints'
        peer records put again. Idempotent."""
        by_id = {n.id: n for n in networks if n.driver == self.name}
        joined: dict[str, list[Endpoint]] = {}
        for endpoint in endpoints:
            if endpoint.network_id in by_id and endpoint.sandbox_key:
                joined.setdefault(endpoint.network_id, []).append(endpoint)
        failures: list[Exception] = []
        for network_id, members in joined.items():
            try:
                with self._lock:
                    self._up(by_id[network_id])
                for endpoint in members:
                    self.store.put(_peer_key(endpoint), self._peer(endpoint).dump())
            except Exception as exc:  # the other networks are restored all the same
                failures.append(exc)
        if failures:
            raise failures[0]

    def close(self) -> None:
        """Stop the watches (kernel objects stay, for restore)."""
        with self._lock:
            watches = list(self._watches.values())
            self._watches.clear()
        for watch in watches:
            watch.stop()
        self.store.cancel_watches()
        for watch in watches:
            watch.join(timeout=2)


def _vtep(advertise: str) -> str:
    """The VTEP address: the IP of "ip:port" (or of the interface "name:port" names)."""
    host = advertise.rpartition(":")[0] if ":" in advertise else advertise
    try:
        return str(IPv4Address(host))
    except ValueError:
        pass
    with sandbox.ipr() as ip:
        for index in ip.link_lookup(ifname=host):
            for addr in ip.get_addr(family=2, index=index):
                return str(addr.get_attr("IFA_ADDRESS"))
    raise ConfigError(f"cluster-advertise {advertise!r}: not an IPv4 address or an interface "
                      "with one", obj="cluster-advertise")  # fmt: skip


def _vni(network: Network) -> int:
    value = network.options.get(OVERLAY_VNI, "").split(",")[0].strip()
    if not value:
        raise NotFoundError("the overlay network has no VNI (not made by create_network)",
                            obj=network.id[:12])  # fmt: skip
    return _parse_vni(value, network.name)


def _parse_vni(text: str, name: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= LAST_VNI:
        raise ConfigError(f"invalid VXLAN id {text!r} (1-{LAST_VNI})", obj=name)
    return int(text)


def _mtu(network: Network) -> int:
    value = network.options.get(DRIVER_MTU, "")
    if not value or value == "0":
        return MTU
    if not value.isdigit() or not 68 <= int(value) <= 65535:
        raise ConfigError(f"invalid MTU {value!r}", obj=network.name)
    return int(value)


def _pool(network: Network) -> IpamConfig:
    if not network.ipam:
        raise ConfigError("the overlay network has no subnet", obj=network.name)
    return network.ipam[0]


def _gateway(network: Network) -> str:
    """The gateway as "a.b.c.d/len" for br0 ("" without one)."""
    config = _pool(network)
    if not config.gateway:
        return ""
    return f"{config.gateway}/{IPv4Network(config.subnet).prefixlen}"


def _reserved(config: IpamConfig) -> set[IPv4Address]:
    subnet = IPv4Network(config.subnet)
    found = {subnet.network_address, subnet.broadcast_address}
    found.update(IPv4Address(a) for a in [config.gateway, *config.aux_addresses.values()] if a)
    return found


def _address_key(network: Network, address: object) -> str:
    return f"{ipam_dir(network.id)}/{address}"


def _peer_key(endpoint: Endpoint) -> str:
    return f"{peers_dir(endpoint.network_id)}/{endpoint.id}"
