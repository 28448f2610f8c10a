"""Fakes for the registry client's tests: an in-memory Distribution v2 registry served over HTTP
or TLS on 127.0.0.1 (threaded http.server), a raw TCP server for broken peers, and tiny images.

The fake registry checks what a real one checks (upload ranges, digests) and logs every request,
so tests can assert the exact protocol flow. It lives in a test_ module so that pytest's own
import machinery finds it; it holds no tests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import socket
import ssl
import tarfile
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from reference.image import manifest as mf

API_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blobs:
    """One image as a registry holds it: config, gzip layers and the schema 2 manifest."""

    manifest: bytes
    config: bytes
    layers: tuple[bytes, ...]
    media_type: str = mf.DOCKER_MANIFEST

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    def all(self) -> dict[str, bytes]:
        return {sha256(b): b for b in (self.config, *self.layers)}


def layer_tar(files: dict[str, bytes]) -> bytes:
    """A gzip layer tar holding `files` (deterministic: mtime 0)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), 0o644
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def make_image(*layer_files: dict[str, bytes], architecture: str = "amd64") -> Blobs:
    layers = tuple(layer_tar(files) for files in layer_files)
    config = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "config": {"Cmd": ["/hello"]},
            "rootfs": {
                "type": "layers",
                "diff_ids": [sha256(gzip.decompress(layer)) for layer in layers],
            },
        },
        sort_keys=True,
    ).encode()

    def descriptor(media_type: str, data: bytes) -> mf.Descriptor:
        return mf.Descriptor(media_type, sha256(data), len(data))

    manifest = mf.build_manifest(
        descriptor(mf.DOCKER_CONFIG, config),
        [descriptor(mf.DOCKER_LAYER_GZIP, layer) for layer in layers],
    )
    return Blobs(manifest, config, layers)


