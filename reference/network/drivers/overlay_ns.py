"""The kernel side of an overlay network on one host: its own network namespace (the overlay
sandbox, as libnetwork's classic overlay makes it) holding

    br0      a bridge with the subnet's gateway address (containers get no route via it)
    vxlan0   the VXLAN device, port of br0: VNI = the network's, UDP 4789, local = this host's
             VTEP address, learning off, ARP proxy on (answers from the neighbour entries)
    vo...    one veth per joined endpoint, port of br0; its peer (vc...) is the container's

The VXLAN device is made in refd's own namespace and moved in afterwards: its UDP socket stays
where the device was made, on the underlay, while its frames go to br0 in the sandbox.

Remote peers are programmed on vxlan0: a permanent FDB entry (MAC → the peer host's VTEP) and
a permanent neighbour entry (IP → MAC), which the ARP proxy answers containers' requests from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reference.errors import KernelError, RefError
from reference.network import sandbox
from reference.network.sandbox import ipr, link_index

BRIDGE = "br0"
VXLAN = "vxlan0"
VXLAN_PORT = 4789
NUD_NOARP, NUD_PERMANENT = 0x40, 0x80
NTF_SELF = 0x02
AF_INET, AF_BRIDGE = 2, 7
ENOENT, ESRCH = 2, 3


def vxlan_name(vni: int, network_id: str) -> str:
    """The device's name in refd's namespace before it moves (libnetwork's pattern)."""
    return f"vx-{vni:06x}-{network_id[:5]}"


def port_names(endpoint_id: str) -> tuple[str, str]:
    """(the sandbox end, the container end) of an endpoint's veth pair."""
    return f"vo{endpoint_id[:11]}", f"vc{endpoint_id[:11]}"


@contextlib.contextmanager
def _kernel(op: str, obj: str) -> Iterator[None]:
    """Netlink and OS failures as KernelError naming `obj`."""
    try:
        yield
    except RefError:
        raise
    except Exception as exc:
        code = getattr(exc, "code", None) or getattr(exc, "errno", None)
        if not isinstance(code, int):
            raise RefError(f"{op}: {exc}", obj=obj) from exc
        raise KernelError(op, code, obj=obj) from exc


def _drop(ip: Any, name: str) -> None:
    for index in ip.link_lookup(ifname=name):
        with contextlib.suppress(Exception):
            ip.link("del", index=index)


def build(key: Path, network_id: str, vni: int, vtep: str, mtu: int, gateway: str = "") -> None:
    """Make the sandbox at `key` with br0 (holding `gateway`, "a.b.c.d/len", if given, as
    libnetwork's does) and vxlan0; on failure nothing is left."""
    name = vxlan_name(vni, network_id)
    where = f"{VXLAN} (VNI {vni}) of network {network_id[:12]} in {key}"
    sandbox.create(key)
    try:
        with _kernel("create the overlay bridge", f"{BRIDGE} in {key}"), ipr(str(key)) as ip:
            ip.link("add", ifname=BRIDGE, kind="bridge")
            bridge = link_index(ip, BRIDGE, str(key))
            if gateway:
                address, _, length = gateway.partition("/")
                ip.addr("add", index=bridge, address=address, prefixlen=int(length))
            ip.link("set", index=bridge, mtu=mtu, state="up")
        with _kernel("create the VXLAN device", where), ipr() as ip:
            _drop(ip, name)  # left by a refd that died half-way
            ip.link(
                "add",
                ifname=name,
                kind="vxlan",
                vxlan_id=vni,
                vxlan_local=vtep,
                vxlan_port=VXLAN_PORT,
                vxlan_learning=0,  # peers come from the store, never from traffic
                vxlan_proxy=1,
                mtu=mtu,
            )
            ip.link("set", index=link_index(ip, name), net_ns_fd=str(key))
        with _kernel("attach the VXLAN device", where), ipr(str(key)) as ip:
            index = link_index(ip, name, str(key))
            ip.link("set", index=index, ifname=VXLAN)
            ip.link("set", index=index, master=link_index(ip, BRIDGE), state="up")
    except BaseException:
        for netns in (None, str(key)):  # moved or not, it goes now (see teardown)
            with contextlib.suppress(Exception), ipr(netns) as ip:
                _drop(ip, name)
        teardown(key)
        raise


def intact(key: Path, vni: int) -> bool:
    """Whether the sandbox at `key` is there with br0 and vxlan0 of VNI `vni` (a refd
    restart finds it so; then it is kept, with the containers' links on it)."""
    if not sandbox.exists(key):
        return False
    try:
        with ipr(str(key)) as ip:
            found = ip.link_lookup(ifname=VXLAN)
            if not found or not ip.link_lookup(ifname=BRIDGE):
                return False
            data = ip.get_links(found[0])[0].get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")
            return data is not None and data.get_attr("IFLA_VXLAN_ID") == vni
    except Exception:
        return False


def teardown(key: Path) -> None:
    """Remove the sandbox. vxlan0 goes first, at once: its UDP socket (and VNI) would
    otherwise stay claimed until the kernel gets round to the dead namespace. Idempotent."""
    if sandbox.exists(key):
        with _kernel("remove the overlay sandbox", str(key)), ipr(str(key)) as ip:
            _drop(ip, VXLAN)
            _drop(ip, BRIDGE)
    sandbox.delete(key)


def add_port(key: Path, endpoint_id: str, mtu: int) -> str:
    """An endpoint's veth pair: one end on br0 (up), the other in refd's namespace (its name
    returned) for the controller to move into the container."""
    inner, outer = port_names(endpoint_id)
    with _kernel("create the endpoint's veth pair", f"{outer}/{inner} in {key}"):
        with ipr(str(key)) as ip:
            _drop(ip, inner)
        with ipr() as ip:
            _drop(ip, outer)
            ip.link("add", ifname=outer, kind="veth", peer={"ifname": inner, "net_ns_fd": str(key)})
        try:
            with ipr() as ip:
                ip.link("set", index=link_index(ip, outer), mtu=mtu)
            with ipr(str(key)) as ip:
                bridge = link_index(ip, BRIDGE, str(key))
                ip.link("set", index=link_index(ip, inner, str(key)), mtu=mtu, master=bridge)
                ip.link("set", index=link_index(ip, inner, str(key)), state="up")
        except BaseException:
            remove_port(key, endpoint_id)
            raise
    return outer


def remove_port(key: Path, endpoint_id: str) -> None:
    """Delete the endpoint's veth pair wherever its ends are. Idempotent."""
    inner, outer = port_names(endpoint_id)
    with _kernel("delete the endpoint's veth pair", f"{outer}/{inner} in {key}"):
        if sandbox.exists(key):
            with ipr(str(key)) as ip:
                _drop(ip, inner)
        with ipr() as ip:
            _drop(ip, outer)


def ports(key: Path) -> list[str]:
    """Names of the endpoints' ports on br0 ([] without a sandbox)."""
    if not sandbox.exists(key):
        return []
    with _kernel("list the overlay ports", str(key)), ipr(str(key)) as ip:
        bridge = ip.link_lookup(ifname=BRIDGE)
        return [
            str(link.get_attr("IFLA_IFNAME"))
            for link in ip.get_links()
            if bridge and link.get_attr("IFLA_MASTER") == bridge[0]
            and link.get_attr("IFLA_IFNAME") != VXLAN
        ]  # fmt: skip


def add_peer(key: Path, address: str, mac: str, vtep: str) -> None:
    """Frames to `mac` go to host `vtep`; ARP for `address` is answered with `mac`."""
    with _kernel("program the peer", f"{address} ({mac} on {vtep}) in {key}"), ipr(str(key)) as ip:
        index = link_index(ip, VXLAN, str(key))
        ip.fdb("replace", ifindex=index, lladdr=mac, dst=vtep,
               state=NUD_PERMANENT | NUD_NOARP, flags=NTF_SELF)  # fmt: skip
        ip.neigh("replace", dst=address, lladdr=mac, ifindex=index, state=NUD_PERMANENT)


def remove_peer(key: Path, address: str, mac: str, vtep: str) -> None:
    """Undo add_peer (entries already gone are fine)."""
    if not sandbox.exists(key):
        return
    with _kernel("remove the peer", f"{address} ({mac} on {vtep}) in {key}"), ipr(str(key)) as ip:
        for index in ip.link_lookup(ifname=VXLAN):
            with _unless_gone():
                ip.fdb("del", ifindex=index, lladdr=mac, dst=vtep,
                       state=NUD_PERMANENT | NUD_NOARP, flags=NTF_SELF)  # fmt: skip
            with _unless_gone():
                ip.neigh("del", dst=address, ifindex=index)


@contextlib.contextmanager
def _unless_gone() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if getattr(exc, "code", None) not in (ENOENT, ESRCH):
            raise


def flush_peers(key: Path) -> None:
    """Remove every programmed peer (before re-programming from the store after a restart:
    peers that left meanwhile must not linger)."""
    if not sandbox.exists(key):
        return
    with _kernel("flush the peers", str(key)), ipr(str(key)) as ip:
        for index in ip.link_lookup(ifname=VXLAN):
            for entry in ip.fdb("dump", ifindex=index):
                if entry.get_attr("NDA_DST") and entry["ifindex"] == index:
                    with contextlib.suppress(Exception):
                        ip.fdb("del", ifindex=index, lladdr=entry.get_attr("NDA_LLADDR"),
                               dst=entry.get_attr("NDA_DST"),
                               state=NUD_PERMANENT | NUD_NOARP, flags=NTF_SELF)  # fmt: skip
            for entry in ip.neigh("dump", ifindex=index, family=AF_INET):
                with contextlib.suppress(Exception):
                    ip.neigh("del", dst=entry.get_attr("NDA_DST"), ifindex=index)
