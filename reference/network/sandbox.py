"""Sandboxes: a container's network namespace kept alive by a bind mount (its "key"), and the
plumbing every driver shares: moving the link a driver made into the sandbox and configuring it.

The namespace is made, and later sockets in it opened, on short-lived threads of their own
(setns/unshare of CLONE_NEWNET act on the calling thread only), so refd's serving threads
never change namespace. The runtime then joins it by path (linux.namespaces[].path).

Links are configured over netlink (pyroute2, imported here only: refd is a daemon, and this
module is never on refrun's or refctl's path).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from ipaddress import IPv4Interface
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reference.errors import KernelError, NotFoundError, RefError
from reference.network.model import Endpoint, JoinInfo

if TYPE_CHECKING:
    from pyroute2 import IPRoute

MNT_DETACH = 2
MS_BIND = 0x1000
CLONE_NEWNET = 0x40000000


def create(key: Path) -> None:
    """A new network namespace bound at `key` (a file made here), with `lo` up.

    Made on a thread of its own (see _in_netns_thread): it unshares its network namespace,
    which changes only that thread, binds /proc/thread-self/ns/net on `key`, and leaves an
    rtnetlink socket there for bringing `lo` up; then it ends, and the bind mount keeps the
    namespace alive."""
    key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key.touch(mode=0o400)
    try:
        fd = _in_netns_thread(None, key)
    except RefError:
        with contextlib.suppress(OSError):
            key.unlink()
        raise
    try:
        from pyroute2 import IPRoute

        with contextlib.closing(IPRoute(fileno=fd)) as ip:
            ip.link("set", index=ip.link_lookup(ifname="lo")[0], state="up")
    except BaseException:
        delete(key)
        raise


def delete(key: Path) -> None:
    """Unmount and remove `key`; the namespace goes when its last user does. Idempotent."""
    from reference.linux.libc import LinuxSyscall

    try:
        LinuxSyscall().umount2(key, MNT_DETACH)
    except KernelError as e:
        if e.errno not in (22, 2):  # EINVAL: not a mount point (any more); ENOENT: gone
            raise
    with contextlib.suppress(FileNotFoundError):
        key.unlink()


def exists(key: str | Path) -> bool:
    """Whether `key` still holds a namespace (a bind mount of nsfs)."""
    try:
        return os.stat(key).st_dev != os.stat(Path(key).parent).st_dev
    except OSError:
        return False


def netlink_socket(netns: str) -> int:
    """The fd of an rtnetlink socket made inside the network namespace at `netns`."""
    return _in_netns_thread(netns, None)


def _in_netns_thread(join: str | None, bind_new: Path | None) -> int:
    """On a thread of its own: join the namespace at `join`, or unshare a new one and bind
    it at `bind_new`; then make an rtnetlink socket there and return its fd.

    A socket belongs to the namespace its creator was in, for good, and setns/unshare of
    CLONE_NEWNET change only the calling thread: the thread ends afterwards, so refd's other
    threads never leave refd's namespace. (pyroute2's own netns= forks a child per socket,
    ~13 ms, and `unshare --net=FILE` a process, ~7 ms, both paid at every container start.)"""
    from reference.linux.libc import LinuxSyscall

    made: dict[str, Any] = {}

    def work() -> None:
        sc = LinuxSyscall()
        try:
            if join is not None:
                fd = os.open(join, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    sc.setns(fd, CLONE_NEWNET)
                finally:
                    os.close(fd)
            else:
                assert bind_new is not None
                sc.unshare(CLONE_NEWNET)
                sc.mount("/proc/thread-self/ns/net", bind_new, None, MS_BIND)
            made["fd"] = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0).detach()
        except (OSError, RefError) as e:
            made["error"] = e

    thread = threading.Thread(target=work, name="netns")
    thread.start()
    thread.join()
    error = made.get("error")
    if isinstance(error, RefError):
        raise error
    if error is not None:
        raise RefError(f"cannot open a netlink socket: {error}", obj=str(join or bind_new))
    fd: int = made["fd"]
    return fd


@contextlib.contextmanager
def ipr(netns: str | None = None) -> Iterator[IPRoute]:
    """An rtnetlink socket in `netns` (a path; None = refd's own namespace)."""
    from pyroute2 import IPRoute

    handle = IPRoute(fileno=netlink_socket(netns)) if netns else IPRoute()
    try:
        yield handle
    finally:
        handle.close()


def link_index(ip: IPRoute, name: str, where: str | None = None) -> int:
    found = ip.link_lookup(ifname=name)
    if not found:
        raise NotFoundError("no such link", obj=f"{name} in {where or 'the host namespace'}")
    return int(found[0])


def mac_from_ip(address: str) -> str:
    """Docker's MAC for an IPv4 address before 28.0: 02:42 and the four address bytes."""
    packed = IPv4Interface(address).ip.packed
    return "02:42:" + ":".join(f"{b:02x}" for b in packed)


def _free_name(ip: IPRoute, prefix: str) -> str:
    """`prefix` + the lowest index not used in the sandbox (eth0, eth1, ...)."""
    names = {link.get_attr("IFLA_IFNAME") for link in ip.get_links()}
    index = 0
    while f"{prefix}{index}" in names:
        index += 1
    return f"{prefix}{index}"


def plumb(info: JoinInfo, endpoint: Endpoint, key: str) -> str:
    """Move the link `info` names into the sandbox `key`, name it, give it the endpoint's MAC,
    address and MTU, bring it up and add the routes. Returns its name in the sandbox. On
    failure the link is deleted wherever it is and the error raised."""
    name = ""
    moved = info.src_netns == key  # a driver may make the link in the sandbox already
    try:
        if not moved:
            with ipr(info.src_netns) as ip:
                index = link_index(ip, info.src_name, info.src_netns)
                ip.link("set", index=index, state="down")
                ip.link("set", index=index, net_ns_fd=key)
            moved = True
        with ipr(key) as ip:
            index = link_index(ip, info.src_name, key)
            name = _free_name(ip, info.dst_prefix)
            changes: dict[str, Any] = {"ifname": name}
            if endpoint.mac:
                changes["address"] = endpoint.mac
            if info.mtu:
                changes["mtu"] = info.mtu
            ip.link("set", index=index, **changes)
            if endpoint.address:
                iface = IPv4Interface(endpoint.address)
                length = iface.network.prefixlen
                ip.addr("add", index=index, address=str(iface.ip), prefixlen=length)
            ip.link("set", index=index, state="up")
            if info.gateway:
                ip.route("add", dst="0.0.0.0/0", gateway=info.gateway, oif=index)
            for route in info.routes:
                if route.next_hop:
                    ip.route("add", dst=route.destination, gateway=route.next_hop)
                else:
                    ip.route("add", dst=route.destination, oif=index, scope=253)
    except Exception as exc:
        with contextlib.suppress(Exception), ipr(key if moved else info.src_netns) as ip:
            for old in {name, info.src_name} - {""}:
                for index in ip.link_lookup(ifname=old):
                    ip.link("del", index=index)
        if isinstance(exc, RefError):
            raise
        raise RefError(f"cannot configure {name} in the sandbox: {exc}", obj=key) from exc
    return name


def unplumb(endpoint: Endpoint, give_back: bool = False) -> None:
    """Take the endpoint's interface out of its sandbox: deleted (a veth takes its peer with
    it), or with `give_back` moved back where join made it, under its old name, down and
    without addresses (libnetwork does this for plugins' links, which the plugin deletes)."""
    key = endpoint.sandbox_key
    if not key or not endpoint.ifname or not exists(key):
        return
    with ipr(key) as ip:
        for index in ip.link_lookup(ifname=endpoint.ifname):
            if give_back and endpoint.src_name:
                ip.link("set", index=index, state="down")
                ip.flush_addr(index=index)
                ip.link("set", index=index, ifname=endpoint.src_name)
                ip.link("set", index=index, net_ns_fd=endpoint.src_netns or "/proc/self/ns/net")
            else:
                ip.link("del", index=index)
