"""A plugin whose answers a test writes: HTTP on a unix socket (or TCP on loopback) that
records every request with its headers and answers from a table, or hangs. No kernel
objects, no root: for the client's and the remote driver's handling of answers, including
the ones the suite's well-behaved plugin (fixtures/remote_plugin.py) never gives."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

HANG = object()  # an answer that never comes (until the plugin closes)


@dataclass
class Request:
    method: str
    body: Any  # None: no body at all
    headers: dict[str, str]


@dataclass
class ScriptedPlugin:
    answers: dict[str, Any] = field(default_factory=dict)  # method → body, (status, body), HANG
    requests: list[Request] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        defaults = {
            "Plugin.Activate": {"Implements": ["NetworkDriver"]},
            "NetworkDriver.GetCapabilities": {"Scope": "local", "ConnectivityScope": "local"},
            "NetworkDriver.CreateEndpoint": {"Interface": {}},
            "NetworkDriver.Join": {"InterfaceName": {"SrcName": "veth-x", "DstPrefix": "eth"}},
            "NetworkDriver.EndpointOperInfo": {"Value": {}},
        }
        self.answers = {**defaults, **self.answers}

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]

    def bodies(self, method: str) -> list[Any]:
        return [r.body for r in self.requests if r.method == method]

    def answer(self, method: str) -> tuple[int, bytes]:
        found = self.answers.get(method, {})
        if found is HANG:
            self.released.wait(30)
            return 200, b"{}"
        status, body = found if isinstance(found, tuple) else (200, found)
        return status, body if isinstance(body, bytes) else json.dumps(body).encode()


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        plugin: ScriptedPlugin = self.server.plugin
        method = self.path.lstrip("/")
        body = json.loads(raw) if raw.strip() else None
        plugin.requests.append(Request(method, body, dict(self.headers.items())))
        status, payload = plugin.answer(method)
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def _serving(server: Any, plugin: ScriptedPlugin) -> Iterator[None]:
    server.plugin = plugin
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        plugin.released.set()
        server.shutdown()
        server.server_close()


@contextmanager
def scripted_plugin(socket: Path) -> Iterator[ScriptedPlugin]:
    """Serve on `socket` (a path); tests change `answers` as they go."""
    plugin = ScriptedPlugin()
    server = _UnixServer(str(socket), _Handler)
    try:
        with _serving(server, plugin):
            yield plugin
    finally:
        socket.unlink(missing_ok=True)


@contextmanager
def scripted_tcp_plugin() -> Iterator[tuple[ScriptedPlugin, int]]:
    """Serve on 127.0.0.1 (a free port, returned with the plugin)."""
    plugin = ScriptedPlugin()
    server = _TcpServer(("127.0.0.1", 0), _Handler)
    with _serving(server, plugin):
        yield plugin, server.server_address[1]
