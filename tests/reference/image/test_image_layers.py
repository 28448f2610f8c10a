"""Layer tars ⇄ overlay directories on fake dirs: whiteouts both ways, determinism, digests,
refusals. Whiteout devices (0:0) need no privilege on kernels >= 5.8; the opaque xattr is in
the trusted namespace, so those tests need root."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from reference.errors import ConfigError
from reference.image.layers import (
    OPAQUE_XATTR,
    changes,
    decompressed,
    in_lowers,
    pack,
    unpack,
)
from tests.reference.image._tars import Entry, d, f, needs_root, tar_bytes, tree

# sha256 of 1024 zero bytes: the diff_id of Docker's empty layer.
EMPTY_LAYER = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
root_only = pytest.mark.skipif(needs_root, reason="trusted.* xattrs need root")


def unpack_bytes(data: bytes, dest: Path, what: str = "layer.tar") -> int:
    return unpack(io.BytesIO(data), dest, what)


def pack_bytes(upper: Path, exclude: tuple[str, ...] = ()) -> bytes:
    out = io.BytesIO()
    pack(upper, out, exclude)
    return out.getvalue()


def members(data: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m.name, m.type) for m in tar.getmembers()]


def whiteout(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR, os.makedev(0, 0))


# --- unpack: OCI whiteouts → overlay whiteouts ---------------------------------------------
def test_unpack_plain_layer(tmp_path: Path) -> None:
    data = tar_bytes([
        d("etc"), f("etc/passwd", b"root\n", 0o600),
        Entry("etc/link", kind=tarfile.SYMTYPE, link="passwd"),
        Entry("etc/hard", kind=tarfile.LNKTYPE, link="etc/passwd"),
        f("deep/er/file", b"x"),  # parents not listed: made 0755
    ])  # fmt: skip
    size = unpack_bytes(data, tmp_path / "l")
    assert tree(tmp_path / "l") == {
        "etc": "dir", "deep": "dir", "etc/passwd": "root\n", "etc/link": "-> passwd",
        "etc/hard": "root\n", "deep/er": "dir", "deep/er/file": "x",
    }  # fmt: skip
    st = (tmp_path / "l/etc/passwd").stat()
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_nlink == 2  # the hard link shares the inode
    assert st.st_mtime == 1_700_000_000
    assert stat.S_IMODE((tmp_path / "l/deep").stat().st_mode) == 0o755
    assert size == 5 + 1 + len("passwd")  # files and symlink targets, hard links once


def test_unpack_whiteout_becomes_char_device_0_0(tmp_path: Path) -> None:
    unpack_bytes(tar_bytes([d("etc"), f("etc/.wh.group"), f(".wh.tmp")]), tmp_path / "l")
    assert tree(tmp_path / "l") == {"etc": "dir", "etc/group": "chr 0:0", "tmp": "chr 0:0"}


@root_only
def test_unpack_opaque_marker_becomes_xattr(tmp_path: Path) -> None:
    unpack_bytes(tar_bytes([d("var"), f("var/.wh..wh..opq"), f("var/new", b"n")]), tmp_path / "l")
    assert os.getxattr(tmp_path / "l/var", OPAQUE_XATTR) == b"y"
    assert tree(tmp_path / "l") == {"var": "dir", "var/new": "n"}


def test_unpack_later_member_wins(tmp_path: Path) -> None:
    unpack_bytes(
        tar_bytes([f("a", b"one"), f("a", b"two"), d("b"), f("b", b"file")]), tmp_path / "l"
    )
    assert tree(tmp_path / "l") == {"a": "two", "b": "file"}


@pytest.mark.parametrize(
    ("entries", "member", "reason"),
    [
        ([f("../evil")], "../evil", "escapes the layer"),
        ([f("a/../../evil")], "a/../../evil", "escapes the layer"),
        ([Entry("x", kind=tarfile.SYMTYPE, link="/etc"), f("x/passwd")], "x/passwd",
         "not a directory"),
        ([Entry("h", kind=tarfile.LNKTYPE, link="missing")], "h", "hard link"),
        ([f(".wh...")], ".wh...", "invalid whiteout"),
    ],
)  # fmt: skip
def test_unpack_refuses_escapes_naming_the_member(
    tmp_path: Path, entries: list[Entry], member: str, reason: str
) -> None:
    with pytest.raises(ConfigError, match=reason) as info:
        unpack_bytes(tar_bytes(entries), tmp_path / "l", "abc/layer.tar")
    assert info.value.obj == member
    assert "abc/layer.tar" in str(info.value)
    assert not (tmp_path / "evil").exists()


def test_unpack_corrupt_tar_names_the_origin(tmp_path: Path) -> None:
    data = tar_bytes([f("a", b"x" * 2000)])[:1200]  # cut inside the file's data
    with pytest.raises(ConfigError, match="invalid layer tar") as info:
        unpack_bytes(data, tmp_path / "l", "0123/layer.tar")
    assert info.value.obj == "0123/layer.tar"


# --- pack: overlay upperdir → OCI tar ----------------------------------------------------------
def stamp(top: Path) -> None:
    """Give every entry the same mtime: packing keeps mtimes, the test wants equal trees."""
    for path in [top, *top.rglob("*")]:
        os.utime(path, (1_700_000_000,) * 2, follow_symlinks=False)


def make_upper(root: Path) -> Path:
    upper = root / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc/hosts").write_text("h\n")
    (upper / "marker").write_text("x\n")
    whiteout(upper / "etc/group")
    os.link(upper / "marker", upper / "marker2")
    (upper / "lnk").symlink_to("marker")
    stamp(upper)
    return upper


def test_pack_whiteouts_hardlinks_and_order(tmp_path: Path) -> None:
    data = pack_bytes(make_upper(tmp_path))
    assert members(data) == [
        ("etc", tarfile.DIRTYPE),
        ("etc/.wh.group", tarfile.REGTYPE),
        ("etc/hosts", tarfile.REGTYPE),
        ("lnk", tarfile.SYMTYPE),
        ("marker", tarfile.REGTYPE),
        ("marker2", tarfile.LNKTYPE),
    ]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        wh = tar.getmember("etc/.wh.group")
        assert (wh.size, wh.mode) == (0, 0o600)
        assert tar.getmember("marker2").linkname == "marker"
        assert tar.getmember("lnk").linkname == "marker"
        assert all(m.uname == "" and m.gname == "" for m in tar.getmembers())


@root_only
def test_pack_opaque_dir_gets_marker(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "var").mkdir(parents=True)
    os.setxattr(upper / "var", OPAQUE_XATTR, b"y")
    (upper / "var/new").write_text("n")
    assert members(pack_bytes(upper)) == [
        ("var", tarfile.DIRTYPE),
        ("var/.wh..wh..opq", tarfile.REGTYPE),
        ("var/new", tarfile.REGTYPE),
    ]


def test_pack_excludes_paths(tmp_path: Path) -> None:
    upper = make_upper(tmp_path)
    names = [n for n, _ in members(pack_bytes(upper, ("/etc/hosts", "/lnk")))]
    assert names == ["etc", "etc/.wh.group", "marker", "marker2"]


def test_pack_is_deterministic(tmp_path: Path) -> None:
    first = make_upper(tmp_path / "a")
    # The same tree made in another order (other inodes, other directory order) packs the same.
    second = tmp_path / "b/upper"
    second.mkdir(parents=True)
    (second / "lnk").symlink_to("marker")
    (second / "marker").write_text("x\n")
    os.link(second / "marker", second / "marker2")
    (second / "etc").mkdir()
    whiteout(second / "etc/group")
    (second / "etc/hosts").write_text("h\n")
    stamp(second)
    assert pack_bytes(first) == pack_bytes(first)
    assert pack_bytes(first) == pack_bytes(second)


def test_empty_layer_is_dockers_empty_layer(tmp_path: Path) -> None:
    (tmp_path / "upper").mkdir()
    data = pack_bytes(tmp_path / "upper")
    assert data == b"\0" * 1024
    assert "sha256:" + hashlib.sha256(data).hexdigest() == EMPTY_LAYER


def test_pack_unpack_round_trip(tmp_path: Path) -> None:
    upper = make_upper(tmp_path)
    data = pack_bytes(upper)
    unpack_bytes(data, tmp_path / "l")
    assert tree(tmp_path / "l") == tree(upper)
    assert pack_bytes(tmp_path / "l") == data  # and back to the same bytes


# --- diff ----------------------------------------------------------------------------------
def test_changes_add_change_delete(tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc/group").write_text("g")
    (lower / "etc/hosts").write_text("h")
    upper = make_upper(tmp_path)
    assert changes(upper, [lower]) == [
        ("C", "/etc"), ("D", "/etc/group"), ("C", "/etc/hosts"),
        ("A", "/lnk"), ("A", "/marker"), ("A", "/marker2"),
    ]  # fmt: skip


def test_in_lowers_respects_whiteouts(tmp_path: Path) -> None:
    top, bottom = tmp_path / "top", tmp_path / "bottom"
    (bottom / "a").mkdir(parents=True)
    (bottom / "a/f").write_text("x")
    (bottom / "gone").write_text("x")
    top.mkdir()
    whiteout(top / "gone")
    assert in_lowers("a/f", [top, bottom])
    assert not in_lowers("gone", [top, bottom])
    assert not in_lowers("nope", [top, bottom])
    (top / "a").write_text("now a file")  # a file over the directory hides what was in it
    assert not in_lowers("a/f", [top, bottom])


# --- compression -----------------------------------------------------------------------------
@pytest.mark.parametrize("codec", ["gzip", "bz2", "lzma", "plain"])
def test_decompressed_sniffs_the_codec(codec: str) -> None:
    import bz2
    import gzip
    import lzma

    raw = tar_bytes([f("a", b"hello")])
    codecs: dict[str, Callable[[bytes], bytes]] = {
        "gzip": gzip.compress, "bz2": bz2.compress, "lzma": lzma.compress, "plain": bytes
    }  # fmt: skip
    packed = codecs[codec](raw)
    assert decompressed(io.BytesIO(packed), "x").read() == raw
