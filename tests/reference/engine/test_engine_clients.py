"""Other clients drive refd: the real docker CLI (`docker -H unix://<refd socket>`, which
negotiates API 1.41 down from its own) and docker-py. Images move both ways between refd and
the machine's real Docker with save/load (only local images; nothing is pulled)."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reference.engine._refd import Refd, needs_root, running_refd

pytestmark = pytest.mark.skipif(needs_root(), reason="needs root")
SLEEP = ["/bin/probe", "sleep", "forever"]


@pytest.fixture(scope="module")
def refd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Refd]:
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed")
    with running_refd(tmp_path_factory.mktemp("clients")) as daemon:
        yield daemon


def real_docker_up() -> bool:
    done = subprocess.run(["docker", "version"], capture_output=True, timeout=30)
    return done.returncode == 0


def test_docker_cli_negotiates_and_reads_the_version(refd: Refd) -> None:
    done = refd.docker("version", "--format", "{{.Server.APIVersion}} {{.Client.APIVersion}}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1.41", "1.41"]  # the client downgraded to refd's version
    assert refd.docker("info", "--format", "{{.Driver}}").stdout.strip() == "overlay2"


def test_docker_cli_container_lifecycle(refd: Refd) -> None:
    done = refd.docker("run", "--rm", "--pull=never", refd.image, "sh", "-c", "echo hi; exit 7")
    assert (done.returncode, done.stdout) == (7, "hi\n")
    name = f"cli-{secrets.token_hex(3)}"
    started = refd.docker(
        "run",
        "-d",
        "--name",
        name,
        "--pull=never",
        refd.image,
        "sh",
        "-c",
        "echo logged; exec /bin/probe sleep forever",
    )
    assert started.returncode == 0, started.stderr
    cid = started.stdout.strip()
    assert name in refd.docker("ps", "--format", "{{.Names}}").stdout.split()
    assert refd.docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"
    assert refd.docker("logs", name).stdout == "logged\n"
    assert refd.docker("exec", name, "hostname").stdout.strip() == cid[:12]
    assert refd.docker("stop", "-t", "5", name).returncode == 0
    assert refd.docker("inspect", "-f", "{{.State.Status}}", name).stdout.strip() == "exited"
    assert refd.docker("rm", name).returncode == 0
    assert refd.leftovers(cid) == []
    assert name not in refd.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()


def test_docker_cli_reports_refd_errors(refd: Refd) -> None:
    done = refd.docker("run", "--pull=never", "-m", "1m", refd.image, "true")
    assert done.returncode == 125
    assert "Error response from daemon: Minimum memory limit allowed is 6MB" in done.stderr
    done = refd.docker("inspect", "no-such-thing")
    assert done.returncode == 1
    assert "No such object: no-such-thing" in done.stderr


def test_images_move_between_refd_and_docker(refd: Refd, tmp_path: Path) -> None:
    if not real_docker_up():
        pytest.skip("the machine's Docker daemon is not running")
    assert refd.image in refd.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout
    tag = f"cts-refd-interop:{secrets.token_hex(4)}"
    refd.docker("tag", refd.image, tag)
    tarball = tmp_path / "from-refd.tar"
    assert refd.docker("save", "-o", str(tarball), tag).returncode == 0
    try:
        loaded = subprocess.run(
            ["docker", "load", "-i", str(tarball)], capture_output=True, text=True, timeout=120
        )
        assert loaded.returncode == 0, loaded.stderr
        assert f"Loaded image: {tag}" in loaded.stdout
        ran = subprocess.run(
            ["docker", "run", "--rm", "--pull=never", tag, "cat", "/etc/cts-image"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ran.returncode == 0, ran.stderr
        back = tmp_path / "from-docker.tar"
        subprocess.run(["docker", "save", "-o", str(back), tag], check=True, timeout=120)
        assert refd.docker("rmi", tag).returncode == 0
        again = refd.docker("load", "-i", str(back))
        assert f"Loaded image: {tag}" in again.stdout, again.stderr
        inside = refd.docker("run", "--rm", "--pull=never", tag, "cat", "/etc/cts-image")
        assert inside.stdout == ran.stdout
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=60)
        refd.docker("rmi", "-f", tag)


def test_docker_py(refd: Refd) -> None:
    docker: Any = pytest.importorskip("docker", reason="docker-py is not installed")
    client = docker.DockerClient(base_url=f"unix://{refd.socket}", version="1.41", timeout=60)
    try:
        assert client.ping() is True
        assert client.version()["ApiVersion"] == "1.41"
        assert refd.image in {t for i in client.images.list() for t in i.tags}
        output = client.containers.run(refd.image, ["sh", "-c", "echo from-py"], remove=True)
        assert output == b"from-py\n"
        container = client.containers.run(
            refd.image, SLEEP, detach=True, name="py-sleeper", mem_limit="64m"
        )
        container.reload()
        assert container.status == "running"
        assert container.attrs["HostConfig"]["Memory"] == 64 << 20
        assert container.exec_run(["echo", "in"]).output == b"in\n"
        stats = container.stats(stream=False)
        assert stats["memory_stats"]["limit"] == 64 << 20
        container.kill()
        assert container.wait()["StatusCode"] == 137
        container.remove()
        with pytest.raises(docker.errors.ImageNotFound):
            client.containers.create("no-such-image:x", ["true"])
        # run() then pulls, which refd refuses for Docker Hub names (no public registries)
        with pytest.raises(docker.errors.APIError, match="never contacts public registries"):
            client.containers.run("no-such-image:x", ["true"])
        with pytest.raises(docker.errors.NotFound):
            client.containers.get("py-sleeper")
    finally:
        client.close()
    status, _ = refd.api("GET", "/containers/json?all=1")
    assert status == 200


def test_events_through_the_docker_cli(refd: Refd) -> None:
    # Replay a bounded window (--since/--until) instead of following a live stream: a live
    # subscription can start after the container's first event and then wait forever.
    name = f"ev-{secrets.token_hex(3)}"
    since = f"{time.time() - 1:.3f}"
    run = refd.docker("run", "--rm", "--name", name, "--pull=never", refd.image, "true")
    assert run.returncode == 0
    until = f"{time.time() + 1:.3f}"
    events = subprocess.run(
        [
            "docker",
            "-H",
            f"unix://{refd.socket}",
            "events",
            "--since",
            since,
            "--until",
            until,
            "--format",
            "{{json .}}",
            "--filter",
            f"container={name}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    seen = [json.loads(line)["Action"] for line in events.stdout.splitlines() if line]
    assert seen == ["create", "start", "die", "destroy"], events.stdout
