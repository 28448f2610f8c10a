"""The API server's HTTP conventions, with a small route table (no engine behind it)."""

from __future__ import annotations

import json
import re
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.targets.engine_api import UnixHTTPConnection
from reference.engine.api.server import Request, Response, Server
from reference.errors import ConfigError, ConflictError, NotFoundError


def route(request: Request, match: re.Match[str] | None) -> Any:
    what = match["what"] if match else ""
    if what == "ok":
        return {"path": request.path, "q": request.arg("q")}
    if what == "missing":
        raise NotFoundError("No such container: x")
    if what == "conflict":
        raise ConflictError("Conflict. busy")
    if what == "bad":
        raise ConfigError("bad parameter")
    if what == "crash":
        raise ZeroDivisionError("boom")
    if what == "echo":
        body = request.json(required=True)
        return {"got": body}
    if what == "count":
        return {"bytes": len(request.body().readall())}
    if what == "text":
        return Response(200, b"OK", "text/plain")
    return None


def router(method: str, path: str) -> tuple[Any, Any]:
    match = re.fullmatch(r"/t/(?P<what>\w+)", path)
    return (route, match) if match else (None, None)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "api.sock"
    srv = Server(str(path), router)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield path
    srv.shutdown()
    srv.server_close()


def call(
    path: Path,
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = UnixHTTPConnection(str(path), timeout=10)
    conn.request(method, url, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), data


def test_socket_mode(server: Path) -> None:
    info = server.stat()
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o660


def test_versioned_and_plain_paths(server: Path) -> None:
    for url in ("/t/ok?q=1", "/v1.41/t/ok?q=1", "/v1.24/t/ok?q=1"):
        status, headers, body = call(server, "GET", url)
        assert status == 200, url
        assert json.loads(body) == {"path": "/t/ok", "q": "1"}
        assert headers["Api-Version"] == "1.41"


def test_too_new_and_too_old_versions(server: Path) -> None:
    status, _, body = call(server, "GET", "/v1.99/t/ok")
    assert status == 400
    assert json.loads(body)["message"] == (
        "client version 1.99 is too new. Maximum supported API version is 1.41"
    )
    status, _, body = call(server, "GET", "/v1.5/t/ok")
    assert (status, "too old" in json.loads(body)["message"]) == (400, True)


@pytest.mark.parametrize(
    ("what", "status"),
    [("missing", 404), ("conflict", 409), ("bad", 400), ("crash", 500)],
)
def test_errors_are_json_with_their_status(server: Path, what: str, status: int) -> None:
    got, headers, body = call(server, "GET", f"/t/{what}")
    assert got == status
    assert headers["Content-Type"] == "application/json"
    assert set(json.loads(body)) == {"message"}
    assert call(server, "GET", "/t/ok")[0] == 200  # the server lives on


def test_unknown_path_is_a_json_404(server: Path) -> None:
    status, _, body = call(server, "GET", "/nowhere")
    assert (status, json.loads(body)) == (404, {"message": "page not found"})


def test_malformed_json_is_a_400_naming_the_problem(server: Path) -> None:
    status, _, body = call(
        server, "POST", "/t/echo", b'{"Image": ', {"Content-Type": "application/json"}
    )
    assert status == 400
    assert json.loads(body)["message"].startswith("invalid JSON: Expecting value")
    status, _, body = call(server, "POST", "/t/echo", b"")
    assert (status, json.loads(body)["message"]) == (400, "invalid JSON: the request body is empty")
    status, _, body = call(server, "POST", "/t/echo", b'{"a": 1}')
    assert json.loads(body) == {"got": {"a": 1}}


def test_chunked_request_bodies(server: Path) -> None:
    conn = UnixHTTPConnection(str(server), timeout=10)
    chunks = iter([b"a" * 70000, b"b" * 5, b"c"])
    conn.request("POST", "/t/count", body=chunks, encode_chunked=True)
    response = conn.getresponse()
    assert json.loads(response.read()) == {"bytes": 70006}
    # the connection stays usable (keep-alive) after a chunked body
    conn.request("GET", "/t/ok")
    assert conn.getresponse().status == 200
    conn.close()


def test_head_and_no_content(server: Path) -> None:
    status, headers, body = call(server, "HEAD", "/t/text")
    assert (status, body, headers["Content-Length"]) == (200, b"", "2")
    status, _, body = call(server, "POST", "/t/none")
    assert (status, body) == (204, b"")


def test_garbage_does_not_kill_the_server(server: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(server))
    sock.sendall(b"\x00\x01 not http at all\r\n\r\n")
    sock.recv(4096)
    sock.close()
    assert call(server, "GET", "/t/ok")[0] == 200
