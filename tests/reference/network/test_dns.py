"""The embedded DNS server: the wire format, what it answers by itself, the resolv.conf of a
container on a user network, and (as root) the server in a scratch namespace, asked over UDP
and TCP, with upstreams of its own there."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from reference.engine.etcfiles import EtcSpec, embedded_resolv_conf
from reference.errors import ConfigError, RefError
from reference.network import dns, dnsnames, dnswire
from reference.network.dnsnames import Record, View, local_answer, resolve, reverse, view_of
from reference.network.dnswire import TYPE_A, TYPE_AAAA, TYPE_MX, TYPE_PTR
from reference.network.model import Endpoint, Network

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a network namespace")


def ask(name: str, qtype: int = TYPE_A, ident: int = 0x1234, edns: int = 0) -> bytes:
    """A query as a stub resolver sends it (RD set), with an EDNS0 OPT record if asked."""
    question = dnswire.encode_name(name) + struct.pack("!HH", qtype, 1)
    extra = b"\x00" + struct.pack("!HHIH", 41, edns, 0, 0) if edns else b""
    return dnswire.HEADER.pack(ident, dnswire.RD, 1, 0, 0, 1 if edns else 0) + question + extra


def answers(packet: bytes) -> tuple[int, int, list[str]]:
    """(id, flags, answer data) of a reply: addresses of A records, names of PTR ones."""
    ident, flags, qd, an, _, _ = dnswire.HEADER.unpack_from(packet)
    pos = dnswire.HEADER.size
    for _ in range(qd):
        _, pos = dnswire.read_name(packet, pos)
        pos += 4
    found = []
    for _ in range(an):
        _, pos = dnswire.read_name(packet, pos)
        rtype, _, ttl, size = dnswire.RR_FIXED.unpack_from(packet, pos)
        pos += dnswire.RR_FIXED.size
        assert ttl == dnsnames.TTL
        if rtype == TYPE_A:
            found.append(socket.inet_ntoa(packet[pos : pos + size]))
        else:
            found.append(dnswire.read_name(packet, pos)[0])
        pos += size
    return ident, flags, found


# -- wire format ---------------------------------------------------------------------------
def test_a_query_is_read_with_its_edns_size() -> None:
    query = dnswire.parse_query(ask("Web.Net1", TYPE_AAAA, edns=1232))
    assert query is not None
    assert (query.id, query.name, query.qtype, query.udp_size) == (0x1234, "Web.Net1", 28, 1232)
    assert query.limit(tcp=False) == 1232
    assert dnswire.parse_query(ask("web")) == dnswire.Query(
        0x1234, dnswire.RD, "web", TYPE_A, 1, dnswire.encode_name("web") + b"\x00\x01\x00\x01"
    )


def test_responses_and_runts_get_no_reply_and_odd_queries_an_error() -> None:
    reply = dnswire.reply(dnswire.parse_query(ask("web")))  # type: ignore[arg-type]
    assert dnswire.parse_query(reply) is None
    assert dnswire.parse_query(b"\x00\x01") is None
    notify = bytearray(ask("web"))
    notify[2] |= 0x20  # opcode 4
    with pytest.raises(dnswire.WireError) as caught:
        dnswire.parse_query(bytes(notify))
    assert caught.value.rcode == dnswire.NOTIMP
    error = dnswire.error_reply(bytes(notify), caught.value.rcode)
    assert error is not None
    assert dnswire.rcode_of(error) == dnswire.NOTIMP
    with pytest.raises(dnswire.WireError):
        dnswire.parse_query(ask("web")[:-3])  # the question cut short


def test_compressed_names_are_followed_and_loops_refused() -> None:
    packet = b"\x00" * 12 + b"\x03web\x04net1\x00" + b"\x03api\xc0\x10"
    assert dnswire.read_name(packet, 22) == ("api.net1", 28)
    with pytest.raises(dnswire.WireError):
        dnswire.read_name(b"\x00" * 12 + b"\xc0\x0c", 12)
    with pytest.raises(dnswire.WireError):
        dnswire.encode_name("x" * 64 + ".net1")


def test_a_reply_echoes_the_query_and_truncates_over_udp() -> None:
    query = dnswire.parse_query(ask("many"))
    assert query is not None
    records = [dnswire.a_record(f"10.0.{i // 250}.{i % 250 + 1}", 600) for i in range(40)]
    ident, flags, found = answers(dnswire.reply(query, answers=records, limit=512, tcp=False))
    assert ident == 0x1234
    assert flags & dnswire.QR
    assert flags & dnswire.RD
    assert flags & dnswire.RA
    assert flags & dnswire.TC
    assert 0 < len(found) < 40
    _, flags, found = answers(dnswire.reply(query, answers=records))
    assert not flags & dnswire.TC
    assert len(found) == 40
    assert dnswire.with_id(dnswire.reply(query), 7)[:2] == b"\x00\x07"


# -- names ----------------------------------------------------------------------------------
WEB = Record("net1", "web", ("www", "0123456789ab"), "10.1.0.2")
API = Record("net1", "api", ("www",), "10.1.0.3")
WEB2 = Record("net2", "web", (), "10.2.0.2")
VIEW = View(("net1", "net2"), (WEB, API, WEB2))


def test_names_aliases_and_short_ids_resolve_on_the_shared_networks() -> None:
    assert resolve(VIEW, "web") == ["10.1.0.2"]  # the first network that knows it
    assert resolve(VIEW, "WEB.") == ["10.1.0.2"]
    assert resolve(VIEW, "web.net2") == ["10.2.0.2"]
    assert resolve(VIEW, "0123456789ab") == ["10.1.0.2"]
    assert sorted(resolve(VIEW, "www")) == ["10.1.0.2", "10.1.0.3"]
    assert resolve(VIEW, "api.net2") == []
    assert resolve(View(("net2",), (WEB, API, WEB2)), "api") == []  # not on a shared network
    assert reverse(VIEW, "3.0.1.10.in-addr.arpa") == "api.net1"
    assert reverse(VIEW, "9.0.1.10.in-addr.arpa") is None


def reply_to(name: str, qtype: int, view: View = VIEW, ndots: bool = False) -> bytes | None:
    query = dnswire.parse_query(ask(name, qtype))
    assert query is not None
    return local_answer(query, view, ndots)


def test_what_is_answered_here_and_what_is_forwarded() -> None:
    assert answers(reply_to("web", TYPE_A) or b"")[2] == ["10.1.0.2"]
    assert answers(reply_to("2.0.1.10.in-addr.arpa", TYPE_PTR) or b"")[2] == ["web.net1"]
    for qtype in (TYPE_AAAA, TYPE_MX):  # known, without such records: empty, not forwarded
        known = reply_to("web", qtype) or b""
        assert dnswire.rcode_of(known) == dnswire.NOERROR
        assert answers(known)[2] == []
    assert reply_to("example.org", TYPE_A) is None
    assert reply_to("nothere", TYPE_A) is None
    assert reply_to("1.1.1.1.in-addr.arpa", TYPE_PTR) is None
    single = reply_to("nothere", TYPE_A, ndots=True) or b""  # the user set ndots
    assert dnswire.rcode_of(single) == dnswire.NOERROR
    assert answers(single)[2] == []
    assert reply_to("example.org", TYPE_A, ndots=True) is None
    inside = reply_to("example.org", TYPE_A, View(("net1",), (WEB,), internal_only=True))
    assert inside is not None
    assert dnswire.rcode_of(inside) == dnswire.SERVFAIL


def test_the_view_holds_the_user_networks_of_the_asking_container() -> None:
    nets = {
        "b": Network("b", "bridge", "bridge"),
        "u": Network("u", "net1", "bridge"),
        "i": Network("i", "hidden", "bridge", internal=True),
    }
    eps = {
        "1": Endpoint("1", "b", "c1" * 32, "one", address="172.17.0.2/16"),
        "2": Endpoint("2", "u", "c1" * 32, "one", address="10.1.0.2/24", aliases=["uno"]),
        "3": Endpoint("3", "u", "c2" * 32, "two", address="10.1.0.3/24"),
        "4": Endpoint("4", "b", "c3" * 32, "three", address="172.17.0.4/16"),
        "5": Endpoint("5", "i", "c4" * 32, "four", address="10.9.0.2/24"),
    }
    ctl: Any = SimpleNamespace(endpoints=eps, networks_by_id=nets)
    view = view_of(ctl, "c1" * 32)
    assert view.networks == ("net1",)
    assert {r.name for r in view.records} == {"one", "two"}
    assert resolve(view, "uno") == ["10.1.0.2"]
    assert resolve(view, "c2c2c2c2c2c2") == ["10.1.0.3"]
    assert not view.internal_only
    assert view_of(ctl, "c4" * 32).internal_only
    assert view_of(ctl, "c3" * 32) == View((), (), False)


# -- resolv.conf ----------------------------------------------------------------------------
HOST = "search corp.test\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver fd00::1\n"


def test_resolv_conf_names_the_embedded_server_and_keeps_the_host_servers_upstream() -> None:
    conf = embedded_resolv_conf(EtcSpec("h"), HOST)
    assert conf.text == "search corp.test\nnameserver 127.0.0.11\noptions ndots:0\n"
    assert conf.upstreams == (("127.0.0.53", True), ("10.0.0.2", False))
    assert not conf.ndots_set
    only_v6 = embedded_resolv_conf(EtcSpec("h"), "nameserver fd00::1\n")
    assert only_v6.upstreams == (("8.8.8.8", False), ("8.8.4.4", False))


def test_dns_flags_go_upstream_and_a_chosen_ndots_stays() -> None:
    spec = EtcSpec("h", dns=("10.9.9.9", "fd00::9"), dns_options=("ndots:2", "rotate"))
    conf = embedded_resolv_conf(spec, HOST)
    assert conf.text == (
        "search corp.test\nnameserver 127.0.0.11\nnameserver fd00::9\noptions ndots:2 rotate\n"
    )
    assert conf.upstreams == (("10.9.9.9", False),)
    assert conf.ndots_set
    daemon = embedded_resolv_conf(EtcSpec("h", daemon_dns=("10.8.8.8",)), HOST)
    assert daemon.upstreams == (("10.8.8.8", False),)
    with pytest.raises(ConfigError, match="ndots"):
        embedded_resolv_conf(EtcSpec("h", dns_options=("ndots:-1",)), HOST)


# -- the server, as root ---------------------------------------------------------------------
@pytest.fixture
def scratch() -> Iterator[str]:
    """A namespace with lo up, holding the upstreams' addresses too."""
    name = f"cts-hdns-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for cmd in (
            "link set lo up",
            "addr add 192.0.2.53/32 dev lo",
            "addr add 192.0.2.54/32 dev lo",
        ):
            subprocess.run(["ip", "-n", name, *cmd.split()], check=True)
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def netns_socket(path: str, kind: int) -> socket.socket:
    from pyroute2 import netns as pr_netns

    made: socket.socket = pr_netns.create_socket(path, socket.AF_INET, kind, 0, flags=0)
    made.settimeout(3)
    return made


