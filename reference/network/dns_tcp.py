"""DNS over TCP for the embedded DNS server (reference.network.dns): messages framed by a
two-byte length (RFC 1035 4.2.2), on non-blocking sockets driven by the server's selector.

    TcpClient    a container's connection to 127.0.0.11:53: queries in, replies out
    TcpUpstream  one query to an upstream server: connect, send, read the reply

A read or write that would block raises BlockingIOError, which the server takes as "not
yet"; any other OSError means the connection is done for.
"""

from __future__ import annotations

import errno
import os
import socket
import time

from reference.network import dnswire

CLIENT_IDLE = 10.0  # seconds a client connection may stay silent
LENGTH = 2


def _frame(packet: bytes) -> bytes:
    return len(packet).to_bytes(LENGTH, "big") + packet


def _unframe(buffer: bytearray) -> bytes | None:
    """The first complete message in `buffer` (removed from it), or None."""
    if len(buffer) < LENGTH:
        return None
    size = int.from_bytes(buffer[:LENGTH], "big")
    if len(buffer) < LENGTH + size:
        return None
    message = bytes(buffer[LENGTH : LENGTH + size])
    del buffer[: LENGTH + size]
    return message


class TcpClient:
    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.deadline = time.monotonic() + CLIENT_IDLE
        self.closed = False  # the client closed its side: nothing more to read

    @property
    def waiting(self) -> bool:
        """Replies queued that the socket did not take yet."""
        return bool(self.outbox)

    def receive(self) -> list[bytes]:
        """The queries complete so far."""
        chunk = self.sock.recv(65536)
        if not chunk:
            self.closed = True
            return []
        self.deadline = time.monotonic() + CLIENT_IDLE
        self.inbox += chunk
        messages = []
        while (message := _unframe(self.inbox)) is not None:
            if len(message) < dnswire.HEADER.size:
                raise dnswire.WireError("a runt message over TCP")
            messages.append(message)
        return messages

    def queue(self, packet: bytes) -> None:
        self.outbox += _frame(packet)
        self.flush()

    def flush(self) -> None:
        while self.outbox:
            try:
                sent = self.sock.send(self.outbox)
            except BlockingIOError:
                return
            del self.outbox[:sent]
        self.deadline = time.monotonic() + CLIENT_IDLE

    def close(self) -> None:
        self.sock.close()


class TcpUpstream:
    def __init__(self, sock: socket.socket, packet: bytes) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.outbox = bytearray(_frame(packet))
        self.inbox = bytearray()
        self.sent = False  # the whole query is out; now the reply is awaited

    def connect(self, address: tuple[str, int]) -> None:
        code = self.sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS):
            raise OSError(code, os.strerror(code))

    def step(self) -> bytes | None:
        """Go on when the socket is ready: the reply once it is complete."""
        if not self.sent:
            code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
            sent = self.sock.send(self.outbox)
            del self.outbox[:sent]
            self.sent = not self.outbox
            return None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError(errno.ECONNRESET, "the upstream closed the connection")
        self.inbox += chunk
        return _unframe(self.inbox)

    def close(self) -> None:
        self.sock.close()