def make_index(entries: list[tuple[Blobs, str]]) -> bytes:
    """A Docker manifest list of (image, architecture) entries."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mf.DOCKER_MANIFEST_LIST,
            "manifests": [
                {
                    "mediaType": image.media_type,
                    "digest": image.digest,
                    "size": len(image.manifest),
                    "platform": {"architecture": arch, "os": "linux"},
                }
                for image, arch in entries
            ],
        }
    ).encode()


@dataclass
class FakeRegistry:
    """State and request log of the fake registry; `host` is 127.0.0.1:<port>."""

    host: str = ""
    scheme: str = "http"
    blobs: dict[str, bytes] = field(default_factory=dict)
    # repository -> reference (tag or digest) -> (body, media type)
    manifests: dict[str, dict[str, tuple[bytes, str]]] = field(default_factory=dict)
    uploads: dict[str, bytearray] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    corrupt: set[str] = field(default_factory=set)  # blob digests served with a flipped byte
    relative_locations: bool = False
    redirect_blobs: bool = False  # GET of a blob: 307 to /storage/<digest> (like S3 backends)
    drop_idle: bool = False  # close each connection after its answer, keep-alive promised
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put_image(self, repository: str, tag: str | None, image: Blobs) -> None:
        self.blobs.update(image.all())
        self.put_manifest(repository, tag, image.manifest, image.media_type)

    def put_manifest(self, repository: str, tag: str | None, body: bytes, media_type: str) -> None:
        refs = self.manifests.setdefault(repository, {})
        refs[sha256(body)] = (body, media_type)
        if tag:
            refs[tag] = (body, media_type)

    def methods(self) -> list[str]:
        """The request log as 'METHOD /path' without query strings (upload ids vary)."""
        out = []
        for method, path in self.log:
            path = urllib.parse.urlsplit(path).path
            if "/blobs/uploads/" in path and not path.endswith("/uploads/"):
                path = path.rsplit("/", 1)[0] + "/<id>"
            out.append(f"{method} {path}")
        return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        # Like Go's HTTP server (docker-registry): a TLS ClientHello on the plain HTTP port
        # gets an HTTP 400 answer at once (http.server would wait for a line end).
        if not isinstance(self.connection, ssl.SSLSocket):
            try:
                first = self.connection.recv(1, socket.MSG_PEEK)
            except OSError:
                return
            if first == b"\x16":
                self.connection.sendall(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    b"Connection: close\r\n\r\n400 Bad Request"
                )
                return
        super().handle()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the test log has it all
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header(*API_HEADER)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        if self.server.state.drop_idle:
            self.close_connection = True

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]})
        self._reply(status, body.encode(), {"Content-Type": "application/json"})

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _location(self, path: str) -> str:
        state = self.server.state
        return path if state.relative_locations else f"{state.scheme}://{state.host}{path}"

    def _route(self) -> None:
        state = self.server.state
        with state.lock:
            state.log.append((self.command, self.path))
            state.headers.append(dict(self.headers.items()))
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/v2/":
            return self._reply(200, b"{}", {"Content-Type": "application/json"})
        if url.path.startswith("/storage/"):
            return self._blob(url.path.removeprefix("/storage/"), redirect=False)
        if not url.path.startswith("/v2/"):
            return self._error(404, "UNKNOWN", "not found")
        repository, sep, rest = url.path[4:].rpartition("/manifests/")
        if sep:
            return self._manifest(repository, urllib.parse.unquote(rest))
        repository, sep, rest = url.path[4:].rpartition("/blobs/uploads/")
        if sep:
            return self._upload(repository, rest, query.get("digest", [""])[0])
        repository, sep, rest = url.path[4:].rpartition("/blobs/")
        if sep:
            return self._blob(urllib.parse.unquote(rest))
        return self._error(404, "UNKNOWN", "not found")

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = _route

    def _manifest(self, repository: str, reference: str) -> None:
        state = self.server.state
        if self.command == "PUT":
            body = self._body()
            state.put_manifest(
                repository,
                None if reference.startswith("sha256:") else reference,
                body,
                self.headers.get("Content-Type", ""),
            )
            digest = sha256(body)
            location = f"/v2/{repository}/manifests/{digest}"
            return self._reply(201, b"", {"Docker-Content-Digest": digest, "Location": location})
        if repository not in state.manifests:
            return self._error(404, "NAME_UNKNOWN", "repository name not known to registry")
        found = state.manifests[repository].get(reference)
        if found is None:
            return self._error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        body, media_type = found
        self._reply(200, body, {"Content-Type": media_type, "Docker-Content-Digest": sha256(body)})

    def _blob(self, digest: str, redirect: bool = True) -> None:
        state = self.server.state
        data = state.blobs.get(digest)
        if data is None:
            return self._error(404, "BLOB_UNKNOWN", "blob unknown to registry")
        if redirect and state.redirect_blobs and self.command == "GET":
            return self._reply(307, b"", {"Location": self._location(f"/storage/{digest}")})
        if digest in state.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        self._reply(200, data, {"Docker-Content-Digest": digest,
                                "Content-Type": "application/octet-stream"})  # fmt: skip

    def _upload(self, repository: str, upload: str, digest: str) -> None:
        state = self.server.state
        if self.command == "POST":
            upload = str(uuid.uuid4())
            state.uploads[upload] = bytearray()
            location = self._location(f"/v2/{repository}/blobs/uploads/{upload}?_state=s0")
            return self._reply(202, b"", {"Location": location, "Range": "0-0",
                                          "Docker-Upload-UUID": upload})  # fmt: skip
        data = state.uploads.get(upload)
        if data is None:
            return self._error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
        body = self._body()
        if self.command == "PATCH":
            start, _, end = (self.headers.get("Content-Range") or "").partition("-")
            if (
                not start.isdigit()
                or int(start) != len(data)
                or int(end) != len(data) + len(body) - 1
            ):
                return self._error(416, "BLOB_UPLOAD_INVALID", "invalid content range")
            data += body
            location = self._location(
                f"/v2/{repository}/blobs/uploads/{upload}?_state=s{len(data)}"
            )
            return self._reply(202, b"", {"Location": location, "Range": f"0-{len(data) - 1}"})
        data += body
        if sha256(bytes(data)) != digest:
            return self._error(
                400, "DIGEST_INVALID", "provided digest did not match uploaded content"
            )
        state.blobs[digest] = bytes(data)
        del state.uploads[upload]
        self._reply(201, b"", {"Docker-Content-Digest": digest,
                               "Location": f"/v2/{repository}/blobs/{digest}"})  # fmt: skip


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: FakeRegistry

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # TLS handshakes the client aborts on purpose land here


@contextmanager
def fake_registry(tls: tuple[Path, Path] | None = None) -> Iterator[FakeRegistry]:
    """A fake registry on 127.0.0.1:<free port>; over TLS with (certificate, key) if given."""
    server = _Server(("127.0.0.1", 0), _Handler)
    state = FakeRegistry(host=f"127.0.0.1:{server.server_address[1]}")
    server.state = state
    if tls is not None:
        state.scheme = "https"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        # Handshake in the handler thread (on first read), not in the accepting thread.
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def raw_server(reply: Callable[[socket.socket], None]) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that runs `reply` on each connection, then closes it; its
    host:port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                with suppress(OSError):
                    reply(conn)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        listener.close()
