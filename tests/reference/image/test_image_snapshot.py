"""Snapshots: the mount call on a recording fake (no root), then real overlay mounts (root):
prepare, write, diff, commit, unmount, remove, with /proc/self/mountinfo as the witness that
nothing stays mounted. Timings are printed (run with -s to see them)."""

from __future__ import annotations

import errno
import io
import json
import os
import statistics
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference.errors import ConfigError, ConflictError, KernelError, NotFoundError
from reference.image.blobs import sha256_digest
from reference.image.snapshot import DEFAULT_INIT_FILES, Snapshots
from reference.image.store import Image, ImageStore
from reference.linux.fake import RecordingSyscall
from reference.linux.procfs import parse_mountinfo, read
from tests.reference.image._tars import d, f, image_config, needs_root, rootfs_tar, tar_bytes, tree

root_only = pytest.mark.skipif(needs_root, reason="overlay mounts need root")
# What the engine bind-mounts over and never lets a commit export (Docker: the init layer).
ETC_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")


def bind(source: Path, target: Path) -> None:
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)


def mounts_under(path: Path) -> list[str]:
    prefix = str(path)
    return [m.mount_point for m in parse_mountinfo(read("self", "mountinfo"))
            if m.mount_point.startswith(prefix)]  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "image")


@pytest.fixture
def image(store: ImageStore) -> Image:
    return store.import_rootfs(io.BytesIO(rootfs_tar()), "bb", None)


@pytest.fixture
def snaps(tmp_path: Path, store: ImageStore) -> Iterator[Snapshots]:
    snaps = Snapshots(tmp_path / "overlay", store)
    yield snaps
    for key in os.listdir(snaps.root):
        if not key.startswith("."):
            snaps.remove(key)
    assert mounts_under(tmp_path) == [], "a test left mounts behind"


# --- without root: the mount call itself ------------------------------------------------
def test_prepare_mount_options_on_a_fake(tmp_path: Path, store: ImageStore, image: Image) -> None:
    fake = RecordingSyscall()
    snaps = Snapshots(tmp_path / "overlay", store, fake)
    merged = snaps.prepare("c1", image)
    [(source, target, fstype, flags, data)] = fake.args_of("mount")
    d = tmp_path / "overlay/c1"
    init = next((tmp_path / "overlay/.init").iterdir())
    layer = store.layer_dirs(image)[0]
    assert (source, target, fstype, flags) == ("overlay", str(merged), "overlay", 0)
    assert data == (f"lowerdir={init}:{layer},upperdir={d}/upper,workdir={d}/work,"
                    "index=off,redirect_dir=off,metacopy=off")  # fmt: skip
    assert merged == d / "merged"
    assert tree(init) == {
        ".dockerenv": "", "dev": "dir", "etc": "dir", "proc": "dir", "sys": "dir",
        "dev/pts": "dir", "dev/shm": "dir", "dev/console": "", "etc/hostname": "",
        "etc/hosts": "", "etc/resolv.conf": "", "etc/mtab": "-> /proc/mounts",
    }  # fmt: skip
    assert set(DEFAULT_INIT_FILES) == {"/" + p for p in tree(init) if p not in ("dev", "etc")}


def test_failed_mount_leaves_nothing(tmp_path: Path, store: ImageStore, image: Image) -> None:
    fake = RecordingSyscall()
    fake.fail("mount", errno.EINVAL)
    snaps = Snapshots(tmp_path / "overlay", store, fake)
    with pytest.raises(KernelError, match="Invalid argument"):
        snaps.prepare("c1", image)
    assert not snaps.exists("c1")
    assert [n for n in os.listdir(snaps.root) if n != ".init"] == []


def test_keys_and_missing_snapshots(tmp_path: Path, store: ImageStore, image: Image) -> None:
    snaps = Snapshots(tmp_path / "overlay", store, RecordingSyscall())
    for bad in ("", "../x", "a/b", ".init", "x" * 200):
        with pytest.raises(ConfigError, match="invalid snapshot key"):
            snaps.prepare(bad, image)
    snaps.unmount("nosuch")  # idempotent: nothing to do
    snaps.remove("nosuch")
    with pytest.raises(NotFoundError, match="No such snapshot: nosuch"):
        snaps.upperdir("nosuch")
    with pytest.raises(ConfigError, match="overlay options"):
        Snapshots(tmp_path / "a:b", store)


def test_snapshot_belongs_to_one_image(tmp_path: Path, store: ImageStore, image: Image) -> None:
    snaps = Snapshots(tmp_path / "overlay", store, RecordingSyscall())
    snaps.prepare("c1", image)
    other = store.import_rootfs(io.BytesIO(rootfs_tar(b"v2")), "other", None)
    with pytest.raises(ConflictError, match=f"belongs to image {image.id}"):
        snaps.prepare("c1", other)


# --- real overlay mounts ----------------------------------------------------------------
def overlay_at(path: Path) -> dict[str, str]:
    [entry] = [m for m in parse_mountinfo(read("self", "mountinfo"))
               if m.mount_point == str(path)]  # fmt: skip
    assert entry.fstype == "overlay"
    return dict(o.partition("=")[::2] for o in entry.super_options)


