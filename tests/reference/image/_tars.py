"""Small builders shared by the image tests: tars from entry lists, tiny images."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from reference.image.blobs import sha256_digest

needs_root = os.geteuid() != 0


@dataclass
class Entry:
    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    link: str = ""
    mode: int = 0o644
    mtime: int = 1_700_000_000
    pax: dict[str, str] = field(default_factory=dict)


def tar_bytes(entries: Iterable[Entry]) -> bytes:
    """A tar of the entries, in order (python's tarfile: record-padded, PAX when needed)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type, info.mode, info.mtime = e.kind, e.mode, e.mtime
            info.linkname = e.link
            info.pax_headers = dict(e.pax)
            if e.kind == tarfile.REGTYPE:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def d(name: str, mode: int = 0o755) -> Entry:
    return Entry(name, kind=tarfile.DIRTYPE, mode=mode)


def f(name: str, data: bytes = b"", mode: int = 0o644) -> Entry:
    return Entry(name, data, mode=mode)


def rootfs_tar(marker: bytes = b"v1") -> bytes:
    """A tiny rootfs: a few dirs and files (no binaries: nothing here runs)."""
    return tar_bytes([
        d("bin"), d("etc"), d("tmp", 0o1777),
        f("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        f("etc/group", b"root:x:0:\n"),
        f("etc/version", marker),
        Entry("bin/sh", kind=tarfile.SYMTYPE, link="busybox", mode=0o777),
    ])  # fmt: skip


def docker_save_tar(
    config: dict[str, object], layers: list[bytes], tags: list[str]
) -> tuple[bytes, str]:
    """A docker-save archive of one image; returns it and the image id."""
    raw_config = json.dumps(config).encode()
    image_id = sha256_digest(raw_config)
    entries = []
    names = []
    for number, layer in enumerate(layers):
        names.append(f"layer{number}/layer.tar")
        entries += [d(f"layer{number}"), f(names[-1], layer)]
    entries.append(f(f"{image_id[7:]}.json", raw_config))
    manifest = [{"Config": f"{image_id[7:]}.json", "RepoTags": tags, "Layers": names}]
    entries.append(f("manifest.json", json.dumps(manifest).encode()))
    return tar_bytes(entries), image_id


def image_config(diff_ids: list[str]) -> dict[str, object]:
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }


def tree(root: Path) -> dict[str, str]:
    """A readable picture of a directory: path → kind (and content or target)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            st = path.lstat()
            if path.is_symlink():
                out[rel] = f"-> {os.readlink(path)}"
            elif path.is_dir():
                out[rel] = "dir"
            elif (st.st_mode & 0o170000) == 0o020000:
                out[rel] = f"chr {os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
            else:
                out[rel] = path.read_bytes().decode(errors="replace")
    return out
