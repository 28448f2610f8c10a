"""Interop with the real Docker 20.10 on /var/run/docker.sock: `docker save X | load` and
`save | docker load`, with tiny images made by `docker import` from tars made here. Every
image this module makes in Docker is removed again. Needs root and a running Docker."""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference.image.blobs import sha256_digest
from reference.image.store import ImageStore
from tests.reference.image._tars import d, f, rootfs_tar, tar_bytes, tree

SOCKET = Path("/var/run/docker.sock")


def _docker_ready() -> bool:
    if os.geteuid() != 0 or not SOCKET.exists():
        return False
    try:
        probe = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                               capture_output=True, timeout=20)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _docker_ready(), reason="needs root and a running Docker")


def docker(*args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(["docker", *args], input=stdin, capture_output=True, timeout=120)
    assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr.decode()}"
    return done.stdout.decode()


@pytest.fixture
def names() -> Iterator[list[str]]:
    """Names for Docker images; every one of them is removed from Docker afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        subprocess.run(["docker", "rmi", "-f", name], capture_output=True, timeout=60)
    left = docker("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert not set(made) & set(left), "images left in Docker"


def new_name(names: list[str]) -> str:
    names.append(f"cts-refimage-{os.getpid()}-{secrets.token_hex(4)}:t")
    return names[-1]


def docker_import(names: list[str], rootfs: bytes) -> tuple[str, str]:
    name = new_name(names)
    image_id = docker("import", "-", name, stdin=rootfs).strip()
    return name, image_id


def test_docker_save_piped_into_load(tmp_path: Path, names: list[str]) -> None:
    rootfs = rootfs_tar(b"from docker")
    name, docker_id = docker_import(names, rootfs)
    store = ImageStore(tmp_path / "image")
    with subprocess.Popen(["docker", "save", name], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        loaded = store.load(proc.stdout)  # type: ignore[arg-type]
    assert proc.returncode == 0
    assert loaded == [name]
    image = store.resolve(name)
    assert image.id == docker_id  # same config bytes, so the same id
    inspect = json.loads(docker("image", "inspect", name))[0]
    assert list(image.layers) == inspect["RootFS"]["Layers"]
    assert image.layers == (sha256_digest(rootfs),)  # Docker keeps an imported tar as is
    assert image.size == inspect["Size"]
    assert tree(store.layer_dirs(image)[0])["etc/version"] == "from docker"


def test_save_accepted_by_docker_load(tmp_path: Path, names: list[str]) -> None:
    store = ImageStore(tmp_path / "image")
    name = new_name(names)
    base = store.import_rootfs(io.BytesIO(rootfs_tar()), name, {"Cmd": ["/bin/sh"]})
    # A second layer that deletes a file and adds one: Docker must apply the whiteout.
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    os.mknod(upper / "etc/group", 0o020000, os.makedev(0, 0))
    (upper / "marker").write_text("x\n")
    child_name = new_name(names)
    child = store.commit(upper, base, child_name, None)
    with subprocess.Popen(["docker", "load"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:  # fmt: skip
        assert proc.stdin is not None
        store.save([name, child_name], proc.stdin)  # type: ignore[arg-type]
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert f"Loaded image: {child_name}" in out.decode()
    for ours in (base, child):
        inspect = json.loads(docker("image", "inspect", ours.repo_tags[0]))[0]
        assert inspect["Id"] == ours.id
        assert inspect["RootFS"]["Layers"] == list(ours.layers)
        assert inspect["Config"]["Cmd"] == ["/bin/sh"]
    # What Docker made of the layers: the rootfs of a created (never started) container.
    cid = docker("create", child_name, "/nonexistent").strip()
    try:
        exported = subprocess.run(["docker", "export", cid], capture_output=True, timeout=60)
    finally:
        docker("rm", cid)
    with tarfile.open(fileobj=io.BytesIO(exported.stdout)) as tar:
        files = set(tar.getnames())
    assert {"marker", "etc/passwd", "etc/version"} <= files
    assert "etc/group" not in files


def test_load_time_of_a_3mb_image(tmp_path: Path, names: list[str]) -> None:
    blob = secrets.token_bytes(3 * 1024 * 1024 - 200_000)  # incompressible, ~3 MB in total
    entries = [d("bin"), d("etc"), f("bin/big", blob)]
    entries += [f(f"etc/f{n:03d}", b"x" * 1000) for n in range(200)]  # many small files
    name, docker_id = docker_import(names, tar_bytes(entries))
    archive = subprocess.run(["docker", "save", name], capture_output=True, timeout=120).stdout
    times = []
    for n in range(3):
        store = ImageStore(tmp_path / f"image{n}")
        t0 = time.perf_counter()
        store.load(io.BytesIO(archive))
        times.append((time.perf_counter() - t0) * 1000)
        assert store.resolve(name).id == docker_id
    out = io.BytesIO()
    t0 = time.perf_counter()
    store.save([name], out)
    saved = (time.perf_counter() - t0) * 1000
    print(
        f"\nload of a {len(archive) / 1e6:.1f} MB docker-save archive: "
        f"{min(times):.1f} ms (best of 3: {', '.join(f'{t:.1f}' for t in times)}); "
        f"save: {saved:.1f} ms"
    )
    assert min(times) < 2000
