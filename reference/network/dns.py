"""The embedded DNS server: Docker's resolver at 127.0.0.11 in the sandbox of every container
on a user-defined network (libnetwork resolver.go, Docker 20.10).

    server = DnsServer(view)          # view(container_id) -> dnsnames.View
    server.serve(key, container_id, [("10.0.0.53", False)], ndots_set=False)
    server.stop(key)                  # before the sandbox goes
    server.close()                    # refd shuts down

Each served sandbox has a UDP and a TCP socket bound at 127.0.0.11:53 inside it (Docker binds
random ports and DNATs port 53 to them; binding 53 itself needs no firewall rules) and a UDP
socket there to ask the upstreams from. Names of the networks' containers are answered here
(reference.network.dnsnames); the rest goes to the sandbox's upstreams in order, over the
protocol the client used, from the sandbox's namespace, or from refd's own for a loopback
resolver of the host ("host_side"): up to three of them, 4 s each, the next one after a
failure, SERVFAIL, REFUSED or a NXDOMAIN that is not authoritative. The reply relayed is the
last one received; with none (every upstream timed out, or there is none) the client gets no
reply, as from Docker.

One thread serves every sandbox (reference.network.dns_loop): a container costs three
sockets, no thread.
"""

from __future__ import annotations

import contextlib
import secrets
import selectors
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reference.errors import RefError
from reference.network import dnsnames, dnswire
from reference.network.dns_loop import SelectorThread, log
from reference.network.dns_tcp import TcpClient, TcpUpstream

ADDRESS = "127.0.0.11"
PORT = 53
MAX_UPSTREAMS = 3  # Docker's maxExtDNS
UPSTREAM_TIMEOUT = 4.0  # seconds per upstream (extIOTimeout)
MAX_FORWARDS = 100  # queries one sandbox may have out at a time (maxConcurrent)
MAX_TCP_CLIENTS = 16  # connections one sandbox may hold open
BURST = 64  # datagrams read per wake-up from one socket: one sandbox cannot starve the others
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE

View = Callable[[str], dnsnames.View]
Reply = Callable[[bytes], None]


@dataclass(frozen=True)
class Upstream:
    address: str
    host_side: bool = False  # asked from refd's namespace (a loopback resolver of the host)


@dataclass(eq=False)
class Sandbox:
    key: str
    container_id: str
    upstreams: tuple[Upstream, ...]
    ndots_set: bool
    udp: socket.socket
    tcp: socket.socket
    out: socket.socket  # asks the upstreams, from inside the sandbox
    pending: dict[int, Forward] = field(default_factory=dict)  # by the id sent on `out`
    forwards: set[Forward] = field(default_factory=set)
    clients: set[TcpClient] = field(default_factory=set)


@dataclass(eq=False)
class Forward:
    """A query on its way through the upstreams."""

    sandbox: Sandbox
    packet: bytes  # as the client sent it
    reply_to: Reply
    tcp: bool
    index: int = -1  # the upstream asked now
    last: bytes | None = None  # the last reply received
    deadline: float = 0.0
    source: tuple[str, int] = ("", 0)  # where the reply must come from
    wire_id: int = -1  # the id sent over UDP
    table: dict[int, Forward] | None = None  # where wire_id is registered
    conn: TcpUpstream | None = None


