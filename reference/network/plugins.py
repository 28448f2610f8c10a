"""Plugins found by name, and the HTTP client that talks to them (Docker's pkg/plugins).

A plugin named N is, first match wins (as Docker's localRegistry):
    <socket dir>/N.sock or <socket dir>/N/N.sock        a unix socket, no spec file needed
    <spec dir>/N.spec or <spec dir>/N/N.spec            one URL: unix:///path, tcp://host:port
    <spec dir>/N.json or <spec dir>/N/N.json            {"Name", "Addr", "TLSConfig": {...}}
with spec dirs searched in order. Every call is an HTTP POST of JSON to /<Method>; the plugin
fails an operation with {"Err": "..."} and answers 404 for a method it does not implement.

Unlike Docker, every call has a timeout: a hung plugin must not hang refd's API threads.
Connecting is retried with Docker's back-off (1, 2, 4, ... s, within 30 s): a plugin that is
just starting (socket there, not listening yet) gets the time Docker gives it.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reference.errors import ConfigError, RefError, StateError, UnsupportedError

SOCKET_DIR = Path("/run/refd/plugins")
SPEC_DIRS = (Path("/etc/refd/plugins"), Path("/usr/lib/refd/plugins"))

# Docker sends the v1.2 Accept header (its docs still say v1+json, which plugins answer with).
ACCEPT = "application/vnd.docker.plugins.v1.2+json"
CONTENT_TYPE = "application/vnd.docker.plugins.v1+json"
CALL_TIMEOUT = 10.0  # seconds, per socket operation (connect, send, each read)
RETRY_BUDGET = 30.0  # seconds of connect retries, as Docker's defaultTimeOut
BACKOFF_UNIT = 1.0  # first back-off; doubles per retry
SCHEMES = ("unix", "tcp", "http", "https")
MAX_ERROR_TEXT = 300  # how much of a non-JSON error body goes into a message


# -- errors -----------------------------------------------------------------------------------
class PluginError(RefError):
    """A plugin failed a call: its {"Err": ...}, a bad status or a malformed answer."""

    def __init__(self, plugin: str, method: str, detail: str) -> None:
        super().__init__(f"plugin {plugin}: {method}: {detail}")
        self.obj = plugin
        self.plugin = plugin
        self.method = method
        self.detail = detail


class PluginNotImplemented(PluginError, UnsupportedError):
    """404: the plugin does not implement the method (or, on activation, the interface)."""


class PluginUnreachable(PluginError, StateError):
    """No connection within the retry budget, or no answer within the call timeout."""


# -- discovery ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TlsConfig:
    """A .json spec's TLSConfig (Docker: no CAFile means InsecureSkipVerify)."""

    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class Plugin:
    name: str
    addr: str  # a URL: unix:///run/refd/plugins/x.sock, tcp://127.0.0.1:8080
    source: Path  # the socket or spec file it was found by
    tls: TlsConfig | None = None


@dataclass(frozen=True)
class Discovery:
    """Where plugins are looked for; the defaults are refd's, tests point elsewhere."""

    socket_dirs: tuple[Path, ...] = (SOCKET_DIR,)
    spec_dirs: tuple[Path, ...] = SPEC_DIRS

    def find(self, name: str) -> Plugin | None:
        """The plugin called `name`, or None when nothing of that name is there. A spec
        file that is found but unusable raises ConfigError naming the file."""
        if not name or "/" in name or name in (".", "..") or "\0" in name:
            return None  # never a path outside the directories
        for directory in self.socket_dirs:
            for path in _candidates(directory, name, ".sock"):
                if path.is_socket():
                    return Plugin(name, f"unix://{path}", path)
        for directory in self.spec_dirs:
            for ext in (".spec", ".json"):
                for path in _candidates(directory, name, ext):
                    if path.is_file():
                        return _read_json(name, path) if ext == ".json" else _read_spec(name, path)
        return None


def _candidates(directory: Path, name: str, ext: str) -> tuple[Path, Path]:
    return directory / f"{name}{ext}", directory / name / f"{name}{ext}"


def check_addr(addr: str, source: Path) -> str:
    """A plugin URL refd can dial; ConfigError naming `source` otherwise."""
    try:
        url = urlsplit(addr)
        port = url.port
    except ValueError as exc:
        raise ConfigError(f"invalid plugin address {addr!r}: {exc}", obj=str(source)) from exc
    if not url.scheme:
        raise ConfigError(f"plugin address {addr!r} has no protocol", obj=str(source))
    if url.scheme not in SCHEMES:
        raise ConfigError(
            f"plugin address {addr!r}: unsupported protocol {url.scheme!r}", obj=str(source)
        )
    if url.scheme == "unix" and not (url.path or url.netloc):
        raise ConfigError(f"plugin address {addr!r} has no socket path", obj=str(source))
    if url.scheme != "unix" and (not url.hostname or port is None):
        raise ConfigError(f"plugin address {addr!r} needs host:port", obj=str(source))
    return addr


def _read_spec(name: str, path: Path) -> Plugin:
    try:
        addr = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read plugin spec: {exc}", obj=str(path)) from exc
    return Plugin(name, check_addr(addr, path), path)


