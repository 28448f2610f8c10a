"""Storage and engine self-tests: an engine whose `diff` forgets deletions fails exactly the
diff test; an engine socket open to everyone fails exactly the socket-permission test."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.selftest.harness import broken_docker_env, failed, run_suite

DOCKER_SOCKET = Path("/var/run/docker.sock")
pytestmark = pytest.mark.skipif(
    shutil.which("docker") is None or not DOCKER_SOCKET.exists(),
    reason="no Docker engine on /var/run/docker.sock",
)


def test_diff_without_deletions_fails_exactly_the_diff_test(tmp_path: Path) -> None:
    env = broken_docker_env("diff-no-deletes", tmp_path)
    outcomes = run_suite("docker", tmp_path / "junit.xml", "suites/storage", env=env)
    assert failed(outcomes) == {
        "suites.storage.test_cow_commit::test_diff_lists_exactly_the_changes[docker]"
    }, outcomes


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def world_writable_engine(tmp_path: Path) -> Iterator[Path]:
    """The real engine behind a forwarding socket with mode 0666: an engine that lets every
    local user drive it."""
    path = tmp_path / "engine.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    os.chmod(path, 0o666)
    server.listen(16)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(str(DOCKER_SOCKET))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        server.close()
        thread.join(timeout=5)


def test_world_writable_socket_fails_exactly_the_permission_test(
    tmp_path: Path, world_writable_engine: Path
) -> None:
    target = f"docker://{world_writable_engine}"
    outcomes = run_suite(target, tmp_path / "junit.xml", "suites/engine")
    assert failed(outcomes) == {
        f"suites.engine.test_engine_socket::test_socket_is_root_owned_with_mode_0660[{target}]"
    }, outcomes
