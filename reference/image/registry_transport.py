"""HTTP(S) to a registry the way Docker 20.10 does it: endpoints, sessions, Go-worded errors.

A registry is tried over HTTPS with verification (system roots plus every `*.crt` in
`<certs_dir>/<host[:port]>/`, read again for every pull or push, so a CA dropped there needs no
restart). An insecure registry is tried over HTTPS *without* verification, then over plain HTTP
(`lookupV2Endpoints`). Errors read like Go's net/http ones (`Get "https://H:P/v2/": ...`),
because users and tests compare them with Docker's; the TLS half is in registry_tls. Also here:
registry error bodies as Docker words them, and the blob streams of a pull (verified) and of a
push (reporting progress).
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import logging
import os
import socket
import ssl
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from reference.errors import RefError
from reference.image.registry_ref import InsecureRegistries, Resolver, resolve_host, split_domain
from reference.image.registry_tls import BLOCK, GoError, TLSSocket, tls_context

log = logging.getLogger(__name__)
TIMEOUT = 30.0  # Go's registry dialer: 30 s to connect (and here also per read)
MAX_REDIRECTS = 10  # Go's http.Client default
PROGRESS_STEP = 512 * 1024  # bytes between two progress reports of a blob
Progress = Callable[[dict[str, Any]], None]


class Body(Protocol):
    """A request body streamed from a file: read in blocks, rewound to replay a request."""

    def read(self, count: int = -1, /) -> bytes: ...
    def tell(self) -> int: ...
    def seek(self, offset: int, /) -> int: ...


class RegistryError(RefError):
    """A registry could not be reached or answered with an error (the text reads like Docker's)."""


class TransportError(RegistryError):
    """The request never got an HTTP answer (connect, TLS, I/O); worth trying the next endpoint."""


@dataclass(frozen=True)
class Endpoint:
    scheme: str  # "https" or "http"
    domain: str  # host[:port] as in the reference: the URL host and the certs.d directory name
    context: ssl.SSLContext  # for https (here or after a redirect); CERT_NONE if insecure

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.domain}"


def lookup_endpoints(
    domain: str, insecure: InsecureRegistries, certs_dir: Path, resolve: Resolver = resolve_host
) -> list[Endpoint]:
    """The endpoints to try for registry `domain`, in order."""
    secure = not insecure.is_insecure(domain, resolve)
    context = tls_context(certs_dir / domain, verify=secure)
    https = Endpoint("https", domain, context)
    return [https] if secure else [https, Endpoint("http", domain, context)]


def _dial(host: str, port: int, timeout: float) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise GoError(f"dial tcp: lookup {host}: no such host") from None
    error = "no addresses"
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError as e:
            sock.close()
            where = (
                f"[{address[0]}]:{port}" if family == socket.AF_INET6 else f"{address[0]}:{port}"
            )
            error = f"dial tcp {where}: " + (
                "i/o timeout" if isinstance(e, TimeoutError) else f"connect: {_strerror(e)}"
            )
            continue
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # peer's delayed ACK add ~40 ms to each request (http.client's connect does the same).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise GoError(error)


def _strerror(e: OSError) -> str:
    """Go's lower-case errno texts ("connection refused")."""
    text = os.strerror(e.errno) if e.errno else str(e)
    return text[:1].lower() + text[1:]


class _Connection(http.client.HTTPConnection):
    """One keep-alive connection to scheme://host:port; TLS through TLSSocket."""

    def __init__(self, scheme: str, host: str, port: int, context: ssl.SSLContext, timeout: float):
        super().__init__(host, port, timeout=timeout, blocksize=BLOCK)
        self._scheme, self._context = scheme, context

    def connect(self) -> None:
        sock = _dial(self.host, self.port, self.timeout or TIMEOUT)
        if self._scheme == "http":
            self.sock = sock
            return
        tls = TLSSocket(sock, self._context, self.host)
        try:
            tls.handshake(self.host, self._context.verify_mode != ssl.CERT_NONE)
        except BaseException:
            sock.close()
            raise
        self.sock = tls


class Response:
    """An HTTP answer; reads translate I/O errors into Go-worded TransportErrors."""

    def __init__(self, method: str, url: str, raw: http.client.HTTPResponse) -> None:
        self.method, self.url, self.raw = method, url, raw
        self.status = raw.status

    def header(self, name: str) -> str | None:
        return self.raw.getheader(name)

    def read(self) -> bytes:
        try:
            return self.raw.read()
        except (OSError, http.client.HTTPException, GoError) as e:
            raise _transport_error(self.method, self.url, e) from None

    def chunks(self) -> Iterator[bytes]:
        while True:
            try:
                chunk = self.raw.read(BLOCK)
            except (OSError, http.client.HTTPException, GoError) as e:
                raise _transport_error(self.method, self.url, e) from None
            if not chunk:
                return
            yield chunk


def _transport_error(method: str, url: str, e: BaseException) -> TransportError:
    if isinstance(e, GoError):
        text = str(e)
    elif isinstance(e, http.client.IncompleteRead):
        text = "unexpected EOF"
    elif isinstance(e, http.client.RemoteDisconnected):
        text = "EOF"
    elif isinstance(e, TimeoutError):
        text = "net/http: timeout awaiting response headers"
    elif isinstance(e, OSError):
        text = _strerror(e)
    else:
        text = f"net/http: {e}"
    return TransportError(f"{_op(method, url)}: {text}")


