"""The overlay driver's kernel side, in scratch network namespaces: the overlay sandbox
primitives (overlay_ns) in one, then two lab hosts (two namespaces on one veth "wire", etcd
on host A) each running the driver in a process of its own (_overlay_agent), proving a TCP
exchange across VXLAN, the frames on the wire, a restart, and that nothing is left."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reference.network import sandbox
from reference.network.drivers import overlay_ns

REPO = Path(__file__).resolve().parents[3]
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("nsenter"), reason="needs root and nsenter"
)

PRIMITIVES = """
import json, sys
from pathlib import Path
from reference.errors import KernelError
from reference.network import sandbox
from reference.network.drivers import overlay_ns as ns
root, seen = Path(sys.argv[1]), {}
one, two = root / "one", root / "two"
ns.build(one, "a" * 64, 300, "192.0.2.1", 1450, "10.0.0.1/24")
seen["intact"] = [ns.intact(one, 300), ns.intact(one, 301), ns.intact(two, 300)]
try:
    ns.build(two, "b" * 64, 300, "192.0.2.1", 1450)  # the VNI is taken in this namespace
except KernelError as exc:
    seen["error"] = str(exc)
seen["two"] = two.exists()
seen["port"] = ns.add_port(one, "e" * 64, 1450)
seen["ports"] = ns.ports(one)
ns.add_peer(one, "10.0.0.5", "02:42:0a:00:00:05", "192.0.2.2")
ns.add_peer(one, "10.0.0.5", "02:42:0a:00:00:05", "192.0.2.3")  # moved to another host
def peers():
    with sandbox.ipr(str(one)) as ip:
        i = ip.link_lookup(ifname=ns.VXLAN)[0]
        return ([[e.get_attr("NDA_LLADDR"), e.get_attr("NDA_DST")]
                 for e in ip.fdb("dump", ifindex=i) if e.get_attr("NDA_DST")],
                [n.get_attr("NDA_DST") for n in ip.neigh("dump", ifindex=i, family=2)])
seen["peers"] = peers()
for _ in range(2):  # idempotent
    ns.remove_peer(one, "10.0.0.5", "02:42:0a:00:00:05", "192.0.2.3")
    ns.remove_port(one, "e" * 64)
seen["removed"] = [peers(), ns.ports(one)]
ns.teardown(one)
ns.teardown(one)
seen["one"] = one.exists()
with sandbox.ipr() as ip:
    seen["links"] = [link.get_attr("IFLA_IFNAME") for link in ip.get_links()]
