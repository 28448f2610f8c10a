"""The Engine API server: HTTP/1.1 over a unix socket (or TCP with TLS), one thread per
connection (socketserver.ThreadingMixIn), Docker's conventions:

* paths with or without a /vX.Y prefix; a version above ours is refused with 400 as dockerd
  refuses it; every response carries Api-Version (and Docker-Experimental, OSType);
* errors are {"message": "..."} with the status the error's kind maps to (404 not found, 409
  conflict, 400 bad parameter or malformed JSON, 304 not modified, 500 otherwise); an unknown
  path is 404 "page not found"; nothing a client sends makes the server crash;
* request bodies may be chunked (the docker CLI streams `load` and `import` that way);
  streamed responses are chunked; attach and exec start hijack the connection (101 UPGRADED
  when the client asks for `Upgrade: tcp`, else 200 and a raw stream until close).
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import socket
import socketserver
import sys
import traceback
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from reference.errors import ConfigError, ConflictError, NotFoundError, RefError, StateError

API_VERSION = "1.41"
MIN_API_VERSION = "1.12"
_VERSIONED = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def status_of(error: BaseException) -> int:
    from reference.engine.lifecycle import NotModified

    if isinstance(error, HTTPError):
        return error.status
    if isinstance(error, NotModified):
        return 304
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, (ConflictError, StateError)):
        return 409
    if isinstance(error, ConfigError):
        return 400
    return 500


class Body(io.RawIOBase):
    """The request body: Content-Length bytes, or chunked transfer coding, as a stream."""

    def __init__(self, rfile: Any, length: int | None, chunked: bool) -> None:
        self._rfile = rfile
        self._left = length if length is not None else (0 if not chunked else -1)
        self._chunked = chunked
        self._chunk_left = 0
        self._done = not chunked and not self._left

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._done:
            return 0
        view = memoryview(buffer)
        if not self._chunked:
            data = self._rfile.read(min(len(view), self._left))
            self._left -= len(data)
            if not data:
                raise HTTPError(400, "unexpected end of request body")
            self._done = self._left == 0
        else:
            if self._chunk_left == 0:
                line = self._rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    self._done = True
                    return 0
                self._chunk_left = size
            data = self._rfile.read(min(len(view), self._chunk_left))
            if not data:
                raise HTTPError(400, "unexpected end of chunked request body")
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                self._rfile.readline(16)  # the CRLF after the chunk
        view[: len(data)] = data
        return len(data)


class ChunkedWriter(io.RawIOBase):
    """A streamed response body in chunked transfer coding; close() ends it."""

    def __init__(self, wfile: Any) -> None:
        self._wfile = wfile

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        if chunk:
            self._wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self._wfile.flush()
        return len(chunk)

    def close(self) -> None:
        if not self.closed:
            try:
                self._wfile.write(b"0\r\n\r\n")
                self._wfile.flush()
            finally:
                super().close()


class Request:
    def __init__(
        self, handler: Handler, method: str, path: str, query: dict[str, list[str]]
    ) -> None:
        self.handler = handler
        self.method = method
        self.path = path
        self.query = query
        self.headers = handler.headers
        self.streaming = False  # set once a handler has sent its own headers
        self._body: Body | None = None

    # -- query --------------------------------------------------------------------------
    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.arg(name, "")
        if value == "":
            return default
        return value.lower() not in ("0", "false", "no")

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        value = self.arg(name, "")
        if value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"invalid value for {name}: {value!r}") from None

    def filters(self) -> dict[str, list[str]]:
        """`filters` as Docker encodes it: {"name": {"x": true}} or {"name": ["x"]}."""
        raw = self.arg("filters", "")
        if not raw:
            return {}
        try:
            parsed = json.loads(raw)
        except ValueError as e:
            raise ConfigError(f"invalid filters: {e}") from None
        if not isinstance(parsed, dict):
            raise ConfigError("invalid filters: expected an object")
        out: dict[str, list[str]] = {}
        for key, value in parsed.items():
            if isinstance(value, dict):
                out[key] = [k for k, on in value.items() if on]
            elif isinstance(value, list):
                out[key] = [str(v) for v in value]
            else:
                raise ConfigError(f"invalid filter {key!r}")
        return out

    # -- body ---------------------------------------------------------------------------
    def body(self) -> Body:
        if self._body is None:
            length = self.headers.get("Content-Length")
            chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
            try:
                size = int(length) if length is not None else None
            except ValueError:
                raise HTTPError(400, f"invalid Content-Length: {length!r}") from None
            self._body = Body(self.handler.rfile, size, chunked)
        return self._body

    def json(self, *, required: bool = False) -> Any:
        data = self.body().readall()
        if not data.strip():
            if required:
                raise ConfigError("invalid JSON: the request body is empty")
            return None
        try:
            return json.loads(data)
        except ValueError as e:
            raise ConfigError(f"invalid JSON: {e}") from None

    def drain(self) -> None:
        if self._body is None:
            self.body()
        assert self._body is not None
        while self._body.read(65536):
            pass

    # -- responses ----------------------------------------------------------------------
    def start(
        self,
        status: int,
        content_type: str,
        *,
        chunked: bool = True,
        extra: dict[str, str] | None = None,
    ) -> ChunkedWriter | None:
        """Send the status line and headers of a streamed response."""
        h = self.handler
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        for key, value in (extra or {}).items():
            h.send_header(key, value)
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Connection", "close")
            h.close_connection = True
        h.end_headers()
        h.wfile.flush()
        self.streaming = True
        return ChunkedWriter(h.wfile) if chunked else None

    def hijack(self) -> Any:
        """Take over the connection for a raw stream (attach, exec start)."""
        h = self.handler
        upgrade = (self.headers.get("Upgrade") or "").lower() == "tcp"
        if upgrade:
            h.send_response_only(101, "UPGRADED")
            h.send_header("Content-Type", "application/vnd.docker.raw-stream")
            h.send_header("Connection", "Upgrade")
            h.send_header("Upgrade", "tcp")
        else:
            h.send_response_only(200)
            h.send_header("Content-Type", "application/vnd.docker.raw-stream")
        h.end_headers()
        h.wfile.flush()
        h.close_connection = True
        self.streaming = True
        return h.wfile

    def client_gone(self) -> bool:
        """True once the client closed its end (a readable socket with nothing to read)."""
        sock = self.handler.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


Route = Callable[[Request, "re.Match[str]"], Any]


class Response:
    def __init__(
        self, status: int, body: bytes = b"", content_type: str = "application/json"
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "refd"
    sys_version = ""
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.debug:
            sys.stderr.write("refd api: " + (format % args) + "\n")

    def end_headers(self) -> None:
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Docker-Experimental", "false")
        self.send_header("Ostype", "linux")
        super().end_headers()

    def _reply(self, status: int, body: bytes, content_type: str, head: bool = False) -> None:
        self.send_response(status)
        if status != 304:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and status != 304:
            self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        body = json.dumps({"message": message}).encode() + b"\n"
        self._reply(status, body, "application/json")

    def _dispatch(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parsed.path)
        versioned = _VERSIONED.match(path)
        if versioned:
            wanted = (int(versioned[1]), int(versioned[2]))
            path = versioned[3]
            if wanted > tuple(int(p) for p in API_VERSION.split(".")):
                self._error(
                    400,
                    f"client version {wanted[0]}.{wanted[1]} is too new. "
                    f"Maximum supported API version is {API_VERSION}",
                )
                return
            if wanted < tuple(int(p) for p in MIN_API_VERSION.split(".")):
                self._error(
                    400,
                    f"client version {wanted[0]}.{wanted[1]} is too old. Minimum "
                    f"supported API version is {MIN_API_VERSION}, please upgrade "
                    "your client to a newer version",
                )
                return
        method = "GET" if self.command == "HEAD" else self.command
        request = Request(
            self, method, path, urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        )
        route, match = self.server.router(method, path)
        try:
            if route is None:
                raise HTTPError(404, "page not found")
            result = route(request, match)
            if request.streaming:
                return
            if request._body is None and self.headers.get("Content-Length") not in (None, "0"):
                request.drain()  # keep the connection usable for the next request
            if isinstance(result, Response):
                self._reply(result.status, result.body, result.content_type, self.command == "HEAD")
            elif result is None:
                self._reply(204, b"", "application/json", True)
            else:
                body = json.dumps(result).encode() + b"\n"
                self._reply(200, body, "application/json", self.command == "HEAD")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # every failure becomes an answer; the server lives on
            status = status_of(e)
            if status == 500 and not isinstance(e, RefError):
                traceback.print_exc()
            if request.streaming:
                self.close_connection = True
                return
            self.close_connection = self.close_connection or request._body is not None
            self._error(status, str(e))

    do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = _dispatch


def _quiet_error(server: socketserver.BaseServer, request: Any, address: Any) -> None:
    """A client that hangs up mid-conversation is normal; anything else is printed."""
    error = sys.exc_info()[1]
    if isinstance(error, (ConnectionError, TimeoutError)):
        return
    socketserver.BaseServer.handle_error(server, request, address)


class _Quiet:
    def handle_error(self, request: Any, client_address: Any) -> None:
        assert isinstance(self, socketserver.BaseServer)
        _quiet_error(self, request, client_address)


class Server(_Quiet, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, path: str, router: Callable[[str, str], tuple[Route | None, Any]], debug: bool = False
    ) -> None:
        self.router = router
        self.debug = debug
        if os.path.exists(path) and not os.path.isdir(path):
            os.unlink(path)  # a stale socket of a previous run (refd holds a pid file lock)
        super().__init__(path, Handler)
        os.chmod(path, 0o660)
        if os.geteuid() == 0:
            os.chown(path, 0, 0)  # root:root 0660, as dockerd without a `docker` group

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, _ = self.socket.accept()
        return sock, ("unix", 0)  # BaseHTTPRequestHandler wants a (host, port) address


class TCPServer(_Quiet, socketserver.ThreadingMixIn, socketserver.TCPServer):
    """tcp://host:port, only with TLS (config.validate refuses it without)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        router: Callable[[str, str], tuple[Route | None, Any]],
        context: Any,
        debug: bool = False,
    ) -> None:
        self.router = router
        self.debug = debug
        super().__init__(address, Handler)
        self.socket = context.wrap_socket(self.socket, server_side=True)