class Upstream:
    """A DNS server at `address`:53 in the namespace, answering every query with `rcode`
    and one A record 192.0.2.99 (over UDP and TCP)."""

    def __init__(self, path: str, address: str, rcode: int) -> None:
        self.rcode = rcode
        self.udp = netns_socket(path, socket.SOCK_DGRAM)
        self.udp.bind((address, 53))
        self.tcp = netns_socket(path, socket.SOCK_STREAM)
        self.tcp.bind((address, 53))
        self.tcp.listen(4)
        self.seen: list[int] = []  # ids received
        for target in (self._serve_udp, self._serve_tcp):
            threading.Thread(target=target, daemon=True).start()

    def answer(self, packet: bytes) -> bytes:
        self.seen.append(dnswire.packet_id(packet))
        query = dnswire.parse_query(packet)
        assert query is not None
        records = [dnswire.a_record("192.0.2.99", dnsnames.TTL)] if not self.rcode else []
        return dnswire.reply(query, self.rcode, records)

    def _serve_udp(self) -> None:
        while True:
            try:
                packet, source = self.udp.recvfrom(4096)
            except OSError:
                return
            self.udp.sendto(self.answer(packet), source)

    def _serve_tcp(self) -> None:
        while True:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            with conn:
                size = struct.unpack("!H", conn.recv(2))[0]
                reply = self.answer(conn.recv(size))
                conn.sendall(struct.pack("!H", len(reply)) + reply)

    def close(self) -> None:
        for sock in (self.udp, self.tcp):
            with contextlib.suppress(OSError):  # ENOTCONN for UDP, woken all the same
                sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked on it
            sock.close()


