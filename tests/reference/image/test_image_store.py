"""ImageStore on a temporary root: import, tags, lookup, removal, commit of a fake upper dir,
the index on disk, the registry-facing blob API, and what a failure leaves (nothing)."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import tarfile
import threading
from pathlib import Path

import pytest

from reference.errors import ConfigError, ConflictError, NotFoundError
from reference.image import manifest as mf
from reference.image.blobs import sha256_digest
from reference.image.store import Image, ImageStore
from tests.reference.image._tars import f, image_config, rootfs_tar, tar_bytes, tree


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "image")


def imported(store: ImageStore, ref: str | None = "bb:latest", marker: bytes = b"v1") -> Image:
    return store.import_rootfs(io.BytesIO(rootfs_tar(marker)), ref, None)


def leftovers(store: ImageStore) -> dict[str, list[str]]:
    """Everything on disk besides the index: blobs, layers, scratch."""
    return {
        "blobs": sorted(os.listdir(store.blobs.dir)),
        "layers": sorted(os.listdir(store.layers_root)),
        "tmp": sorted(os.listdir(store.blobs.tmp)),
        "root": sorted(n for n in os.listdir(store.root) if n.startswith(".")),
    }


# --- import, digests ---------------------------------------------------------------------------
def test_import_digests_and_layout(store: ImageStore) -> None:
    raw = rootfs_tar()
    image = store.import_rootfs(io.BytesIO(gzip.compress(raw)), "bb", {"Cmd": ["/bin/sh"]})
    diff_id = sha256_digest(raw)  # of the uncompressed tar, whatever came in
    assert image.layers == (diff_id,)
    assert image.id == sha256_digest(store.get_blob(image.id))  # id = digest of config bytes
    assert image.repo_tags == ("bb:latest",)
    assert image.config["config"]["Cmd"] == ["/bin/sh"]
    assert image.config["config"]["Env"] is None  # Docker's empty config around the changes
    assert image.config["rootfs"] == {"type": "layers", "diff_ids": [diff_id]}
    assert image.config["history"][0]["comment"] == "Imported from -"
    assert store.blobs.path(diff_id).read_bytes() == raw
    [layer] = store.layer_dirs(image)
    assert layer == store.layers_root / diff_id[7:]
    assert tree(layer)["etc/version"] == "v1"
    assert image.size == len("root:x:0:0:root:/root:/bin/sh\n") + len("root:x:0:\n") + 2 + 7
    assert leftovers(store)["tmp"] == []
    assert leftovers(store)["root"] == []


def test_import_same_layer_unpacks_once(store: ImageStore) -> None:
    first = imported(store, "a:1")
    inode = os.stat(store.layer_dirs(first)[0] / "etc/version").st_ino
    second = imported(store, "a:2")
    assert second.layers == first.layers
    assert os.stat(store.layer_dirs(second)[0] / "etc/version").st_ino == inode


# --- lookup and tags ---------------------------------------------------------------------------
def test_resolve_by_tag_id_prefix_and_familiar_names(store: ImageStore) -> None:
    image = imported(store, "bb")
    for name in ("bb", "bb:latest", "docker.io/library/bb:latest", image.id, image.id[7:19],
                 image.id[:19]):  # fmt: skip
        assert store.resolve(name).id == image.id, name


@pytest.mark.parametrize("name", ["nosuch", "nosuch:latest", "sha256:" + "0" * 64, "Bad Name"])
def test_unknown_image_is_not_found_naming_the_ref(store: ImageStore, name: str) -> None:
    imported(store)
    with pytest.raises(NotFoundError, match="No such image") as info:
        store.resolve(name)
    assert info.value.obj == name
    assert str(info.value) == f"No such image: {name}"


def test_tag_and_invalid_tags(store: ImageStore) -> None:
    image = imported(store)
    store.tag("bb", "127.0.0.1:5000/bb:t")
    assert store.resolve("127.0.0.1:5000/bb:t").id == image.id
    assert store.resolve(image.id).repo_tags == ("127.0.0.1:5000/bb:t", "bb:latest")
    for bad, why in (("UPPER", "must be lowercase"), ("a b", "invalid reference format"),
                     ("bb@sha256:" + "0" * 64, "digest")):  # fmt: skip
        with pytest.raises(ConfigError, match=why):
            store.tag("bb", bad)
    with pytest.raises(NotFoundError):
        store.tag("nosuch", "x")


def test_index_persists_across_store_objects(store: ImageStore) -> None:
    image = imported(store)
    store.tag("bb", "bb:two")
    again = ImageStore(store.root)
    assert [i.id for i in again.list()] == [image.id]
    assert again.resolve("bb:two").layers == image.layers
    # A write by one store object is seen by the other (the index file's stamp changes).
    again.tag("bb", "bb:three")
    assert store.resolve("bb:three").id == image.id
    doc = json.loads((store.root / "index.json").read_text())
    assert doc["tags"] == {"bb:latest": image.id, "bb:two": image.id, "bb:three": image.id}


def test_corrupt_index_is_a_config_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "image").mkdir()
    (tmp_path / "image/index.json").write_text("{not json")
    with pytest.raises(ConfigError, match="corrupt image index") as info:
        ImageStore(tmp_path / "image")
    assert info.value.obj == str(tmp_path / "image/index.json")


def test_concurrent_imports_and_tags(store: ImageStore) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            image = imported(store, f"t{n}:x", marker=str(n % 3).encode())
            store.tag(image.id, f"u{n}:y")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    images = ImageStore(store.root).list()
    assert len(images) == 8  # each import has its own `created`, so its own config
    assert {t for i in images for t in i.repo_tags} == {
        f"{p}{n}:{t}" for n in range(8) for p, t in (("t", "x"), ("u", "y"))
    }
    assert len(leftovers(store)["layers"]) == 3  # three distinct rootfs contents


# --- remove ------------------------------------------------------------------------------------
def test_remove_untags_then_deletes(store: ImageStore) -> None:
    image = imported(store)
    store.tag("bb", "bb:two")
    assert store.remove("bb:two") == [{"Untagged": "bb:two"}]
    result = store.remove("bb")
    assert result == [{"Untagged": "bb:latest"}, {"Deleted": image.id},
                      {"Deleted": image.layers[0]}]  # fmt: skip
    assert leftovers(store) == {"blobs": [], "layers": [], "tmp": [], "root": []}
    with pytest.raises(NotFoundError):
        store.remove("bb")


def test_remove_by_id_with_several_tags_needs_force(store: ImageStore) -> None:
    image = imported(store)
    store.tag("bb", "cc")
    with pytest.raises(ConflictError, match="referenced in multiple repositories"):
        store.remove(image.id)
    result = store.remove(image.id[7:19], force=True)
    assert [r.get("Untagged") for r in result[:2]] == ["bb:latest", "cc:latest"]
    assert {"Deleted": image.id} in result


def test_remove_keeps_shared_layers(store: ImageStore) -> None:
    a = imported(store, "a")
    b = store.commit(_upper(store.root.parent), a, "b", None)
    with pytest.raises(ConflictError, match="dependent child images"):
        store.remove(a.id)
    assert store.remove("a") == [{"Untagged": "a:latest"}]  # kept: b stands on it
    result = store.remove("b")
    # b goes, then its untagged parent is pruned, like Docker.
    assert next(r.get("Deleted") for r in result if "Deleted" in r) == b.id
    assert {"Deleted": a.id} in result
    assert leftovers(store)["layers"] == []


def test_remove_respects_containers(store: ImageStore) -> None:
    image = imported(store)
    users: dict[str, tuple[str, bool]] = {image.id: ("c" * 64, True)}
    store.in_use = users.get
    with pytest.raises(ConflictError, match=r'repository reference "bb" .*container cccccccccccc'):
        store.remove("bb")
    with pytest.raises(ConflictError, match=r"cannot be forced.*running container"):
        store.remove(image.id, force=True)
    users[image.id] = ("c" * 64, False)
    with pytest.raises(ConflictError, match=r"must be forced.*stopped container"):
        store.remove(image.id)
    # Forced with a stopped container: untagged, but kept for the container's rootfs.
    assert store.remove("bb", force=True) == [{"Untagged": "bb:latest"}]
    assert store.layer_dirs(store.resolve(image.id))[0].is_dir()


# --- commit ------------------------------------------------------------------------------------
def _upper(root: Path) -> Path:
    upper = root / "upper"
    (upper / "etc").mkdir(parents=True, exist_ok=True)
    (upper / "marker").write_text("x\n")
    if not (upper / "etc/group").exists():
        os.mknod(upper / "etc/group", stat.S_IFCHR, os.makedev(0, 0))
    (upper / "etc/hostname").write_text("")  # a mount point the engine excludes
    return upper


def test_commit_adds_one_layer(store: ImageStore, tmp_path: Path) -> None:
    parent = imported(store)
    upper = _upper(tmp_path)
    image = store.commit(upper, parent, "bb:c", {"Cmd": ["sh"]}, exclude=["/etc/hostname"],
                         comment="snap", author="me", container="f" * 64)  # fmt: skip
    assert image.layers[:-1] == parent.layers
    assert len(image.layers) == 2
    assert image.parent == parent.id
    assert image.config["config"] == {"Cmd": ["sh"]}
    assert image.config["history"][-1]["comment"] == "snap"
    assert image.config["container"] == "f" * 64
    with tarfile.open(store.blobs.path(image.layers[-1])) as tar:
        assert tar.getnames() == ["etc", "etc/.wh.group", "marker"]
    top = store.layer_dirs(image)[-1]
    assert tree(top) == {"etc": "dir", "etc/group": "chr 0:0", "marker": "x\n"}
    inspect = store.inspect(image)
    assert inspect["Parent"] == parent.id
    assert inspect["Author"] == "me"
    assert inspect["RootFS"]["Layers"] == list(image.layers)
    assert inspect["GraphDriver"]["Data"]["UpperDir"] == str(top)


def test_commit_only_marker(store: ImageStore, tmp_path: Path) -> None:
    parent = imported(store)
    upper = tmp_path / "u2"
    upper.mkdir()
    (upper / "marker").write_text("x\n")
    image = store.commit(upper, parent, None, None)
    with tarfile.open(store.blobs.path(image.layers[-1])) as tar:
        assert tar.getnames() == ["marker"]
    assert image.repo_tags == ()
    assert image.config["config"] == parent.config["config"]


# --- failures leave nothing ----------------------------------------------------------------
def test_bad_rootfs_leaves_nothing(store: ImageStore) -> None:
    with pytest.raises(ConfigError, match="rootfs archive"):
        store.import_rootfs(io.BytesIO(tar_bytes([f("../x")])), "bad", None)
    with pytest.raises(ConfigError, match="invalid reference format"):
        store.import_rootfs(io.BytesIO(rootfs_tar()), "Bad:Name", None)
    assert leftovers(store) == {"blobs": [], "layers": [], "tmp": [], "root": []}
    assert store.list() == []


# --- registry-facing API -----------------------------------------------------------------------
def test_put_blob_verifies_digest(store: ImageStore) -> None:
    digest = store.put_blob(b"hello")
    assert store.has_blob(digest)
    assert store.get_blob(digest) == b"hello"
    assert store.blob_size(digest) == 5
    with pytest.raises(ConfigError, match="does not match") as info:
        store.put_blob(io.BytesIO(b"other"), digest="sha256:" + "1" * 64)
    assert info.value.obj == "sha256:" + "1" * 64
    with pytest.raises(ConfigError, match="invalid digest"):
        store.has_blob("md5:abc")
    with pytest.raises(NotFoundError, match="No such blob"):
        store.get_blob("sha256:" + "2" * 64)


def test_register_from_gzip_blobs_like_a_pull(store: ImageStore) -> None:
    raw = rootfs_tar()
    compressed = gzip.compress(raw, mtime=0)
    layer = store.put_blob(compressed)
    config = store.put_blob(json.dumps(image_config([sha256_digest(raw)])).encode())
    repo_digest = "127.0.0.1:5000/bb@sha256:" + "3" * 64
    image = store.register(config, [layer], ["127.0.0.1:5000/bb:t"], repo_digest=repo_digest)
    assert image.layers == (sha256_digest(raw),)
    assert store.resolve(repo_digest).id == image.id
    assert tree(store.layer_dirs(image)[0])["etc/version"] == "v1"
    body, kind = store.manifest(image)
    assert kind == mf.DOCKER_MANIFEST
    parsed = mf.parse_manifest(body, "m")
    assert parsed.config.digest == image.id
    assert [d.digest for d in parsed.layers] == [layer]  # the pulled gzip blob is reused


def test_register_rejects_wrong_layer_and_cleans_up(store: ImageStore) -> None:
    raw = rootfs_tar()
    layer = store.put_blob(gzip.compress(raw))
    config = store.put_blob(json.dumps(image_config(["sha256:" + "4" * 64])).encode())
    with pytest.raises(ConfigError, match="does not match its diff_id") as info:
        store.register(config, [layer], ["x"])
    assert info.value.obj == layer
    assert leftovers(store) == {"blobs": [], "layers": [], "tmp": [], "root": []}


def test_manifest_compresses_deterministically(store: ImageStore) -> None:
    image = imported(store)
    first, _ = store.manifest(image, oci=True)
    layer = mf.parse_manifest(first, "m").layers[0]
    assert layer.media_type == mf.OCI_LAYER_GZIP
    assert gzip.decompress(store.get_blob(layer.digest)) == rootfs_tar()
    again = ImageStore(store.root)
    assert again.manifest(again.resolve("bb"), oci=True)[0] == first