class DnsServer(SelectorThread):
    def __init__(self, view: View) -> None:
        super().__init__("refd-dns")
        self._view = view
        self._sandboxes: dict[str, Sandbox] = {}  # the loop thread's; others only read keys
        self._host_out: socket.socket | None = None  # asks host-side upstreams
        self._host_pending: dict[int, Forward] = {}

    # -- any thread ----------------------------------------------------------------------
    def serve(
        self,
        key: str,
        container_id: str,
        upstreams: Sequence[tuple[str, bool]],
        ndots_set: bool = False,
    ) -> None:
        """Serve the sandbox `key` (a netns path) for the container; again: new settings."""
        ups = tuple(Upstream(a, h) for a, h in list(upstreams)[:MAX_UPSTREAMS])
        self.call(lambda: self._open(key, container_id, ups, ndots_set))

    def stop(self, key: str) -> None:
        """Stop serving `key` (its sockets would keep the namespace alive). Idempotent."""
        if key in self._sandboxes:
            self.call(lambda: self._close(key))

    def serving(self, key: str) -> bool:
        return key in self._sandboxes

    def close(self) -> None:
        self.stop_thread()

    # -- the loop thread: sandboxes ------------------------------------------------------
    def shutdown(self) -> None:
        for key in list(self._sandboxes):
            self._close(key)
        if self._host_out is not None:
            self.unwatch(self._host_out)
            self._host_out = None
        self.running = False

    def timeout(self) -> float | None:
        deadlines = [f.deadline for s in self._sandboxes.values() for f in s.forwards]
        deadlines += [c.deadline for s in self._sandboxes.values() for c in s.clients]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def expire(self, now: float) -> None:
        for sandbox in list(self._sandboxes.values()):
            for forward in [f for f in sandbox.forwards if f.deadline <= now]:
                forward.last = None  # a read that timed out leaves no reply (as in Docker)
                self._advance(forward)
            for client in [c for c in sandbox.clients if c.deadline <= now]:
                self._drop_client(sandbox, client)

    def _open(self, key: str, cid: str, ups: tuple[Upstream, ...], ndots_set: bool) -> None:
        self._close(key)
        made: list[socket.socket] = []
        try:
            with self.inside(key):
                udp = _socket(made, socket.SOCK_DGRAM)
                udp.bind((ADDRESS, PORT))
                tcp = _socket(made, socket.SOCK_STREAM)
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((ADDRESS, PORT))
                tcp.listen(MAX_TCP_CLIENTS)
                out = _socket(made, socket.SOCK_DGRAM)
        except BaseException as e:
            for sock in made:
                sock.close()
            if isinstance(e, OSError):
                raise RefError(f"cannot serve DNS at {ADDRESS}:{PORT}: {e}", obj=key) from e
            raise
        sandbox = Sandbox(key, cid, ups, ndots_set, udp, tcp, out)
        self._sandboxes[key] = sandbox
        self.watch(udp, lambda m: self._on_query(sandbox))
        self.watch(tcp, lambda m: self._on_accept(sandbox))
        self.watch(out, lambda m: self._on_reply(out, sandbox.pending))

    def _close(self, key: str) -> None:
        sandbox = self._sandboxes.pop(key, None)
        if sandbox is None:
            return
        for forward in list(sandbox.forwards):
            self._release(forward)
        for client in list(sandbox.clients):
            self._drop_client(sandbox, client)
        for sock in (sandbox.udp, sandbox.tcp, sandbox.out):
            self.unwatch(sock)

    # -- queries -------------------------------------------------------------------------
    def _on_query(self, sandbox: Sandbox) -> None:
        for _ in range(BURST):
            try:
                packet, client = sandbox.udp.recvfrom(65535)
            except OSError:  # BlockingIOError: all read
                return
            self.query(sandbox, packet, _udp_reply(sandbox.udp, client), tcp=False)

    def query(self, sandbox: Sandbox, packet: bytes, reply_to: Reply, tcp: bool) -> None:
        try:
            query = dnswire.parse_query(packet)
        except dnswire.WireError as e:
            error = dnswire.error_reply(packet, e.rcode)
            if error is not None:
                reply_to(error)
            return
        if query is None:
            return
        view = self._view(sandbox.container_id)
        answer = dnsnames.local_answer(query, view, sandbox.ndots_set, tcp)
        if answer is not None:
            reply_to(answer)
        elif len(sandbox.forwards) < MAX_FORWARDS:
            forward = Forward(sandbox, packet, reply_to, tcp)
            sandbox.forwards.add(forward)
            self._advance(forward)

    def _advance(self, forward: Forward) -> None:
        """Ask the next upstream; after the last, relay the last reply (if any)."""
        self._release(forward)
        sandbox = forward.sandbox
        while forward.index + 1 < len(sandbox.upstreams):
            forward.index += 1
            upstream = sandbox.upstreams[forward.index]
            forward.deadline = time.monotonic() + UPSTREAM_TIMEOUT
            forward.source = (upstream.address, PORT)
            sandbox.forwards.add(forward)
            try:
                if forward.tcp:
                    self._ask_tcp(forward, upstream)
                else:
                    self._ask_udp(forward, upstream)
                return
            except (OSError, RefError) as e:  # e.g. no route from the sandbox: the next one
                log(f"asking {upstream.address} for {sandbox.key}: {e}")
                self._release(forward)
        if forward.last is not None:
            forward.reply_to(dnswire.with_id(forward.last, dnswire.packet_id(forward.packet)))

    def _release(self, forward: Forward) -> None:
        """Forget the query's attempt under way; it is out of the sandbox's count."""
        forward.sandbox.forwards.discard(forward)
        if forward.table is not None:
            forward.table.pop(forward.wire_id, None)
            forward.table, forward.wire_id = None, -1
        if forward.conn is not None:
            self.unwatch(forward.conn.sock)
            forward.conn = None

    def relay(self, forward: Forward, packet: bytes) -> None:
        """An upstream's reply: passed on, or the next upstream asked (Docker's rules)."""
        rcode = dnswire.rcode_of(packet)
        if rcode == dnswire.NOERROR or (
            rcode == dnswire.NXDOMAIN and dnswire.is_authoritative(packet)
        ):
            self._release(forward)
            forward.reply_to(dnswire.with_id(packet, dnswire.packet_id(forward.packet)))
            return
        forward.last = packet
        self._advance(forward)

    # -- upstreams -----------------------------------------------------------------------
    def _ask_udp(self, forward: Forward, upstream: Upstream) -> None:
        if upstream.host_side:
            sock, table = self._host_socket(), self._host_pending
        else:
            sock, table = forward.sandbox.out, forward.sandbox.pending
        wire_id = secrets.randbelow(65536)  # unguessable: a reply must come from the server
        while wire_id in table:
            wire_id = secrets.randbelow(65536)
        sock.sendto(dnswire.with_id(forward.packet, wire_id), forward.source)
        table[wire_id] = forward
        forward.table, forward.wire_id = table, wire_id

    def _host_socket(self) -> socket.socket:
        if self._host_out is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            self.watch(sock, lambda m: self._on_reply(sock, self._host_pending))
            self._host_out = sock
        return self._host_out

    def _on_reply(self, sock: socket.socket, table: dict[int, Forward]) -> None:
        for _ in range(BURST):
            try:
                packet, source = sock.recvfrom(65535)
            except BlockingIOError:
                return
            except OSError:
                continue  # an ICMP error reported on the socket: its query times out
            if len(packet) < dnswire.HEADER.size:
                continue
            forward = table.get(dnswire.packet_id(packet))
            if forward is None or tuple(source[:2]) != forward.source:
                continue  # late, or not from the server asked: ignored
            self.relay(forward, packet)

    def _ask_tcp(self, forward: Forward, upstream: Upstream) -> None:
        if upstream.host_side:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        else:
            with self.inside(forward.sandbox.key):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        conn = TcpUpstream(sock, forward.packet)
        try:
            conn.connect(forward.source)
        except OSError:
            conn.close()
            raise
        forward.conn = conn
        self.watch(sock, lambda m: self._on_upstream(forward), WRITE)

    def _on_upstream(self, forward: Forward) -> None:
        conn = forward.conn
        if conn is None:
            return
        try:
            packet = conn.step()
        except BlockingIOError:
            return
        except OSError:
            forward.last = None if conn.sent else forward.last  # a failed read: no reply
            self._advance(forward)
            return
        if packet is not None:
            self.relay(forward, packet)
        elif conn.sent:
            self.want(conn.sock, READ)

    # -- TCP clients ---------------------------------------------------------------------
    def _on_accept(self, sandbox: Sandbox) -> None:
        try:
            sock, _ = sandbox.tcp.accept()
        except OSError:
            return
        if len(sandbox.clients) >= MAX_TCP_CLIENTS:
            sock.close()
            return
        client = TcpClient(sock)
        sandbox.clients.add(client)

        def reply(data: bytes) -> None:
            if client in sandbox.clients:
                try:
                    client.queue(data)
                except OSError:
                    self._drop_client(sandbox, client)
                    return
                self._client_events(sandbox, client)

        def handle(mask: int) -> None:
            if mask & WRITE:
                client.flush()
            for message in client.receive() if mask & READ else []:
                self.query(sandbox, message, reply, tcp=True)
            self._client_events(sandbox, client)

        def guarded(mask: int) -> None:
            try:
                handle(mask)
            except BlockingIOError:
                self._client_events(sandbox, client)
            except (OSError, dnswire.WireError):
                self._drop_client(sandbox, client)

        self.watch(sock, guarded)

    def _client_events(self, sandbox: Sandbox, client: TcpClient) -> None:
        """Watch for what the connection needs next. A client that closed its side is
        dropped (DNS clients read their replies before they close)."""
        if client not in sandbox.clients:
            return
        if client.closed:
            self._drop_client(sandbox, client)
        else:
            self.want(client.sock, READ | (WRITE if client.waiting else 0))

    def _drop_client(self, sandbox: Sandbox, client: TcpClient) -> None:
        if client in sandbox.clients:
            sandbox.clients.discard(client)
            self.unwatch(client.sock)


def _udp_reply(sock: socket.socket, client: Any) -> Reply:
    def send(data: bytes) -> None:
        with contextlib.suppress(OSError):  # the client is gone, or the buffer is full:
            sock.sendto(data, client)  # as a datagram lost

    return send


def _socket(made: list[socket.socket], kind: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)  # close-on-exec: runtimes must not inherit it
    made.append(sock)
    sock.setblocking(False)
    return sock