def udp_ask(path: str, packet: bytes, timeout: float = 3.0) -> bytes:
    with netns_socket(path, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, (dns.ADDRESS, 53))
        return sock.recv(4096)


def tcp_ask(path: str, packet: bytes) -> bytes:
    with netns_socket(path, socket.SOCK_STREAM) as sock:
        sock.connect((dns.ADDRESS, 53))
        sock.sendall(struct.pack("!H", len(packet)) + packet)
        size = struct.unpack("!H", sock.recv(2))[0]
        data = b""
        while len(data) < size:
            data += sock.recv(size - len(data))
        return data


@root_only
def test_the_server_answers_in_the_namespace_and_forwards_the_rest(scratch: str) -> None:
    failing = Upstream(scratch, "192.0.2.54", dnswire.SERVFAIL)
    working = Upstream(scratch, "192.0.2.53", dnswire.NOERROR)
    server = dns.DnsServer(lambda cid: VIEW if cid == "c1" else View())
    try:
        server.serve(scratch, "c1", [("192.0.2.54", False), ("192.0.2.53", False)])
        assert server.serving(scratch)
        assert answers(udp_ask(scratch, ask("web", ident=1)))[::2] == (1, ["10.1.0.2"])
        aaaa = udp_ask(scratch, ask("web", TYPE_AAAA, ident=2))
        assert answers(aaaa)[::2] == (2, [])
        assert dnswire.rcode_of(aaaa) == dnswire.NOERROR
        assert answers(tcp_ask(scratch, ask("api.net1", ident=3)))[::2] == (3, ["10.1.0.3"])
        # Not ours: the first upstream fails, the second answers; the client's id comes back.
        assert answers(udp_ask(scratch, ask("example.org", ident=4)))[::2] == (4, ["192.0.2.99"])
        assert len(failing.seen) == 1
        assert len(working.seen) == 1
        assert working.seen[0] != 4, "the id sent upstream is the server's own"
        assert answers(tcp_ask(scratch, ask("example.org", ident=5)))[::2] == (5, ["192.0.2.99"])
        # Only failing upstreams: the last one's reply is relayed.
        server.serve(scratch, "c1", [("192.0.2.54", False)])
        failed = udp_ask(scratch, ask("example.org", ident=6))
        assert dnswire.rcode_of(failed) == dnswire.SERVFAIL
        assert answers(failed)[0] == 6
        server.stop(scratch)
        assert not server.serving(scratch)
        with netns_socket(scratch, socket.SOCK_DGRAM) as sock:
            sock.bind((dns.ADDRESS, 53))  # the server's sockets are gone
    finally:
        server.close()
        failing.close()
        working.close()


