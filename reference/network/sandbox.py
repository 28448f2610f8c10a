"""Sandboxes: a container's network namespace kept alive by a bind mount (its "key"), and the
plumbing every driver shares: moving the link a driver made into the sandbox and configuring it.

The namespace is made by `unshare --net=<key> true` (util-linux): a freshly exec'd
single-threaded child unshares and bind-mounts its /proc/self/ns/net on the key file, so
refd's own (threaded) process never calls unshare. The runtime then joins it by path
(linux.namespaces[].path in the OCI spec).

Links are configured over netlink (pyroute2, imported here only: refd is a daemon, and this
module is never on refrun's or refctl's path).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from ipaddress import IPv4Interface
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reference.errors import KernelError, NotFoundError, RefError
from reference.network.model import Endpoint, JoinInfo

if TYPE_CHECKING:
    from pyroute2 import IPRoute

MNT_DETACH = 2


def create(key: Path) -> None:
    """A new network namespace bound at `key` (a file made here), with `lo` up."""
    key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key.touch(mode=0o400)
    done = subprocess.run(
        ["unshare", f"--net={key}", "true"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        with contextlib.suppress(OSError):
            key.unlink()
        raise RefError(f"cannot create network namespace: {done.stderr.strip()}", obj=str(key))
    try:
        with ipr(str(key)) as ip:
            ip.link("set", index=ip.link_lookup(ifname="lo")[0], state="up")
    except BaseException:
        delete(key)
        raise


def delete(key: Path) -> None:
    """Unmount and remove `key`; the namespace goes when its last user does. Idempotent."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(str(key).encode(), MNT_DETACH) != 0:
        errno = ctypes.get_errno()
        if errno not in (22, 2):  # EINVAL: not a mount point (any more); ENOENT: gone
            raise KernelError("umount2", errno, obj=str(key))
    with contextlib.suppress(FileNotFoundError):
        key.unlink()


def exists(key: str | Path) -> bool:
    """Whether `key` still holds a namespace (a bind mount of nsfs)."""
    try:
        return os.stat(key).st_dev != os.stat(Path(key).parent).st_dev
    except OSError:
        return False


@contextlib.contextmanager
def ipr(netns: str | None = None) -> Iterator[IPRoute]:
    """An rtnetlink socket in `netns` (a path; None = refd's own namespace)."""
    from pyroute2 import IPRoute

    handle = IPRoute(netns=netns, flags=0) if netns else IPRoute()
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


def next_ifname(key: str, prefix: str) -> str:
    """`prefix` + the lowest index not used in the sandbox (eth0, eth1, ...)."""
    with ipr(key) as ip:
        names = {link.get_attr("IFLA_IFNAME") for link in ip.get_links()}
    index = 0
    while f"{prefix}{index}" in names:
        index += 1
    return f"{prefix}{index}"


def plumb(info: JoinInfo, endpoint: Endpoint, key: str) -> str:
    """Move the link `info` names into the sandbox `key`, name it, give it the endpoint's MAC,
    address and MTU, bring it up and add the routes. Returns its name in the sandbox. On
    failure the link is deleted wherever it is and the error raised."""
    name = next_ifname(key, info.dst_prefix)
    moved = False
    try:
        with ipr(info.src_netns) as ip:
            index = link_index(ip, info.src_name, info.src_netns)
            ip.link("set", index=index, state="down")
            ip.link("set", index=index, net_ns_fd=key)
        moved = True
        with ipr(key) as ip:
            index = link_index(ip, info.src_name, key)
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
            for old in (name, info.src_name):
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
