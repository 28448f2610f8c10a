"""docker-save and OCI-layout archives in and out of a store, without Docker: round trips,
streams that cannot seek, determinism, and corrupt archives (ConfigError naming the member)."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from reference.errors import ConfigError, NotFoundError
from reference.image import manifest as mf
from reference.image.blobs import sha256_digest
from reference.image.store import ImageStore
from tests.reference.image._tars import (
    Entry,
    d,
    docker_save_tar,
    f,
    image_config,
    rootfs_tar,
    tar_bytes,
    tree,
)


class Pipe(io.RawIOBase):
    """A read-only stream that cannot seek, like `docker save X |`."""

    def __init__(self, data: bytes) -> None:
        self._src = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._src.read(min(len(buffer), 777))  # odd sizes, like a pipe
        buffer[: len(chunk)] = chunk
        return len(chunk)


def pipe(data: bytes) -> io.BufferedReader:
    return io.BufferedReader(Pipe(data))


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "a")


def empty(store: ImageStore) -> bool:
    return (
        not os.listdir(store.blobs.dir)
        and not os.listdir(store.layers_root)
        and not (os.listdir(store.blobs.tmp))
    )


def test_load_docker_save_from_a_pipe(store: ImageStore) -> None:
    layers = [rootfs_tar(), tar_bytes([d("etc"), f("etc/.wh.group"), f("new", b"n")])]
    archive, image_id = docker_save_tar(image_config([sha256_digest(x) for x in layers]),
                                        layers, ["bb:latest", "bb:2"])  # fmt: skip
    assert store.load(pipe(archive)) == ["bb:latest", "bb:2"]
    image = store.resolve("bb:2")
    assert image.id == image_id  # the config bytes are kept as they came
    top = store.layer_dirs(image)[-1]
    assert tree(top) == {"etc": "dir", "etc/group": "chr 0:0", "new": "n"}


def test_load_compressed_archive_and_untagged(store: ImageStore) -> None:
    layer = rootfs_tar()
    archive, image_id = docker_save_tar(image_config([sha256_digest(layer)]), [layer], [])
    assert store.load(pipe(gzip.compress(archive))) == [image_id]


def test_save_load_round_trip_is_deterministic(store: ImageStore, tmp_path: Path) -> None:
    base = store.import_rootfs(io.BytesIO(rootfs_tar()), "bb", None)
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "marker").write_text("m")
    store.commit(upper, base, "bb:c", None)
    first, second = io.BytesIO(), io.BytesIO()
    store.save(["bb"], first)  # a name without tag: every tag of the repository
    store.save(["bb"], second)
    assert first.getvalue() == second.getvalue()
    with tarfile.open(fileobj=io.BytesIO(first.getvalue())) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert {t for m in manifest for t in m["RepoTags"]} == {"bb:latest", "bb:c"}
        assert all(m.mtime == 0 for m in tar.getmembers())
    other = ImageStore(tmp_path / "b")
    assert sorted(other.load(pipe(first.getvalue()))) == ["bb:c", "bb:latest"]
    assert other.resolve("bb:c").id == store.resolve("bb:c").id
    assert other.resolve("bb:c").layers == store.resolve("bb:c").layers


def test_save_by_id_and_unknown(store: ImageStore) -> None:
    image = store.import_rootfs(io.BytesIO(rootfs_tar()), "bb", None)
    out = io.BytesIO()
    store.save([image.id[7:19]], out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] is None
    out = io.BytesIO()
    with pytest.raises(NotFoundError, match="No such image: nosuch"):
        store.save(["bb", "nosuch"], out)
    assert out.getvalue() == b""  # nothing written before every name resolved


def oci_layout(layer: bytes, ref_name: str) -> bytes:
    """An OCI image layout tar (as skopeo/buildkit write it) with a gzip layer."""
    gz = gzip.compress(layer, mtime=0)
    config = json.dumps(image_config([sha256_digest(layer)])).encode()
    config_desc = mf.Descriptor(mf.OCI_CONFIG, sha256_digest(config), len(config))
    layer_desc = mf.Descriptor(mf.OCI_LAYER_GZIP, sha256_digest(gz), len(gz))
    manifest = mf.build_manifest(config_desc, [layer_desc], oci=True)
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": mf.OCI_MANIFEST, "digest": sha256_digest(manifest), "size": len(manifest),
        "annotations": {mf.ANNOTATION_REF_NAME: ref_name}}]}  # fmt: skip
    blobs = [(sha256_digest(b), b) for b in (gz, config, manifest)]
    return tar_bytes([
        f("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
        f("index.json", json.dumps(index).encode()), d("blobs"), d("blobs/sha256"),
        *[f(f"blobs/sha256/{digest[7:]}", data) for digest, data in blobs],
    ])  # fmt: skip


def test_load_oci_layout(store: ImageStore) -> None:
    layer = rootfs_tar()
    assert store.load(pipe(oci_layout(layer, "localhost/oci:1"))) == ["localhost/oci:1"]
    image = store.resolve("localhost/oci:1")
    assert image.layers == (sha256_digest(layer),)
    assert tree(store.layer_dirs(image)[0])["etc/version"] == "v1"
    # A bare tag names no repository: the image loads untagged.
    other = ImageStore(store.root.parent / "c")
    assert other.load(pipe(oci_layout(layer, "latest"))) == [image.id]


# --- corrupt archives ------------------------------------------------------------------------
def _valid() -> tuple[bytes, str, str]:
    layer = rootfs_tar()
    archive, image_id = docker_save_tar(image_config([sha256_digest(layer)]), [layer], ["x:1"])
    return archive, image_id, layer.hex()


def _evil() -> bytes:
    layer = tar_bytes([f("../x")])
    return docker_save_tar(image_config([sha256_digest(layer)]), [layer], ["x:1"])[0]


def _replace(archive: bytes, name: str, data: bytes | None) -> bytes:
    """The archive with member `name` changed (None: dropped)."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        entries = []
        for m in tar.getmembers():
            content = tar.extractfile(m).read() if m.isfile() else b""  # type: ignore[union-attr]
            if m.name == name:
                if data is None:
                    continue
                content = data
            entries.append(f(m.name, content) if m.isfile() else d(m.name))
    return tar_bytes(entries)


