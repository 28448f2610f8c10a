"""Push and pull through refd's API (refctl push/pull) against a real docker-registry on
loopback (plain HTTP on 127.0.0.0/8 needs no insecure-registries, as in Docker): refd's
loopback, in the engine host (network namespace) it runs in."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.netlab import engine_netns, free_port
from fixtures.registry import registry_server
from tests.reference.engine._refd import Refd, needs_root, running_refd

pytestmark = pytest.mark.skipif(needs_root(), reason="needs root")


@pytest.fixture(scope="module")
def refd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Refd]:
    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed")
    with running_refd(tmp_path_factory.mktemp("registry")) as daemon:
        yield daemon


def test_push_rmi_pull_run(refd: Refd, tmp_path: Path) -> None:
    netns = engine_netns(refd.driver)
    port = free_port(netns)
    ref = f"127.0.0.1:{port}/cts/probe:t1"
    with registry_server(tmp_path / "registry", "127.0.0.1", port, netns):
        assert refd.ctl("tag", refd.image, ref).returncode == 0
        pushed = refd.ctl("push", ref)
        assert pushed.returncode == 0, pushed.stderr
        assert "The push refers to repository [127.0.0.1:" in pushed.stdout
        assert "t1: digest: sha256:" in pushed.stdout
        assert refd.ctl("rmi", ref).returncode == 0
        pulled = refd.ctl("pull", ref)
        assert pulled.returncode == 0, pulled.stderr
        assert "Status: Downloaded newer image for" in pulled.stdout
        done = refd.ctl("run", "--rm", "--pull=never", ref, "cat", "/etc/cts-image")
        assert done.returncode == 0, done.stderr
        digests = refd.ctl("image", "inspect", "-f", "{{json .RepoDigests}}", ref).stdout
        assert f"127.0.0.1:{port}/cts/probe@sha256:" in digests
        refd.ctl("rmi", ref)


def test_pull_errors_read_like_docker(refd: Refd) -> None:
    port = free_port(engine_netns(refd.driver))  # nothing listens there
    done = refd.ctl("pull", f"127.0.0.1:{port}/cts/none:x")
    assert done.returncode == 1
    assert "Error response from daemon:" in done.stderr
    assert "connection refused" in done.stderr
