"""Pull and push flows against the in-test fake registry (plain HTTP on 127.0.0.1, which is
insecure by default): request sequences, digest checks, progress messages, error texts."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reference.errors import NotFoundError, UnsupportedError
from reference.image import manifest as mf
from reference.image.registry import RegistryClient, RegistryError
from reference.image.store import Image, ImageStore
from tests.reference.image.test_registry_fakes import (
    Blobs,
    FakeRegistry,
    fake_registry,
    make_image,
    make_index,
    raw_server,
    sha256,
)

IMAGE = make_image({"hello": b"hi\n"}, {"etc/motd": b"welcome\n" * 100})


def seed(store: ImageStore, ref: str, image: Blobs) -> Image:
    """Put `image` into `store` under `ref`, from its registry form."""
    for data in (image.config, *image.layers):
        store.put_blob(data)
    return store.register(sha256(image.config), [sha256(layer) for layer in image.layers], [ref])


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with fake_registry() as fake:
        yield fake


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store")


def client_for(tmp_path: Path, name: str = "pulled", **options: Any) -> RegistryClient:
    return RegistryClient(ImageStore(tmp_path / name), certs_dir=tmp_path / "certs.d", **options)


class Messages(list[dict[str, Any]]):
    """A progress callback that keeps the messages; `.lines()` as Docker's CLI prints them."""

    def __call__(self, message: dict[str, Any]) -> None:
        self.append(message)

    def lines(self) -> list[str]:
        return [f"{m['id']}: {m['status']}" if m.get("id") else m.get("status", "") for m in self]


def short(data: bytes) -> str:
    return sha256(data)[7:19]


def test_push_then_pull_round_trip(
    tmp_path: Path, registry: FakeRegistry, store: ImageStore
) -> None:
    ref = f"{registry.host}/bb:t"
    seed(store, ref, IMAGE)
    progress = Messages()
    digest = RegistryClient(store, certs_dir=tmp_path / "certs.d").push(ref, progress)
    assert digest == IMAGE.digest
    assert registry.manifests["bb"]["t"] == (IMAGE.manifest, IMAGE.media_type)
    assert registry.blobs == IMAGE.all()
    blob_flow = [
        "HEAD /v2/bb/blobs/{}",
        "POST /v2/bb/blobs/uploads/",
        "PUT /v2/bb/blobs/uploads/<id>",
    ]
    expected = ["GET /v2/"]
    for data in (*IMAGE.layers, IMAGE.config):
        expected += [step.format(sha256(data)) for step in blob_flow]
    assert registry.methods() == [*expected, "PUT /v2/bb/manifests/t"]
    put = registry.headers[-1]
    assert put["Content-Type"] == IMAGE.media_type
    top, bottom = short(IMAGE.layers[1]), short(IMAGE.layers[0])
    assert progress.lines() == [
        f"The push refers to repository [{registry.host}/bb]",
        f"{top}: Preparing", f"{bottom}: Preparing",
        f"{bottom}: Pushing", f"{bottom}: Pushed",
        f"{top}: Pushing", f"{top}: Pushed",
        f"t: digest: {digest} size: {len(IMAGE.manifest)}",
        "",
    ]  # fmt: skip
    assert progress[-1]["aux"] == {"Tag": "t", "Digest": digest, "Size": len(IMAGE.manifest)}
    assert f"{registry.host}/bb@{digest}" in store.resolve(ref).repo_digests

    puller = client_for(tmp_path)
    pulled = Messages()
    image = puller.pull(ref, pulled)
    assert image.id == sha256(IMAGE.config)
    assert image.repo_tags == (ref,)
    assert image.repo_digests == (f"{registry.host}/bb@{digest}",)
    for blob, data in IMAGE.all().items():
        assert puller.store.get_blob(blob) == data  # byte for byte what the registry holds
    assert pulled.lines()[0] == "t: Pulling from bb"
    assert pulled.lines()[-2:] == [
        f"Digest: {digest}",
        f"Status: Downloaded newer image for {ref}",
    ]
    assert f"{bottom}: Download complete" in pulled.lines()
    assert f"{top}: Pull complete" in pulled.lines()
    accept = registry.headers[-4]["Accept"]  # GET manifest, then config and two layers
    assert "application/vnd.docker.distribution.manifest.v2+json" in accept
    assert "application/vnd.oci.image.index.v1+json" in accept