@pytest.mark.parametrize(
    ("mutate", "member", "message"),
    [
        (lambda a, i: a[:3000], "layer0/layer.tar", "invalid archive"),  # truncated in a member
        (lambda a, i: b"not a tar at all" * 64, "archive", "invalid archive"),
        (lambda a, i: _replace(a, "manifest.json", None), "manifest.json", "no manifest.json"),
        (lambda a, i: _replace(a, "manifest.json", b"{"), "manifest.json", "bad JSON"),
        (lambda a, i: _replace(a, "layer0/layer.tar", None), "layer0/layer.tar", "not found"),
        (lambda a, i: _replace(a, f"{i[7:]}.json", b"[1"), f"{'{i}'}.json", "bad JSON"),
        (lambda a, i: _replace(a, "layer0/layer.tar", tar_bytes([f("other")])),
         "layer0/layer.tar", "does not match its diff_id"),
        (lambda a, i: _evil(), "../x", "layer0/layer.tar: path escapes the layer"),
    ],
)  # fmt: skip
def test_corrupt_archive_names_the_member(
    store: ImageStore, mutate: object, member: str, message: str
) -> None:
    archive, image_id, _ = _valid()
    broken = mutate(archive, image_id)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=message) as info:
        store.load(pipe(broken))
    assert info.value.obj == member.replace("{i}", image_id[7:])
    assert empty(store), "a failed load leaves nothing behind"
    assert store.list() == []


def test_load_follows_layer_symlinks(store: ImageStore) -> None:
    """Docker writes a layer that occurs twice once, and a symlink for the second use."""
    layer = rootfs_tar()
    config = json.dumps(image_config([sha256_digest(layer)] * 2)).encode()
    image_id = sha256_digest(config)
    names = ["a/layer.tar", "b/layer.tar"]
    manifest = [{"Config": "c.json", "RepoTags": ["twice:1"], "Layers": names}]
    archive = tar_bytes([
        d("a"), f("a/layer.tar", layer), d("b"),
        Entry("b/layer.tar", kind=tarfile.SYMTYPE, link="../a/layer.tar"),
        f("c.json", config), f("manifest.json", json.dumps(manifest).encode()),
    ])  # fmt: skip
    assert store.load(pipe(archive)) == ["twice:1"]
    image = store.resolve("twice:1")
    assert image.id == image_id
    assert image.layers == (sha256_digest(layer),) * 2
    chain = [sha256_digest(layer)]
    chain.append(sha256_digest(f"{chain[0]} {chain[0]}".encode()))
    deleted = [r["Deleted"] for r in store.remove("twice:1") if "Deleted" in r]
    assert deleted == [image_id, chain[1], chain[0]]  # as Docker reports: both chain layers
    assert empty(store)