print(json.dumps(seen))
"""


@needs_root
def test_overlay_sandbox_primitives(tmp_path: Path) -> None:
    name = f"cts-hovl-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        done = subprocess.run(["nsenter", f"--net=/run/netns/{name}", "--", sys.executable,
                               "-c", PRIMITIVES, str(tmp_path)], cwd=REPO, capture_output=True,
                              text=True, timeout=30)  # fmt: skip
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout)
    finally:
        unmount_under(tmp_path)
        subprocess.run(["ip", "netns", "del", name], check=False)
    assert seen["intact"] == [True, False, False]
    assert re.fullmatch(r"create the VXLAN device failed: File exists \(errno 17\): "
                        rf"vxlan0 \(VNI 300\) of network b{{12}} in {tmp_path}/two",
                        seen["error"])  # fmt: skip
    assert seen["two"] is False  # the failed build left no sandbox
    assert (seen["port"], seen["ports"]) == ("vc" + "e" * 11, ["vo" + "e" * 11])
    assert seen["peers"] == [[["02:42:0a:00:00:05", "192.0.2.3"]], ["10.0.0.5"]]
    assert seen["removed"] == [[[], []], []]
    assert seen["one"] is False
    assert seen["links"] == ["lo"]  # no vx-... left behind in the "host" namespace


needs_lab = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("etcd") or not shutil.which("nsenter"),
    reason="needs root, nsenter and etcd (Debian package etcd-server)",
)  # two hosts, real kernel
UNDERLAY = ("192.0.2.1", "192.0.2.2")  # TEST-NET-1, on the wire between the two namespaces


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=10)


def in_ns(netns: str, *argv: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(["nsenter", f"--net={netns}", "--", *argv], cwd=REPO, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kw)  # fmt: skip


def line(process: subprocess.Popen[str], timeout: float = 10) -> dict[str, Any]:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    text = process.stdout.readline() if ready else ""
    if not text:
        process.kill()
        errors = process.communicate()[1]
        raise AssertionError(f"no answer from {process.args!r}: {errors[-3000:]}")
    doc: dict[str, Any] = json.loads(text)
    return doc


def unmount_under(root: Path) -> None:
    """Unmount what a failed run left bound under `root` (namespace files)."""
    for entry in Path("/proc/self/mountinfo").read_text().splitlines():
        target = entry.split()[4]
        if target.startswith(f"{root}/"):
            sandbox.delete(Path(target))


@contextlib.contextmanager
def lab(tmp: Path) -> Iterator[tuple[str, str]]:
    """Two host namespaces wired by a veth, etcd on the first: their paths."""
    tag = secrets.token_hex(3)
    names = (f"cts-hovl-{tag}a", f"cts-hovl-{tag}b")
    data = Path(tempfile.mkdtemp(prefix="cts-etcd-", dir="/dev/shm"))
    etcd: subprocess.Popen[str] | None = None
    try:
        for name in names:
            run("ip", "netns", "add", name)
        run("ip", "-n", names[0], "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
            "netns", names[1])  # fmt: skip
        for name, address in zip(names, UNDERLAY, strict=True):
            run("ip", "-n", name, "addr", "add", f"{address}/24", "dev", "eth0")
            for link in ("lo", "eth0"):
                run("ip", "-n", name, "link", "set", link, "up")
        paths = (f"/run/netns/{names[0]}", f"/run/netns/{names[1]}")
        client = f"http://{UNDERLAY[0]}:2379"
        etcd = in_ns(paths[0], shutil.which("etcd") or "etcd", "--name", "t", "--data-dir",
                     str(data / "d"), "--enable-v2", "--listen-client-urls", client,
                     "--advertise-client-urls", client, "--listen-peer-urls",
                     "http://127.0.0.1:2380", "--initial-cluster", "t=http://127.0.0.1:2380",
                     "--initial-advertise-peer-urls", "http://127.0.0.1:2380")  # fmt: skip
        probe = "import sys,urllib.request as u; u.urlopen(sys.argv[1], timeout=1)"
        deadline = time.monotonic() + 15
        while subprocess.run(["nsenter", f"--net={paths[1]}", "--", sys.executable, "-c", probe,
                              f"{client}/v2/keys/"], capture_output=True).returncode:  # fmt: skip
            assert etcd.poll() is None, f"etcd exited: {etcd.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "etcd did not start"
            time.sleep(0.1)
        yield paths
    finally:
        if etcd is not None:
            etcd.kill()
            etcd.communicate()
        unmount_under(tmp)
        for name in names:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def vxlan_frames(sock: socket.socket) -> set[tuple[str, str, int]]:
    """(outer source, outer destination, VNI) of the UDP/4789 frames a packet socket got."""
    found = set()
    with contextlib.suppress(BlockingIOError):
        while frame := sock.recv(65535, socket.MSG_DONTWAIT):
            if frame[12:14] != b"\x08\x00" or frame[23] != 17:  # IPv4, UDP
                continue
            ihl = (frame[14] & 0x0F) * 4
            udp = 14 + ihl
            if struct.unpack("!H", frame[udp + 2 : udp + 4])[0] == overlay_ns.VXLAN_PORT:
                vni = int.from_bytes(frame[udp + 12 : udp + 15], "big")
                found.add((socket.inet_ntoa(frame[26:30]), socket.inet_ntoa(frame[30:34]), vni))
    return found


ECHO = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7000)); s.listen(1); print("ready", flush=True)
c, peer = s.accept(); c.sendall(b"echo:" + c.recv(100) + b" from " + peer[0].encode())
"""
SEND = """
import socket, sys, time
for attempt in range(50):
    try:
        c = socket.create_connection((sys.argv[1], 7000), timeout=1); break
    except OSError:
        time.sleep(0.1)
c.sendall(b"hello"); print(c.recv(100).decode(), flush=True)
"""