def _read_json(name: str, path: Path) -> Plugin:
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read plugin spec: {exc}", obj=str(path)) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("Addr"), str):
        raise ConfigError('plugin spec needs an "Addr" string', obj=str(path))
    raw = doc.get("TLSConfig") or {}
    if not isinstance(raw, dict):
        raise ConfigError('plugin spec "TLSConfig" is not an object', obj=str(path))
    ca = str(raw.get("CAFile") or "")
    tls = TlsConfig(
        ca_file=ca,
        cert_file=str(raw.get("CertFile") or ""),
        key_file=str(raw.get("KeyFile") or ""),
        insecure_skip_verify=bool(raw.get("InsecureSkipVerify")) or not ca,
    )
    # The file's name names the plugin, as in Docker; "Name" inside is informational.
    return Plugin(name, check_addr(doc["Addr"].strip(), path), path, tls)


# -- the client ---------------------------------------------------------------------------------
class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket; remembers the server's PID (SO_PEERCRED) so the caller can
    tell which network namespace the plugin's links are in."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path
        self.peer_pid: int | None = None

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        except BaseException:
            sock.close()
            raise
        pid = struct.unpack("3i", creds)[0]
        self.peer_pid = pid or None  # 0: not visible from our PID namespace
        self.sock = sock


def _tls_context(tls: TlsConfig | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=(tls.ca_file or None) if tls else None)
    if tls and tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file or None)
    if tls is None or tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Client:
    """Calls to one plugin. Thread-safe: one connection per call."""

    def __init__(
        self,
        plugin: Plugin,
        *,
        call_timeout: float = CALL_TIMEOUT,
        retry_budget: float = RETRY_BUDGET,
        backoff_unit: float = BACKOFF_UNIT,
    ) -> None:
        self.plugin = plugin
        self.call_timeout = call_timeout
        self.retry_budget = retry_budget
        self.backoff_unit = backoff_unit
        self.peer_pid: int | None = None  # the plugin's PID, from the last unix connection

    def activate(self, implements: str) -> list[str]:
        """POST /Plugin.Activate (no body); the plugin must list `implements`."""
        answer = self.call("Plugin.Activate")
        listed = answer.get("Implements")
        if not isinstance(listed, list) or implements not in listed:
            raise PluginNotImplemented(
                self.plugin.name, "Plugin.Activate", f"does not implement {implements} ({listed})"
            )
        return [str(item) for item in listed]

    def call(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST `body` (None: no body at all) to /<method>; the decoded answer."""
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Accept": ACCEPT}
        if payload is not None:
            headers["Content-Type"] = CONTENT_TYPE
        conn = self._connect(method)
        try:
            conn.request("POST", f"/{method}", body=payload, headers=headers)
            response = conn.getresponse()
            status, raw = response.status, response.read()
        except TimeoutError as exc:
            raise PluginUnreachable(
                self.plugin.name, method, f"no answer within {self.call_timeout:g} s"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise PluginError(self.plugin.name, method, f"broken exchange: {exc}") from exc
        finally:
            conn.close()
        return self._decode(method, status, raw)

    def _connection(self) -> http.client.HTTPConnection:
        url = urlsplit(self.plugin.addr)
        if url.scheme == "unix":
            return _UnixConnection(url.path or url.netloc, self.call_timeout)
        host, port = url.hostname or "", url.port
        if url.scheme == "https":
            context = _tls_context(self.plugin.tls)
            return http.client.HTTPSConnection(
                host, port, timeout=self.call_timeout, context=context
            )
        return http.client.HTTPConnection(host, port, timeout=self.call_timeout)

    def _connect(self, method: str) -> http.client.HTTPConnection:
        """A connected connection; connection failures are retried with Docker's back-off
        (nothing was sent yet, so retrying cannot do anything twice)."""
        start, retries = time.monotonic(), 0
        while True:
            conn = self._connection()
            try:
                conn.connect()
            except ssl.SSLError as exc:  # a certificate does not get better by waiting
                conn.close()
                raise PluginError(self.plugin.name, method, f"TLS: {exc}") from exc
            except OSError as exc:
                conn.close()
                pause = self.backoff_unit * 2**retries
                if time.monotonic() - start + pause >= self.retry_budget:
                    raise PluginUnreachable(
                        self.plugin.name, method, f"cannot connect to {self.plugin.addr}: {exc}"
                    ) from exc
                retries += 1
                time.sleep(pause)
                continue
            if isinstance(conn, _UnixConnection):
                self.peer_pid = conn.peer_pid
            return conn

    def _decode(self, method: str, status: int, raw: bytes) -> dict[str, Any]:
        name = self.plugin.name
        try:
            answer = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            answer = None
        err = answer.get("Err") if isinstance(answer, dict) else None
        # Docker takes only 200 as success; 404 means "not implemented" (remote.md).
        if status == 404:
            raise PluginNotImplemented(name, method, f"not implemented ({err or 'HTTP 404'})")
        if status != 200:
            text = err or raw.decode(errors="replace").strip()[:MAX_ERROR_TEXT]
            raise PluginError(name, method, f"HTTP {status}: {text}")
        if not isinstance(answer, dict):
            raise PluginError(name, method, f"answer is not a JSON object: {raw[:80]!r}")
        if err:
            raise PluginError(name, method, str(err))
        return answer
