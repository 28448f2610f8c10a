"""The bridge driver end to end, run by test_bridge.py inside a scratch network namespace
(`ip netns exec NS python -m tests.reference.network._bridge_scenario DIR`): the driver acts
on the namespace of its own process, as in refd.

Two bridge networks, a container sandbox on each, a published port, and a fake WAN host (a
sandbox of its own linked to the engine namespace by a veth). Prints one JSON object of what
the kernel showed; the test asserts on it. Everything it makes is removed before it exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from reference.network import sandbox
from reference.network.drivers.bridge import BridgeDriver
from reference.network.firewall import Firewall
from reference.network.model import Endpoint, IpamConfig, Network, PortBinding
from reference.network.portmap import PortMapper

WAN_HOST, WAN_PEER = "198.51.100.1", "198.51.100.2"
CLONE_NEWNET = 0x40000000
LIBC = ctypes.CDLL(None, use_errno=True)


def ns_socket(key: Path | None) -> socket.socket:
    """A TCP socket of the namespace at `key` (None: this one), made by a thread that joins
    it: a socket stays in the namespace it was made in, and the thread's switch dies with it."""
    if key is None:
        return socket.socket()
    made: list[socket.socket | BaseException] = []

    def enter() -> None:
        try:
            fd = os.open(key, os.O_RDONLY)
            try:
                if LIBC.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {key}")
            finally:
                os.close(fd)
            made.append(socket.socket())
        except BaseException as exc:
            made.append(exc)

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0]


def client(key: Path | None, host: str, port: int, timeout: float = 2.0) -> str:
    """ "echo:hi from <peer>" as the server answered, or the error's name and errno."""
    with ns_socket(key) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
            sock.sendall(b"hi")
            return sock.recv(100).decode()
        except OSError as exc:
            return f"{type(exc).__name__} {exc.errno}"


@contextlib.contextmanager
def echo_server(key: Path, port: int) -> Iterator[None]:
    """Echoes one message per connection with the peer's address, until the block ends."""
    listener = ns_socket(key)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(8)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, peer = listener.accept()
                with conn:
                    conn.sendall(b"echo:" + conn.recv(100) + f" from {peer[0]}".encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(2)


def network(tag: str, third: int) -> Network:
    subnet = f"10.{third}.0.0/24"
    return Network(
        id=tag * 64, name=f"n{tag}", driver="bridge", ipam=[IpamConfig(subnet, f"10.{third}.0.1")]
    )


def attach(
    drv: BridgeDriver, net: Network, tag: str, key: Path, ports: list[PortBinding]
) -> Endpoint:
    third = net.ipam[0].subnet.split(".")[1]
    ep = Endpoint(
        id=tag * 64,
        network_id=net.id,
        container_id=tag * 64,
        name=f"c{tag}",
        address=f"10.{third}.0.2/24",
        gateway=net.ipam[0].gateway,
        ports=ports,
    )
    drv.create_endpoint(net, ep)
    sandbox.create(key)
    info = drv.join(net, ep, str(key))
    ep.ifname = sandbox.plumb(info, ep, str(key))
    ep.sandbox_key = str(key)
    drv.program(net, ep)
    return ep


def link(name: str, netns: str | None = None) -> dict[str, Any]:
    with sandbox.ipr(netns) as ip:
        found = ip.link_lookup(ifname=name)
        if not found:
            return {}
        msg = ip.get_links(found[0])[0]
        info = msg.get_attr("IFLA_LINKINFO")
        addrs = [
            f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
            for a in ip.get_addr(family=2, index=found[0])
        ]
        return {
            "index": found[0],
            "kind": info.get_attr("IFLA_INFO_KIND") if info is not None else None,
            "mtu": msg.get_attr("IFLA_MTU"),
            "master": msg.get_attr("IFLA_MASTER"),
            "mac": msg.get_attr("IFLA_ADDRESS"),
            "up": bool(msg["flags"] & 1),
            "addresses": addrs,
        }


def routes() -> list[dict[str, Any]]:
    with sandbox.ipr() as ip:
        return [
            {
                "dst": f"{r.get_attr('RTA_DST')}/{r['dst_len']}",
                "oif": r.get_attr("RTA_OIF"),
                "scope": r["scope"],
                "proto": r["proto"],
            }
            for r in ip.get_routes(family=2, table=254)
            if r.get_attr("RTA_DST")
        ]


def wan_link(key: Path) -> None:
    """A veth from the engine namespace (cts-wan, WAN_HOST) to the WAN sandbox (WAN_PEER)."""
    with sandbox.ipr() as ip:
        ip.link("add", ifname="cts-wan", kind="veth", peer={"ifname": "cts-wanp"})
        index = ip.link_lookup(ifname="cts-wan")[0]
        ip.addr("add", index=index, address=WAN_HOST, prefixlen=30)
        ip.link("set", index=index, state="up")
        ip.link("set", index=ip.link_lookup(ifname="cts-wanp")[0], net_ns_fd=str(key))
    with sandbox.ipr(str(key)) as ip:
        index = ip.link_lookup(ifname="cts-wanp")[0]
        ip.addr("add", index=index, address=WAN_PEER, prefixlen=30)
        ip.link("set", index=index, state="up")


def iptables_save() -> list[str]:
    done = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True)
    return [line for line in done.stdout.splitlines() if line[:1] in ("*", ":", "-")]