@root_only
def test_prepare_write_diff_commit_unmount_remove(
    tmp_path: Path, store: ImageStore, image: Image, snaps: Snapshots
) -> None:
    merged = snaps.prepare("c1", image)
    options = overlay_at(merged)
    assert options["upperdir"] == str(snaps.upperdir("c1"))
    assert options["lowerdir"].endswith(str(store.layer_dirs(image)[0]))
    assert (merged / "etc/version").read_text() == "v1"
    assert (merged / "etc/hostname").read_text() == ""
    assert (merged / ".dockerenv").exists()
    # The engine's bind mounts over the init layer's files: writes go to the host files.
    (tmp_path / "hosts").write_text("127.0.0.1 localhost\n")
    bind(tmp_path / "hosts", merged / "etc/hosts")
    (merged / "etc/hosts").write_text("10.9.9.9 edited\n")
    (merged / "marker").write_text("x\n")
    (merged / "etc/passwd").write_text("changed\n")
    (merged / "etc/group").unlink()
    assert snaps.diff("c1") == [
        ("C", "/etc"), ("D", "/etc/group"), ("C", "/etc/passwd"), ("A", "/marker")
    ]  # fmt: skip
    committed = store.commit(snaps.upperdir("c1"), image, "bb:c", None, exclude=ETC_FILES)
    with tarfile.open(store.blobs.path(committed.layers[-1])) as tar:
        assert tar.getnames() == ["etc", "etc/.wh.group", "etc/passwd", "marker"]
    snaps.unmount("c1")
    assert mounts_under(tmp_path) == []
    snaps.unmount("c1")  # idempotent
    # Started again: the same upper dir, mounted again.
    merged = snaps.prepare("c1", image)
    assert (merged / "marker").read_text() == "x\n"
    assert not (merged / "etc/group").exists()
    assert snaps.prepare("c1", image) == merged  # already mounted: nothing more
    assert len(mounts_under(tmp_path)) == 1
    snaps.remove("c1")
    snaps.remove("c1")  # idempotent
    assert mounts_under(tmp_path) == []
    assert not (tmp_path / "overlay/c1").exists()
    # The commit mounts like any image: the deletion is a whiteout in its top layer.
    merged = snaps.prepare("c2", committed)
    assert (merged / "marker").read_text() == "x\n"
    assert not (merged / "etc/group").exists()
    assert (merged / "etc/passwd").read_text() == "changed\n"


@root_only
def test_commit_after_marker_holds_only_marker(
    tmp_path: Path, store: ImageStore, image: Image, snaps: Snapshots
) -> None:
    merged = snaps.prepare("c1", image)
    for name in ETC_FILES:  # as the engine does: bind mounts onto the init layer's files
        host = tmp_path / name.rsplit("/", 1)[1]
        host.write_text("engine's\n")
        bind(host, merged / name.lstrip("/"))
    (merged / "marker").write_text("x\n")
    (merged / "etc/hostname").write_text("web1\n")  # through the bind mount: not the rootfs
    assert snaps.diff("c1") == [("A", "/marker")]
    committed = store.commit(snaps.upperdir("c1"), image, None, None, exclude=ETC_FILES)
    with tarfile.open(store.blobs.path(committed.layers[-1])) as tar:
        assert tar.getnames() == ["marker"]
    snaps.remove("c1")  # also takes the bind mounts inside the rootfs off
    assert mounts_under(tmp_path) == []


def deep_image(store: ImageStore, count: int) -> Image:
    """An image of `count` layers, each adding one file, the last deleting the first's."""
    layers = [tar_bytes([d("l"), f(f"l/{n:03d}", str(n).encode())]) for n in range(count - 1)]
    layers.append(tar_bytes([d("l"), f("l/.wh.000")]))
    blobs = [store.put_blob(layer) for layer in layers]
    config = store.put_blob(json.dumps(image_config([sha256_digest(x) for x in layers])).encode())
    return store.register(config, blobs, [f"deep:{count}"])


@root_only
@pytest.mark.parametrize(("count", "force"), [(3, True), (80, False)])
def test_many_layers_use_the_new_mount_api(
    tmp_path: Path, store: ImageStore, snaps: Snapshots, count: int, force: bool
) -> None:
    image = deep_image(store, count)
    snaps.force_mount_api = force
    merged = snaps.prepare("deep", image)
    assert sorted(os.listdir(merged / "l")) == [f"{n:03d}" for n in range(1, count - 1)]
    entry = [m for m in parse_mountinfo(read("self", "mountinfo"))
             if m.mount_point == str(merged)]  # fmt: skip
    assert len(entry) == 1
    assert entry[0].fstype == "overlay"
    lowers = [o for o in entry[0].super_options if o.startswith("lowerdir+=")]
    assert len(lowers) == count + 1  # the image's layers and the init layer
    snaps.remove("deep")
    assert mounts_under(tmp_path) == []


@root_only
def test_prepare_timing(store: ImageStore, image: Image, snaps: Snapshots) -> None:
    snaps.remove(snaps.prepare("warm", image).parent.name)  # init layer made, ctypes loaded
    prepare, remove = [], []
    for n in range(20):
        t0 = time.perf_counter()
        snaps.prepare(f"t{n}", image)
        t1 = time.perf_counter()
        snaps.remove(f"t{n}")
        t2 = time.perf_counter()
        prepare.append((t1 - t0) * 1000)
        remove.append((t2 - t1) * 1000)
    print(
        f"\nprepare+mount: median {statistics.median(prepare):.2f} ms, "
        f"max {max(prepare):.2f} ms; unmount+remove: median {statistics.median(remove):.2f} ms"
    )
    assert statistics.median(prepare) < 50