def _op(method: str, url: str) -> str:
    """The head of Go's url.Error: the method capitalised ("Get"), the URL quoted."""
    return f'{method[:1]}{method[1:].lower()} "{url}"'


class Session:
    """Requests against one endpoint; absolute URLs (upload locations, redirects) may name
    another origin, which gets its own connection with the same TLS settings (as in Go)."""

    def __init__(self, endpoint: Endpoint, timeout: float = TIMEOUT) -> None:
        self.endpoint = endpoint
        self._timeout = timeout
        self._connections: dict[tuple[str, str], _Connection] = {}

    def url(self, path: str) -> str:
        """An absolute URL for a path or a (possibly relative) Location header."""
        return urllib.parse.urljoin(self.endpoint.base + "/", path)

    def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | Body | None = None,
    ) -> Response:
        """Send the request; follow redirects for GET and HEAD. Non-2xx answers are returned."""
        url = self.url(path)
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, dict(headers or {}), body)
            location = response.header("Location")
            if method not in ("GET", "HEAD") or response.status not in (301, 302, 303, 307, 308):
                return response
            response.read()
            if not location:
                return response
            url = urllib.parse.urljoin(url, location)
        raise TransportError(f"{_op(method, url)}: stopped after {MAX_REDIRECTS} redirects")

    def _send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | Body | None
    ) -> Response:
        parts = urllib.parse.urlsplit(url)
        key = (parts.scheme, parts.netloc)
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        start = None if body is None or isinstance(body, bytes) else body.tell()
        for attempt in (1, 2):
            connection = self._connections.get(key)
            reused = connection is not None and connection.sock is not None
            if connection is None:
                connection = self._connect(parts)
                self._connections[key] = connection
            try:
                connection.request(method, target, body=body, headers=headers)
                raw = connection.getresponse()
            except (OSError, http.client.HTTPException, GoError) as e:
                connection.close()
                del self._connections[key]
                # A kept-alive connection the server has closed meanwhile: retry once, with a
                # streamed body rewound (every body here is bytes or a Body).
                if attempt == 1 and reused and not isinstance(e, GoError):
                    if start is not None:
                        body.seek(start)  # type: ignore[union-attr]
                    continue
                raise _transport_error(method, url, e) from None
            return Response(method, url, raw)
        raise AssertionError("unreachable")

    def _connect(self, parts: urllib.parse.SplitResult) -> _Connection:
        if parts.scheme not in ("http", "https"):
            raise RegistryError(f"unsupported URL scheme {parts.scheme!r}", obj=parts.geturl())
        host, port = split_domain(parts.netloc)
        default = 443 if parts.scheme == "https" else 80
        context = self.endpoint.context
        return _Connection(parts.scheme, host, port or default, context, self._timeout)

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()


def errcode_text(body: bytes) -> tuple[str, str] | None:
    """(code, "code words: message") of a registry's JSON error body (Docker uses the first)."""
    try:
        errors = json.loads(body)["errors"]
        code, message = str(errors[0]["code"]), str(errors[0].get("message", ""))
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return code, f"{code.lower().replace('_', ' ')}: {message}"


def status_error(response: Response, body: bytes) -> RegistryError:
    parsed = errcode_text(body)
    if parsed is not None:
        return RegistryError(parsed[1])
    reason = response.raw.reason
    return RegistryError(f"received unexpected HTTP status: {response.status} {reason}")


class Verifying(io.RawIOBase):
    """A blob download as a stream that checks size and digest when it ends: the store reads
    it to the end, and an error raised then leaves nothing in the store."""

    def __init__(self, chunks: Iterator[bytes], digest: str, size: int, tick: Progress) -> None:
        self._chunks, self._digest, self._size, self._tick = chunks, digest, size, tick
        self._hash = hashlib.sha256()
        self._pending = memoryview(b"")
        self._done = 0
        self._reported = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            chunk = next(self._chunks, b"")
            if not chunk:
                self._finish()
                return 0
            self._hash.update(chunk)
            self._done += len(chunk)
            if self._done > self._size:
                message = f"blob larger than its descriptor ({self._size} bytes)"
                raise RegistryError(message, obj=self._digest)
            if self._done - self._reported >= PROGRESS_STEP:
                self._reported = self._done
                self._tick({"current": self._done, "total": self._size})
            self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def _finish(self) -> None:
        actual = "sha256:" + self._hash.hexdigest()
        if self._done != self._size or actual != self._digest:
            raise RegistryError(
                f"filesystem layer verification failed for digest {self._digest} "
                f"(got {actual}, {self._done} of {self._size} bytes)"
            )


class Progressing:
    """A blob being uploaded, as a file for http.client's body, reporting how far it got.
    `seek` lets the session replay it on a fresh connection."""

    def __init__(self, source: BinaryIO, size: int, tick: Progress) -> None:
        self._source, self._size, self._tick = source, size, tick
        self._done = self._reported = 0

    def read(self, count: int = -1) -> bytes:
        data = self._source.read(count)
        self._done += len(data)
        if self._done - self._reported >= PROGRESS_STEP or (data and self._done >= self._size):
            self._reported = self._done
            self._tick({"current": self._done, "total": self._size})
        return data

    def tell(self) -> int:
        return self._source.tell()

    def seek(self, offset: int) -> int:
        self._done = self._reported = offset
        return self._source.seek(offset)
