"""The registry client against the real thing: `docker-registry serve` (distribution 2.8) on
loopback and, for the security rules, on a fake WAN network namespace (198.51.100.x) linked to
this one; and Docker 20.10 itself pulling what the client pushed and pushing what it pulls.

Skipped without /usr/bin/docker-registry; the WAN cases need root (a netns and a veth, named by
fixtures.session and removed afterwards), the Docker case the shared daemon's socket."""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.netlab import ROOT, free_port, wan
from fixtures.registry import Registry, make_certificate, registry_server
from fixtures.session import unique_name
from reference.image.registry import RegistryClient, TransportError
from reference.image.store import Image, ImageStore

pytestmark = pytest.mark.skipif(
    not os.path.exists("/usr/bin/docker-registry"), reason="no /usr/bin/docker-registry"
)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace needs root")
LOGGER = "reference.image.registry"
HTTP_TO_HTTPS = "http: server gave HTTP response to HTTPS client"


def image_ref(registry: Registry, repository: str, tag: str) -> str:
    return f"{registry.host}/{repository}:{tag}"


def rootfs(*files: tuple[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def tiny_image(store: ImageStore, ref: str) -> Image:
    archive = rootfs(("hello", b"#!/bin/sh\necho hello\n"), ("etc/motd", b"tiny\n" * 200))
    return store.import_rootfs(io.BytesIO(archive), ref, None)


def assert_same_image(pushed: ImageStore, pulled: ImageStore, image: Image, digest: str) -> None:
    """What was pulled is what was pushed: same id, layers and blobs byte for byte."""
    body, _ = pushed.manifest(image)
    from reference.image import manifest as mf

    manifest = mf.parse_manifest(body, "pushed")
    for blob in (manifest.config, *manifest.layers):
        assert pulled.get_blob(blob.digest) == pushed.get_blob(blob.digest)
    again = pulled.resolve(image.id)
    assert (again.id, again.layers) == (image.id, image.layers)
    assert any(d.endswith(f"@{digest}") for d in again.repo_digests)


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[Registry]:
    with registry_server(tmp_path / "registry", "127.0.0.1", free_port(ROOT)) as registry:
        yield registry


@pytest.mark.parametrize("chunk_size", [None, 1000])
def test_push_and_pull_on_loopback(
    tmp_path: Path, loopback: Registry, chunk_size: int | None
) -> None:
    ref = image_ref(loopback, "tiny", "t")
    pusher = RegistryClient(
        ImageStore(tmp_path / "a"), certs_dir=tmp_path / "c", chunk_size=chunk_size
    )
    image = tiny_image(pusher.store, ref)
    digest = pusher.push(ref)
    stored = loopback.manifest("tiny", "t")
    assert stored is not None
    assert (stored.digest, stored.body) == (digest, pusher.store.manifest(image)[0])
    for blob in [stored.document["config"], *stored.document["layers"]]:
        assert loopback.blob("tiny", blob["digest"]) == pusher.store.get_blob(blob["digest"])

    puller = RegistryClient(ImageStore(tmp_path / "b"), certs_dir=tmp_path / "c")
    pulled = puller.pull(ref)
    assert pulled.repo_tags == (ref,)
    assert_same_image(pusher.store, puller.store, image, digest)
    # By digest, through localhost (another name for the same insecure registry).
    by_digest = f"localhost:{loopback.port}/tiny@{digest}"
    assert (
        RegistryClient(ImageStore(tmp_path / "d"), certs_dir=tmp_path / "c").pull(by_digest).id
        == image.id
    )


def _docker(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *argv], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.skipif(
    shutil.which("docker") is None or not os.path.exists("/var/run/docker.sock"),
    reason="no Docker daemon",
)
def test_docker_pulls_what_we_push_and_we_pull_what_docker_pushes(
    tmp_path: Path, loopback: Registry
) -> None:
    ours, theirs = image_ref(loopback, "ours", "1"), image_ref(loopback, "theirs", "1")
    client = RegistryClient(ImageStore(tmp_path / "a"), certs_dir=tmp_path / "c")
    image = tiny_image(client.store, ours)
    digest = client.push(ours)
    try:
        pulled = _docker("pull", ours)
        assert pulled.returncode == 0, pulled.stderr
        assert f"Digest: {digest}" in pulled.stdout
        docker_id = _docker("image", "inspect", "--format", "{{.Id}}", ours).stdout.strip()
        assert docker_id == image.id
        assert _docker("tag", ours, theirs).returncode == 0
        pushed = _docker("push", theirs)
        assert pushed.returncode == 0, pushed.stderr
    finally:
        _docker("rmi", ours, theirs)
    docker_digest = pushed.stdout.strip().splitlines()[-1].split("digest: ")[1].split()[0]
    back = RegistryClient(ImageStore(tmp_path / "b"), certs_dir=tmp_path / "c")
    assert back.pull(theirs).id == image.id
    assert_same_image(client.store, back.store, image, docker_digest)


# -- security rules on a non-loopback address --------------------------------------------


@dataclass(frozen=True)
class Wan:
    address: str
    http: Registry
    tls: Registry
    ca: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wan]:
    """A WAN netns on a veth from this namespace (198.51.100.x/30, leased per worker), with
    docker-registry over HTTP on :5000 and over TLS (self-signed) on :5443."""
    if os.geteuid() != 0:
        pytest.skip("a network namespace needs root")
    root = tmp_path_factory.mktemp("wan")
    with ExitStack() as stack:
        link = stack.enter_context(wan())
        certificate = make_certificate(root, link.wan_addr)
        plain = stack.enter_context(registry_server(root / "http", link.wan_addr, 5000, link.ns))
        secure = stack.enter_context(
            registry_server(root / "tls", link.wan_addr, 5443, link.ns, certificate)
        )
        yield Wan(link.wan_addr, plain, secure, certificate.cert)


def wan_client(tmp_path: Path, name: str, insecure: list[str] | None = None) -> RegistryClient:
    store = ImageStore(tmp_path / name)
    return RegistryClient(store, insecure or [], certs_dir=tmp_path / "certs.d")


def push_error(client: RegistryClient, ref: str) -> str:
    tiny_image(client.store, ref)
    with pytest.raises(TransportError) as caught:
        client.push(ref)
    return str(caught.value)


@needs_root
def test_wan_registries_are_secure_by_default(tmp_path: Path, lab: Wan) -> None:
    client = wan_client(tmp_path, "s")
    repo = unique_name("r")
    assert push_error(client, image_ref(lab.http, repo, "t")) == (
        f'Get "https://{lab.http.host}/v2/": http: server gave HTTP response to HTTPS client'
    )
    assert push_error(client, image_ref(lab.tls, repo, "t")) == (
        f'Get "https://{lab.tls.host}/v2/": x509: certificate signed by unknown authority'
    )
    with pytest.raises(TransportError, match="server gave HTTP response to HTTPS client"):
        client.pull(image_ref(lab.http, repo, "t"))
    # An entry without the port does not match host:port (Docker's exact lookup).
    portless = wan_client(tmp_path, "p", [lab.address])
    assert "server gave HTTP response" in push_error(portless, image_ref(lab.http, repo, "t"))
    assert repo not in lab.http.repositories()


@needs_root
@pytest.mark.parametrize("form", ["host:port", "cidr"])
def test_insecure_registries_on_the_wan(
    tmp_path: Path, lab: Wan, caplog: pytest.LogCaptureFixture, form: str
) -> None:
    entries = [lab.http.host, lab.tls.host] if form == "host:port" else [f"{lab.address}/24"]
    pusher = wan_client(tmp_path, "a", entries)
    puller = wan_client(tmp_path, "b", entries)
    repo = unique_name("r")
    for registry in (lab.http, lab.tls):
        ref = image_ref(registry, repo, "t")
        image = tiny_image(pusher.store, ref)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=LOGGER):
            digest = pusher.push(ref)
            puller.pull(ref)
        stored = registry.manifest(repo, "t")
        assert stored is not None
        assert stored.digest == digest
        assert_same_image(pusher.store, puller.store, image, digest)
        attempts = [r.getMessage() for r in caplog.records if "Attempting next" in r.getMessage()]
        if registry is lab.http:  # HTTPS first, then plain HTTP
            error = f'Get "https://{registry.host}/v2/": {HTTP_TO_HTTPS}'
            assert attempts == [
                f"Attempting next endpoint for push after error: {error}",
                f"Attempting next endpoint for pull after error: {error}",
            ]
        else:  # HTTPS without verification works at once
            assert attempts == []


@needs_root
def test_ca_in_certs_dir_secures_the_tls_registry(tmp_path: Path, lab: Wan) -> None:
    client = wan_client(tmp_path, "a")
    repo = unique_name("r")
    ref = image_ref(lab.tls, repo, "t")
    assert "x509: certificate signed by unknown authority" in push_error(client, ref)
    # Docker reads certs.d/<host:port>/*.crt at each pull or push: no restart.
    (client.certs_dir / lab.tls.host).mkdir(parents=True)
    shutil.copy(lab.ca, client.certs_dir / lab.tls.host / "ca.crt")
    digest = client.push(ref)
    puller = wan_client(tmp_path, "b")
    puller.pull(ref)
    assert_same_image(client.store, puller.store, client.store.resolve(ref), digest)
    # The CA is for that host:port only: plain HTTP on :5000 stays refused.
    assert "server gave HTTP response" in push_error(client, image_ref(lab.http, repo, "t"))