def test_push_skips_blobs_the_registry_has(
    tmp_path: Path, registry: FakeRegistry, store: ImageStore
) -> None:
    ref = f"{registry.host}/bb:t"
    seed(store, ref, IMAGE)
    client = RegistryClient(store, certs_dir=tmp_path / "certs.d")
    first = client.push(ref)
    registry.log.clear()
    progress = Messages()
    assert client.push(ref, progress) == first
    heads = [f"HEAD /v2/bb/blobs/{sha256(d)}" for d in (*IMAGE.layers, IMAGE.config)]
    assert registry.methods() == ["GET /v2/", *heads, "PUT /v2/bb/manifests/t"]
    assert f"{short(IMAGE.layers[0])}: Layer already exists" in progress.lines()


def test_chunked_push(tmp_path: Path, registry: FakeRegistry, store: ImageStore) -> None:
    image = make_image({"noise": os.urandom(5000)})  # incompressible: > 5000 bytes gzipped
    ref = f"{registry.host}/chunky:1"
    seed(store, ref, image)
    client = RegistryClient(store, certs_dir=tmp_path / "certs.d", chunk_size=2048)
    progress = Messages()
    assert client.push(ref, progress) == image.digest
    layer = image.layers[0]
    patches = [h for (m, _), h in zip(registry.log, registry.headers, strict=True) if m == "PATCH"]
    chunks = -(-len(layer) // 2048) + -(-len(image.config) // 2048)
    assert len(patches) == chunks
    ranges = [h["Content-Range"] for h in patches[: -(-len(layer) // 2048)]]
    assert ranges[0] == "0-2047"
    assert ranges[-1] == f"{2048 * (len(ranges) - 1)}-{len(layer) - 1}"
    final = [h for (m, p), h in zip(registry.log, registry.headers, strict=True)
             if m == "PUT" and "/uploads/" in p]  # fmt: skip
    assert [h["Content-Length"] for h in final] == ["0", "0"]
    assert registry.blobs[sha256(layer)] == layer
    pushing = [m["progressDetail"] for m in progress if m.get("status") == "Pushing"]
    assert pushing[-1]["current"] == pushing[-1]["total"]


def test_relative_upload_locations(
    tmp_path: Path, registry: FakeRegistry, store: ImageStore
) -> None:
    registry.relative_locations = True
    ref = f"{registry.host}/rel:1"
    seed(store, ref, IMAGE)
    for chunk_size in (None, 100):
        registry.blobs.clear()
        client = RegistryClient(store, certs_dir=tmp_path / "c", chunk_size=chunk_size)
        assert client.push(ref) == IMAGE.digest
        assert registry.blobs == IMAGE.all()


def test_pull_picks_the_host_platform_from_a_manifest_list(
    tmp_path: Path, registry: FakeRegistry
) -> None:
    arm = make_image({"arch": b"arm64\n"}, architecture="arm64")
    amd = make_image({"arch": b"amd64\n"})
    index = make_index([(arm, "arm64"), (amd, "amd64")])
    registry.put_image("multi", None, arm)
    registry.put_image("multi", None, amd)
    registry.put_manifest(
        "multi", "1", index, "application/vnd.docker.distribution.manifest.list.v2+json"
    )
    ref = f"{registry.host}/multi:1"
    progress = Messages()
    client = client_for(tmp_path, platform=("linux", "amd64"))
    image = client.pull(ref, progress)
    assert image.id == sha256(amd.config)
    assert image.repo_digests == (f"{registry.host}/multi@{sha256(index)}",)
    assert f"Digest: {sha256(index)}" in progress.lines()
    fetched = [p for m, p in registry.log if m == "GET"]
    assert f"/v2/multi/manifests/{amd.digest}" in fetched
    assert not any(sha256(arm.config) in p or sha256(arm.layers[0]) in p for p in fetched)

    s390 = client_for(tmp_path, "s390", platform=("linux", "s390x"))
    with pytest.raises(NotFoundError, match="no matching manifest for linux/s390x in the manifest"):
        s390.pull(ref)


def test_pull_by_digest(tmp_path: Path, registry: FakeRegistry) -> None:
    registry.put_image("bb", None, IMAGE)
    ref = f"{registry.host}/bb@{IMAGE.digest}"
    client = client_for(tmp_path)
    image = client.pull(ref)
    assert image.repo_tags == ()  # Docker does not tag what it pulls by digest
    assert image.repo_digests == (ref,)
    assert client.store.resolve(ref).id == image.id


def test_manifest_not_matching_its_digest_is_refused(
    tmp_path: Path, registry: FakeRegistry
) -> None:
    other = make_image({"other": b"1"})
    registry.put_image("bb", None, IMAGE)
    registry.manifests["bb"][other.digest] = (IMAGE.manifest, IMAGE.media_type)
    client = client_for(tmp_path)
    with pytest.raises(
        RegistryError, match=f"manifest verification failed for digest {other.digest}"
    ):
        client.pull(f"{registry.host}/bb@{other.digest}")
    assert not client.store.has_blob(sha256(IMAGE.config))


def test_corrupt_layer_is_refused_and_not_kept(tmp_path: Path, registry: FakeRegistry) -> None:
    registry.put_image("bb", "t", IMAGE)
    bad = sha256(IMAGE.layers[1])
    registry.corrupt.add(bad)
    client = client_for(tmp_path)
    with pytest.raises(
        RegistryError, match=f"filesystem layer verification failed for digest {bad}"
    ):
        client.pull(f"{registry.host}/bb:t")
    assert not client.store.has_blob(bad)
    assert client.store.list() == []
    assert list((tmp_path / "pulled" / "tmp").iterdir()) == []  # no scratch left behind


def test_pull_twice_is_up_to_date(tmp_path: Path, registry: FakeRegistry) -> None:
    registry.put_image("bb", "t", IMAGE)
    ref = f"{registry.host}/bb:t"
    client = client_for(tmp_path)
    client.pull(ref)
    registry.log.clear()
    progress = Messages()
    client.pull(ref, progress)
    assert registry.methods() == ["GET /v2/", "GET /v2/bb/manifests/t"]
    assert progress.lines()[-1] == f"Status: Image is up to date for {ref}"
    assert f"{short(IMAGE.layers[0])}: Already exists" in progress.lines()


def test_registry_errors_read_like_docker(tmp_path: Path, registry: FakeRegistry) -> None:
    registry.put_image("bb", "t", IMAGE)
    client = client_for(tmp_path)
    with pytest.raises(NotFoundError) as caught:
        client.pull(f"{registry.host}/bb:nope")
    assert str(caught.value) == (
        f"manifest for {registry.host}/bb:nope not found: manifest unknown: manifest unknown"
    )
    with pytest.raises(NotFoundError) as caught:
        client.pull(f"{registry.host}/nothing:t")
    assert str(caught.value) == (
        f"repository {registry.host}/nothing not found: name unknown: "
        "repository name not known to registry"
    )


def test_push_needs_a_local_tag(tmp_path: Path, registry: FakeRegistry, store: ImageStore) -> None:
    client = RegistryClient(store, certs_dir=tmp_path / "certs.d")
    with pytest.raises(NotFoundError) as caught:
        client.push(f"{registry.host}/bb:t")
    assert str(caught.value) == f"An image does not exist locally with the tag: {registry.host}/bb"
    assert registry.log == []


@pytest.mark.parametrize("ref", ["bb", "bb:latest", "docker.io/library/bb:t", "team/app"])
def test_docker_hub_is_never_contacted(tmp_path: Path, store: ImageStore, ref: str) -> None:
    seed(store, "bb:latest", IMAGE)
    client = RegistryClient(store, certs_dir=tmp_path / "certs.d")
    with pytest.raises(UnsupportedError, match="never contacts public registries"):
        client.pull(ref)
    with pytest.raises(UnsupportedError, match="never contacts public registries"):
        client.push(ref)


def test_kept_alive_connection_closed_by_the_registry(
    tmp_path: Path, registry: FakeRegistry, store: ImageStore
) -> None:
    """The registry drops each connection after answering: requests (file bodies rewound) are
    sent again once on a new connection."""
    registry.drop_idle = True
    ref = f"{registry.host}/bb:t"
    seed(store, ref, IMAGE)
    assert RegistryClient(store, certs_dir=tmp_path / "c").push(ref) == IMAGE.digest
    assert registry.blobs == IMAGE.all()
    assert client_for(tmp_path).pull(ref).id == sha256(IMAGE.config)


def test_blob_redirects_are_followed(tmp_path: Path, registry: FakeRegistry) -> None:
    registry.redirect_blobs = True
    registry.put_image("bb", "t", IMAGE)
    client = client_for(tmp_path)
    assert client.pull(f"{registry.host}/bb:t").id == sha256(IMAGE.config)
    assert ("GET", f"/storage/{sha256(IMAGE.layers[0])}") in registry.log


def test_oci_manifest_and_index(tmp_path: Path, registry: FakeRegistry) -> None:
    image = make_image({"oci": b"1\n"})
    oci_manifest = mf.build_manifest(
        mf.Descriptor(mf.OCI_CONFIG, sha256(image.config), len(image.config)),
        [mf.Descriptor(mf.OCI_LAYER_GZIP, sha256(image.layers[0]), len(image.layers[0]))],
        oci=True,
    )
    registry.blobs.update(image.all())
    registry.put_manifest("oci", None, oci_manifest, mf.OCI_MANIFEST)
    # An OCI index whose entries, like itself, carry no mediaType (allowed by OCI).
    index = (
        b'{"schemaVersion": 2, "manifests": [{"digest": "%s", "size": %d, '
        b'"platform": {"architecture": "amd64", "os": "linux"}}]}'
        % (sha256(oci_manifest).encode(), len(oci_manifest))
    )
    registry.put_manifest("oci", "1", index, mf.OCI_INDEX)
    pulled = client_for(tmp_path).pull(f"{registry.host}/oci:1")
    assert pulled.id == sha256(image.config)
    assert pulled.repo_digests == (f"{registry.host}/oci@{sha256(index)}",)


def test_schema1_is_refused(tmp_path: Path, registry: FakeRegistry) -> None:
    body = b'{"schemaVersion": 1, "name": "old", "tag": "1", "fsLayers": []}'
    registry.put_manifest(
        "old", "1", body, "application/vnd.docker.distribution.manifest.v1+prettyjws"
    )
    with pytest.raises(UnsupportedError, match="schema 1 manifests are not supported"):
        client_for(tmp_path).pull(f"{registry.host}/old:1")


def _internal_error(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(
        b"HTTP/1.1 500 Internal Server Error\r\n"
        b"Content-Length: 5\r\nConnection: close\r\n\r\noops\n"
    )


def test_unexpected_status(tmp_path: Path) -> None:
    with raw_server(_internal_error) as host, pytest.raises(RegistryError) as caught:
        client_for(tmp_path).pull(f"{host}/bb:t")
    assert str(caught.value) == "received unexpected HTTP status: 500 Internal Server Error"
