"""refctl's Engine API client: HTTP/1.1 over the daemon's unix socket.

A small HTTP client of its own rather than http.client, whose import (email parsing and all)
costs ~60 ms, which every refctl call would pay. For the same reason it stands on the C
modules alone: `_socket` (the `socket` module adds selectors and enum), `_json` through
reference.oci.fastjson (`json` adds re and enum) and a query encoder of its own
(`urllib.parse` adds ipaddress, re and more): ~30 ms less per refctl call on this machine.
One connection per request: bodies are sent with Content-Length or chunked; answers are read
by Content-Length, chunked coding, or until the daemon closes (streams, and the raw stream
after a 101 upgrade).

-H / $DOCKER_HOST name the socket as `unix:///path`; refctl speaks API 1.41 on /v1.41/...
paths. A non-2xx answer becomes ApiError with the daemon's {"message"}.
"""

from __future__ import annotations

import _socket
import io
import os

from reference.oci import fastjson

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; typing costs ms to import
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from typing import Any, BinaryIO

API = "/v1.41"
DEFAULT_HOST = "unix:///var/run/refd.sock"
CHUNK = 1 << 16


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ConnectError(Exception):
    pass


def host_from(flag: str | None) -> str:
    host = flag or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    scheme, sep, rest = host.partition("://")
    if not sep or scheme != "unix" or not rest:
        raise ConnectError(f"unsupported host {host!r}: refctl speaks to unix:///path sockets")
    return rest


# What urllib.parse.quote_plus leaves as it is; a space becomes "+", every other byte of the
# UTF-8 encoding %XX.
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote_plus(text: str) -> str:
    return "".join(
        chr(b) if b in _UNRESERVED else "+" if b == 0x20 else f"%{b:02X}" for b in text.encode()
    )


def query_string(query: Mapping[str, Any] | None) -> str:
    if not query:
        return ""
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            text = ("1" if item else "0") if isinstance(item, bool) else str(item)
            pairs.append((key, text))
    return "?" + "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in pairs) if pairs else ""


def loads(data: bytes) -> Any:
    """json.loads for the daemon's answers (UTF-8, as the Engine API sends them)."""
    return fastjson.loads(data.decode())


class _SocketIO(io.RawIOBase):
    """socket.makefile("rb")'s raw layer for a `_socket` socket."""

    def __init__(self, sock: _socket.socket) -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(buffer)


class Response:
    """An answer whose body is read on demand (see module doc for the framings)."""

    def __init__(self, sock: _socket.socket, method: str) -> None:
        self._sock = sock
        self._file = io.BufferedReader(_SocketIO(sock))
        status_line = self._file.readline(65537).decode("latin-1")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[1].isdigit():
            self.close()
            raise ConnectError(f"malformed answer from the daemon: {status_line!r}")
        self.status = int(parts[1])
        self.headers: dict[str, str] = {}
        while True:
            line = self._file.readline(65537).decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            key, _, value = line.partition(":")
            self.headers[key.strip().lower()] = value.strip()
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        no_body = method == "HEAD" or self.status in (204, 304)
        self._left: int | None = 0 if no_body else (int(length) if length is not None else None)
        self._chunk_left = 0
        self._done = self._left == 0 and not self._chunked

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def _raw(self, size: int) -> bytes:
        if self._done:
            return b""
        if self._chunked:
            if self._chunk_left == 0:
                line = self._file.readline(1024)
                self._chunk_left = int(line.split(b";")[0].strip() or b"0", 16)
                if self._chunk_left == 0:
                    self._done = True
                    return b""
            data = self._file.read(min(size, self._chunk_left))
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                self._file.readline(16)
            if not data:
                self._done = True
            return data
        if self._left is not None:
            data = self._file.read(min(size, self._left))
            self._left -= len(data)
            self._done = self._left == 0 or not data
            return data
        data = self._file.read1(size) if size else b""
        self._done = not data
        return data

    def read_exact(self, size: int) -> bytes:
        parts, left = [], size
        while left:
            data = self._raw(left)
            if not data:
                break
            parts.append(data)
            left -= len(data)
        return b"".join(parts)

    def read(self) -> bytes:
        try:
            return b"".join(iter(lambda: self._raw(CHUNK), b""))
        finally:
            self.close()

    def json(self) -> Any:
        data = self.read()
        return loads(data) if data.strip() else None

    def lines(self) -> Iterator[Any]:
        """JSON messages, one per line (pull, push, events, load)."""
        pending = b""
        try:
            while True:
                data = self._raw(CHUNK)
                if not data:
                    break
                pending += data
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    if line.strip():
                        yield loads(line)
            if pending.strip():
                yield loads(pending)
        finally:
            self.close()

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """The multiplexed stream: (1 stdout | 2 stderr, data)."""
        try:
            while True:
                header = self.read_exact(8)
                if len(header) < 8:
                    return
                yield header[0], self.read_exact(int.from_bytes(header[4:8], "big"))
        finally:
            self.close()

    def chunks(self) -> Iterator[bytes]:
        try:
            while data := self._raw(CHUNK):
                yield data
        finally:
            self.close()


class Client:
    def __init__(self, socket_path: str, timeout: float | None = None) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def _connect(self) -> _socket.socket:
        sock = _socket.socket(
            _socket.AF_UNIX, _socket.SOCK_STREAM
        )  # non-inheritable, as socket.socket
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError as e:
            sock.close()
            raise ConnectError(
                f"Cannot connect to the refd daemon at unix://{self.socket_path}. "
                f"Is the refd daemon running? ({e.strerror})"
            ) from None
        return sock

    def request(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        *,
        data: bytes | BinaryIO | None = None,
        length: int | None = None,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        ok: Sequence[int] = (200, 201, 204, 304),
    ) -> Response:
        lines = [f"{method} {API}{path}{query_string(query)} HTTP/1.1", "Host: localhost"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        payload: bytes | None = None
        stream: BinaryIO | None = None
        if body is not None:
            payload = fastjson.dumps(body).encode()
        elif isinstance(data, bytes):
            payload = data
        elif data is not None:
            stream = data
        if payload is not None or stream is not None:
            lines.append(f"Content-Type: {content_type}")
        if payload is not None:
            lines.append(f"Content-Length: {len(payload)}")
        elif stream is not None:
            lines.append(
                f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
            )
        else:
            lines.append("Content-Length: 0")
        sock = self._connect()
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (payload or b""))
            if stream is not None:
                while chunk := stream.read(CHUNK):
                    sock.sendall(
                        chunk if length is not None else b"%x\r\n%s\r\n" % (len(chunk), chunk)
                    )
                if length is None:
                    sock.sendall(b"0\r\n\r\n")
            response = Response(sock, method)
        except OSError as e:
            sock.close()
            raise ConnectError(f"error during connect to unix://{self.socket_path}: {e}") from None
        if response.status not in ok:
            raw = response.read()
            try:
                message = loads(raw).get("message", "")
            except (ValueError, AttributeError):
                message = raw.decode(errors="replace").strip()
            raise ApiError(response.status, message or f"HTTP {response.status}")
        return response

    def get(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, query).json()

    def post(self, path: str, query: Mapping[str, Any] | None = None, body: Any = None) -> Any:
        return self.request("POST", path, query, body).json()

    def hijack(self, path: str, query: Mapping[str, Any] | None, body: Any = None) -> Response:
        """POST with `Upgrade: tcp` (attach, exec start); the multiplexed stream follows."""
        headers = {"Connection": "Upgrade", "Upgrade": "tcp"}
        return self.request("POST", path, query, body, headers=headers, ok=(101, 200))