def main(work: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {"before": iptables_save()}
    fw = Firewall(enabled=True, ip_forward=True)
    ports = PortMapper(fw)
    drv = BridgeDriver(fw, ports, 1500)
    one, two = network("a", 201), network("b", 202)
    one.options["com.docker.network.driver.mtu"] = "1400"
    keys = {"a": work / "ca", "b": work / "cb", "wan": work / "wan"}
    made: list[tuple[Network, Endpoint]] = []
    try:
        drv.create_network(one)
        drv.create_network(two)
        seen["bridge"] = link(one.driver_state["bridge"])
        seen["routes"] = routes()
        ep = attach(drv, one, "a", keys["a"], [PortBinding("tcp", 8080)])
        made.append((one, ep))
        other = attach(drv, two, "b", keys["b"], [])
        made.append((two, other))
        seen["endpoint"] = {"mac": ep.mac, "ports": [asdict(p) for p in ep.ports]}
        seen["veth"] = link(ep.driver_state["veth"])
        seen["eth0"] = link("eth0", str(keys["a"]))
        sandbox.create(keys["wan"])
        wan_link(keys["wan"])
        seen["rules"] = iptables_save()
        port = ep.ports[0].host_port
        with echo_server(keys["a"], 8080):
            seen["loopback"] = client(None, "127.0.0.1", port)
            seen["from_wan"] = client(keys["wan"], WAN_HOST, port)
            seen["from_other_network"] = client(keys["b"], "10.201.0.2", 8080, 0.5)
        with echo_server(keys["wan"], 9090):
            seen["outbound"] = client(keys["a"], WAN_PEER, 9090)
        # Published-port teardown, then the ports must be closed again.
        veth = ep.driver_state["veth"]
        drv.leave(one, ep)
        made.remove((one, ep))
        sandbox.unplumb(ep)
        drv.delete_endpoint(one, ep)
        seen["after_leave"] = client(None, "127.0.0.1", port)
        seen["veth_after_leave"] = link(veth)
    finally:
        for net, endpoint in made:
            drv.leave(net, endpoint)
            sandbox.unplumb(endpoint)
            drv.delete_endpoint(net, endpoint)
        for net in (one, two):
            if net.driver_state:
                drv.delete_network(net)
        drv.close()
        for key in keys.values():
            sandbox.delete(key)
    seen["bridge_after"] = link(one.driver_state["bridge"])
    seen["after"] = iptables_save()
    return seen


if __name__ == "__main__":
    start = time.monotonic()
    result = main(Path(sys.argv[1]))
    result["seconds"] = round(time.monotonic() - start, 2)
    print(json.dumps(result))
