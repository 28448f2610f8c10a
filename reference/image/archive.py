"""`docker load` and `docker save`: image archives in and out of an ImageStore.

Load reads a docker-save tar (manifest.json + config + `<id>/layer.tar`, Docker 20.10's
format) or an OCI image layout tar (index.json + blobs/sha256/...), either possibly gzip, bzip2
or xz compressed, from a stream that need not be seekable (`docker save X | load`): members come
in any order, so each file is spooled once into the store's scratch area while being hashed,
and then renamed into the blob store (no second copy) once the manifest says what it is.

Save writes Docker 20.10's docker-save layout, which `docker load` accepts: one
`<diff_id hex>/layer.tar` per distinct layer, `<config hex>.json`, `manifest.json` and the
legacy `repositories`. Every entry has mtime 0 and a fixed order, so the same images always
save to the same bytes.
"""

from __future__ import annotations

import io
import json
import lzma
import posixpath
import tarfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from reference.errors import ConfigError
from reference.image import manifest as mf
from reference.image import refs
from reference.image.blobs import copy_hashed

if TYPE_CHECKING:
    from reference.image.store import Image, ImageStore

_TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError)
_MAX_LINKS = 16


@dataclass
class _Spool:
    """The archive's files as spooled (name → path, digest) and its links (name → target)."""

    files: dict[str, tuple[Path, str]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> tuple[Path, str]:
        """The file a member name leads to, through symlinks and hard links."""
        seen = 0
        key = _norm(name)
        while key not in self.files:
            if key not in self.links or seen > _MAX_LINKS:
                raise ConfigError("invalid archive: member not found", obj=name)
            key, seen = self.links[key], seen + 1
        return self.files[key]

    def json(self, name: str) -> Any:
        path, _ = self.get(name)
        try:
            return json.loads(path.read_bytes())
        except ValueError as e:
            raise ConfigError(f"invalid archive: bad JSON ({e})", obj=name) from None


@dataclass(frozen=True)
class _Entry:
    """One image to load: member names of its config and layers, and its tags."""

    config: str
    layers: tuple[str, ...]
    tags: tuple[str, ...]


def _norm(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


def _spool(archive: BinaryIO, scratch: Path) -> _Spool:
    spool = _Spool()
    current = "archive"  # what a read error names: the member being read, if any
    try:
        with tarfile.open(fileobj=archive, mode="r|*") as tar:
            for number, member in enumerate(tar):
                current = member.name
                name = _norm(member.name)
                if member.isreg():
                    src = tar.extractfile(member)
                    assert src is not None  # a regular member always has a file object
                    path = scratch / str(number)
                    spool.files[name] = (path, copy_hashed(src, path)[0])
                elif member.issym():
                    spool.links[name] = _norm(
                        posixpath.join(posixpath.dirname(name), member.linkname)
                    )
                elif member.islnk():
                    spool.links[name] = _norm(member.linkname)
                current = "archive"
    except _TAR_ERRORS as e:
        raise ConfigError(f"invalid archive ({e})", obj=current) from None
    return spool


def _docker_entries(spool: _Spool) -> list[_Entry]:
    doc = spool.json("manifest.json")
    if not isinstance(doc, list):
        raise ConfigError("invalid archive: manifest is not a list", obj="manifest.json")
    entries = []
    for item in doc:
        try:
            entries.append(
                _Entry(
                    str(item["Config"]),
                    tuple(str(x) for x in item["Layers"]),
                    tuple(str(t) for t in item.get("RepoTags") or ()),
                )
            )
        except (KeyError, TypeError):
            raise ConfigError(
                f"invalid archive: bad manifest entry {item!r}", obj="manifest.json"
            ) from None
    return entries


def _blob_member(spool: _Spool, digest: str) -> str:
    name = "blobs/" + digest.replace(":", "/", 1)
    _, actual = spool.get(name)
    if actual != digest:
        raise ConfigError(
            f"invalid archive: blob does not match its digest (got {actual})", obj=name
        )
    return name


def _oci_tag(annotations: Any) -> tuple[str, ...]:
    """The name an OCI layout gives a manifest. A bare `org.opencontainers.image.ref.name`
    (just a tag, as skopeo writes) names no repository: such an image loads untagged."""
    full = annotations.get(mf.ANNOTATION_IMAGE_NAME)
    if full:
        return (str(full),)
    name = str(annotations.get(mf.ANNOTATION_REF_NAME) or "")
    return (name,) if ("/" in name or ":" in name) else ()


def _oci_entries(spool: _Spool) -> list[_Entry]:
    index_member = "index.json"
    entries = []
    for desc in mf.parse_index(spool.get(index_member)[0].read_bytes(), index_member):
        member = _blob_member(spool, desc.digest)
        data = spool.get(member)[0].read_bytes()
        if mf.is_index(data, member, desc.media_type or None):
            chosen = mf.select_platform(mf.parse_index(data, member), member)
            member = _blob_member(spool, chosen.digest)
            data, desc_type = spool.get(member)[0].read_bytes(), chosen.media_type
        else:
            desc_type = desc.media_type
        manifest = mf.parse_manifest(data, member, desc_type or None)
        layers = tuple(_blob_member(spool, layer.digest) for layer in manifest.layers)
        config = _blob_member(spool, manifest.config.digest)
        entries.append(_Entry(config, layers, _oci_tag(desc.annotations)))
    return entries


def load(store: ImageStore, archive: BinaryIO) -> list[str]:
    """Load every image in the archive; the refs loaded (tags, or ids when untagged)."""
    loaded: list[str] = []
    with store.blobs.scratch() as scratch:
        spool = _spool(archive, scratch)
        if "manifest.json" in spool.files:
            entries = _docker_entries(spool)
        elif "index.json" in spool.files:
            entries = _oci_entries(spool)
        else:
            raise ConfigError(
                "invalid archive: no manifest.json (docker save) or index.json (OCI layout)",
                obj="manifest.json",
            )
        for entry in entries:  # check every member first: a bad archive loads nothing
            if not isinstance(spool.json(entry.config), dict):
                raise ConfigError("invalid archive: config is not an object", obj=entry.config)
            for layer in entry.layers:
                spool.get(layer)
            for tag in entry.tags:
                refs.parse(tag)
        adopted: set[str] = set()
        for entry in entries:
            digests = []
            for name in (entry.config, *entry.layers):
                path, digest = spool.get(name)
                if digest not in adopted and path.exists():
                    store.blobs.adopt(path, digest)
                adopted.add(digest)
                digests.append(digest)
            image = store.register(digests[0], digests[1:], entry.tags, what=entry.layers)
            loaded += [refs.normalize(t) for t in entry.tags] or [image.id]
    return loaded


def _info(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mtime = size, kind, 0
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def _plan(store: ImageStore, names: Sequence[str]) -> dict[str, tuple[Image, list[str]]]:
    """Image id → (image, tags to save). A name without a tag saves every tag of that
    repository, as `docker save bb` does."""
    plan: dict[str, tuple[Image, list[str]]] = {}

    def add(image: Image, tag: str | None) -> None:
        tags = plan.setdefault(image.id, (image, []))[1]
        if tag and tag not in tags:
            tags.append(tag)

    every = store.list()
    for name in names:
        try:
            parsed = refs.parse(name, default_tag=False)
        except ConfigError:
            parsed = None
        if parsed is not None and parsed.tag is None and parsed.digest is None:
            tagged = [
                (i, t) for i in every for t in i.repo_tags if t.rpartition(":")[0] == parsed.name
            ]
            if tagged:
                for image, tag in tagged:
                    add(image, tag)
                continue
        image = store.resolve(name)
        named = refs.normalize(name) if parsed is not None and parsed.digest is None else None
        add(image, named if named in image.repo_tags else None)
    return plan


def save(store: ImageStore, names: Sequence[str], out: BinaryIO) -> None:
    """Write the images as a docker-save tar; NotFoundError naming a ref before any byte."""
    plan = _plan(store, names)
    for image, _ in plan.values():  # every blob must be there before anything is written
        for digest in (image.id, *image.layers):
            store.blobs.size(digest)
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for image, tags in plan.values():
            layer_names = []
            for diff_id in image.layers:
                hexd = diff_id[7:]
                layer_names.append(f"{hexd}/layer.tar")
                if hexd in written:
                    continue
                written.add(hexd)
                tar.addfile(_info(hexd, kind=tarfile.DIRTYPE))
                with store.blobs.open(diff_id) as blob:
                    info = _info(f"{hexd}/layer.tar", store.blobs.size(diff_id))
                    tar.addfile(info, blob)
            config = store.blobs.read(image.id)
            tar.addfile(_info(f"{image.id[7:]}.json", len(config)), io.BytesIO(config))
            manifest.append(
                {"Config": f"{image.id[7:]}.json", "RepoTags": tags or None, "Layers": layer_names}
            )
            for tag in tags:
                repo, _, name = tag.rpartition(":")
                if image.layers:
                    repositories.setdefault(repo, {})[name] = image.layers[-1][7:]
        for name, doc in (("manifest.json", manifest), ("repositories", repositories)):
            data = json.dumps(doc, separators=(",", ":")).encode()
            tar.addfile(_info(name, len(data)), io.BytesIO(data))