@root_only
def test_a_silent_upstream_is_given_up_for_the_next(
    scratch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dns, "UPSTREAM_TIMEOUT", 0.3)
    silent = netns_socket(scratch, socket.SOCK_DGRAM)
    silent.bind(("192.0.2.54", 53))
    working = Upstream(scratch, "192.0.2.53", dnswire.NOERROR)
    server = dns.DnsServer(lambda cid: View())
    try:
        server.serve(scratch, "c1", [("192.0.2.54", False), ("192.0.2.53", False)])
        assert answers(udp_ask(scratch, ask("example.org", ident=9)))[::2] == (9, ["192.0.2.99"])
        server.serve(scratch, "c1", [("192.0.2.54", False)])
        with pytest.raises(TimeoutError):  # every upstream timed out: no reply, as Docker
            udp_ask(scratch, ask("example.org", ident=10), timeout=1.0)
    finally:
        server.close()
        silent.close()
        working.close()


def test_a_sandbox_that_cannot_be_served_is_named_and_the_thread_ends_at_close() -> None:
    server = dns.DnsServer(lambda cid: View())
    with pytest.raises(RefError, match="/nonexistent/netns"):
        server.serve("/nonexistent/netns", "c1", [])
    assert not server.serving("/nonexistent/netns")
    server.close()
    assert not any(t.name == "refd-dns" for t in threading.enumerate())