def exchange(sender: str, receiver: dict[str, Any]) -> str:
    """A TCP exchange from the container namespace `sender` to the agent `receiver`'s."""
    listener = in_ns(receiver["key"], sys.executable, "-c", ECHO)
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "ready"
        sent = subprocess.run(["nsenter", f"--net={sender}", "--", sys.executable, "-c", SEND,
                               receiver["address"].split("/")[0]],
                              capture_output=True, text=True, timeout=15)  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        return sent.stdout.strip()
    finally:
        listener.kill()
        listener.communicate()


def tell(agent: subprocess.Popen[str], command: str) -> dict[str, Any]:
    assert agent.stdin is not None
    agent.stdin.write(command + "\n")
    agent.stdin.flush()
    return line(agent)


@needs_lab
def test_two_hosts_reach_each_other_over_vxlan(tmp_path: Path) -> None:
    from pyroute2 import netns as pr_netns

    with lab(tmp_path) as (host_a, host_b):
        url, network_id = f"etcd://{UNDERLAY[0]}:2379", secrets.token_hex(32)
        agent = [sys.executable, "-m", "tests.reference.network._overlay_agent", url]
        a = in_ns(host_a, *agent, f"{UNDERLAY[0]}:2376", str(tmp_path / "a"), "create",
                  network_id, "10.251.0.0/24")  # fmt: skip
        try:
            on_a = line(a)
            b = in_ns(host_b, *agent, f"{UNDERLAY[1]}:2376", str(tmp_path / "b"), "join",
                      network_id, "")  # fmt: skip
            try:
                on_b = line(b)
                assert (on_a["address"], on_b["address"]) == ("10.251.0.2/24", "10.251.0.3/24")
                for host, seen in ((host_a, on_a), (host_b, on_b)):
                    with sandbox.ipr(seen["overlay"]) as ip:
                        vxlan = ip.get_links(ip.link_lookup(ifname="vxlan0")[0])[0]
                        data = vxlan.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")
                        assert data.get_attr("IFLA_VXLAN_ID") == 256
                        assert vxlan.get_attr("IFLA_MTU") == 1450
                        bridge = ip.link_lookup(ifname="br0")[0]
                        addresses = [
                            x.get_attr("IFA_ADDRESS") for x in ip.get_addr(index=bridge, family=2)
                        ]
                        assert addresses == ["10.251.0.1"], addresses
                        ports = [x.get_attr("IFLA_IFNAME") for x in ip.get_links()
                                 if x.get_attr("IFLA_MASTER") == bridge]  # fmt: skip
                        assert len(ports) == 2, ports
                        assert "vxlan0" in ports, ports
                        assert any(str(p).startswith("vo") for p in ports), ports
                    # the VXLAN socket lives in the host's namespace, on the underlay
                    process = a if host == host_a else b
                    assert ":12B5 " in Path(f"/proc/{process.pid}/net/udp").read_text()

                sniff = pr_netns.create_socket(host_a, socket.AF_PACKET, socket.SOCK_RAW,
                                               socket.htons(3), flags=0)  # fmt: skip
                with sniff:
                    assert exchange(on_a["key"], on_b) == "echo:hello from 10.251.0.2"
                    frames = vxlan_frames(sniff)
                assert (UNDERLAY[0], UNDERLAY[1], 256) in frames, frames
                assert (UNDERLAY[1], UNDERLAY[0], 256) in frames, frames

                restored = tell(a, "restart")  # refd on A restarts: same sandbox, same peers
                assert restored["fdb"] == [on_b["mac"]]  # the stale peer flushed
                assert len(restored["ports"]) == 1  # kept: the container's link still works
                assert exchange(on_a["key"], on_b) == "echo:hello from 10.251.0.2"
                assert tell(b, "leave")["overlay_left"] is False
            finally:
                b.kill()
                b.communicate()
            assert tell(a, "leave") == {"overlay_left": False, "store_left": {}}
        finally:
            a.kill()
            a.communicate()
        for host in (host_a, host_b):
            with sandbox.ipr(host) as ip:
                names = {x.get_attr("IFLA_IFNAME") for x in ip.get_links()}
            assert names == {"lo", "eth0"}, f"left in {host}: {names}"
        assert not re.search(str(tmp_path), Path("/proc/self/mountinfo").read_text())
