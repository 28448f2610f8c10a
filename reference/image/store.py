"""ImageStore: images as content-addressed configs over unpacked, shared layers.

Layout under `root` (data-root/image):

    blobs/sha256/<hex>   configs, layer tars (uncompressed, named by diff_id) and their gzip
                         forms when a registry gave or wanted one
    layers/<hex>/        each layer unpacked once (overlay whiteouts), named by its diff_id,
                         shared by every image and container using it
    index.json           images, tags, recorded layers (see index.py)
    tmp/                 per-operation scratch (same file system: finished files are renamed)

An image id is `sha256:<digest of its config blob>`; the config's rootfs.diff_ids list its
layers. refd is threaded: one lock guards the index and its writes; the slow work (hashing,
unpacking) runs outside it, and the digests an operation is producing are pinned so that a
concurrent `remove` or `discard` (removal.py) never collects them. A failed add leaves
nothing behind.

For the registry client: `put_blob` / `get_blob` / `open_blob` / `has_blob` / `blob_size`,
`register` (an image from a config blob and layer blobs, compressed or not), `manifest` (a
schema-2 or OCI manifest with gzip layers, compressed on demand) and `add_repo_digest`.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from reference.errors import ConfigError, NotFoundError
from reference.image import imageconfig, refs
from reference.image.blobs import (
    BlobStore,
    HashingWriter,
    check_digest,
    copy_hashed,
    scratch_name,
    sweep_stale,
)
from reference.image.index import Index
from reference.image.layers import compression, decompressed, pack, tree_size, unpack
from reference.image.removal import InUse, Removal


@dataclass(frozen=True)
class Image:
    id: str  # "sha256:<config digest hex>"
    repo_tags: tuple[str, ...]
    config: dict[str, Any]  # the image config JSON
    layers: tuple[str, ...]  # diff_ids, lowest first
    size: int
    repo_digests: tuple[str, ...] = ()
    parent: str = ""
    last_tag_time: str = ""


class ImageStore(Removal):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = BlobStore(root)
        self.layers_root = root / "layers"
        self.layers_root.mkdir(exist_ok=True)
        sweep_stale(self.layers_root, ".tmp-")
        self.in_use: InUse | None = None  # set by the engine (see `remove`)
        self._index = Index(root / "index.json")
        self._lock = threading.RLock()
        self._pins: Counter[str] = Counter()
        self._configs: dict[str, dict[str, Any]] = {}

    @contextlib.contextmanager
    def _pinned(self, digests: Sequence[str]) -> Iterator[None]:
        with self._lock:
            self._pins.update(digests)
        try:
            yield
        finally:
            with self._lock:
                self._pins.subtract(digests)
                self._pins = +self._pins  # drop the zero counts

    def _image(self, image_id: str) -> Image:
        index = self._index
        config = self._configs.get(image_id)
        if config is None:
            config = self._configs[image_id] = json.loads(self.blobs.read(image_id))
        layers = tuple(config.get("rootfs", {}).get("diff_ids") or ())
        entry = index.images[image_id]
        return Image(
            id=image_id,
            repo_tags=index.tags_of(image_id),
            config=config,
            layers=layers,
            size=sum(index.layer_size(d) or 0 for d in layers),
            repo_digests=tuple(entry.get("repo_digests") or ()),
            parent=str(entry.get("parent") or ""),
            last_tag_time=str(entry.get("last_tag_time") or ""),
        )

    # --- lookup and tags -----------------------------------------------------------------
    def resolve(self, ref_or_id: str) -> Image:
        """By full id, tag, `name@digest` or unambiguous id prefix; NotFoundError naming it."""
        with self._lock:
            self._index.refresh()
            image_id = self._index.lookup(ref_or_id)
            if image_id is None:
                raise NotFoundError("No such image", obj=ref_or_id)
            return self._image(image_id)

    def list(self) -> list[Image]:
        """Every image, newest first (as `docker images` orders them)."""
        with self._lock:
            self._index.refresh()
            images = [self._image(i) for i in self._index.images]
        return sorted(images, key=lambda i: str(i.config.get("created", "")), reverse=True)

    def tag(self, source: str, ref: str) -> None:
        parsed = refs.parse(ref)
        if parsed.digest is not None:
            raise ConfigError("refusing to create a tag with a digest reference", obj=ref)
        with self._lock:
            image = self.resolve(source)
            self._index.tags[str(parsed)] = image.id
            self._index.images[image.id]["last_tag_time"] = imageconfig.now()
            self._index.save()

    def add_repo_digest(self, image_id: str, repo_digest: str) -> None:
        """Record `name@sha256:<manifest digest>` (after a pull or a push)."""
        parsed = refs.parse(repo_digest, default_tag=False)
        if parsed.digest is None:
            raise ConfigError("not a digest reference", obj=repo_digest)
        with self._lock:
            self._index.refresh()
            entry = self._index.images.get(image_id)
            if entry is None:
                raise NotFoundError("No such image", obj=image_id)
            digests = entry.setdefault("repo_digests", [])
            if f"{parsed.name}@{parsed.digest}" not in digests:
                digests.append(f"{parsed.name}@{parsed.digest}")
                self._index.save()

    # --- layers --------------------------------------------------------------------------
    def layer_dirs(self, image: Image) -> builtins.list[Path]:
        """The unpacked layers, lowest first; a layer lost from disk is unpacked again."""
        dirs = [self.layers_root / d[7:] for d in image.layers]
        for diff_id, path in zip(image.layers, dirs, strict=True):
            if not path.is_dir():
                self._unpack_layer(diff_id, diff_id)
        return dirs

    def _unpack_layer(self, diff_id: str, what: str) -> int:
        """Unpack the layer blob `diff_id` once; its size (bytes of files and symlinks)."""
        target = self.layers_root / check_digest(diff_id)
        if target.is_dir():
            with self._lock:
                known = self._index.layer_size(diff_id)
            return tree_size(target) if known is None else known
        tmp = self.layers_root / scratch_name(".tmp-")
        try:
            with self.blobs.open(diff_id) as src:
                size = unpack(src, tmp, what)
            try:
                os.rename(tmp, target)
            except OSError:  # a concurrent operation unpacked it first: same content
                if not target.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return size

    def _layer_from_blob(self, blob: str, diff_id: str, what: str) -> tuple[int, str | None]:
        """Make layer `diff_id` from `blob` (its tar, or the tar compressed); its size and the
        blob's digest if that is the layer's gzip form."""
        check_digest(diff_id)
        with self.blobs.open(blob) as f:
            kind = compression(f.read(6))
        mismatch = f"layer does not match its diff_id {diff_id}"
        if kind is None and blob != diff_id:
            raise ConfigError(f"{mismatch} (got {blob})", obj=what)
        if kind is not None and not self.blobs.has(diff_id):
            with self.blobs.scratch() as tmp, self.blobs.open(blob) as f:
                actual, _ = copy_hashed(decompressed(f, what), tmp / "layer.tar")
                if actual != diff_id:
                    raise ConfigError(f"{mismatch} (got {actual})", obj=what)
                self.blobs.adopt(tmp / "layer.tar", diff_id)
        return self._unpack_layer(diff_id, what), blob if kind == "gzip" else None

    # --- adding images -------------------------------------------------------------------
    def register(
        self, config_digest: str, layer_blobs: Sequence[str], tags: Sequence[str] = (), *,
        parent: str = "", repo_digest: str | None = None, what: Sequence[str] = (),
    ) -> Image:  # fmt: skip
        """Add the image whose config is blob `config_digest` from its layer blobs (tars, or
        gzip/bzip2/xz tars, lowest first, matching the config's diff_ids) and tag it. `what`
        names each layer's origin in errors (archive members; default the blob digest).
        On failure the blobs and layers this attempt brought are discarded."""
        touched = [config_digest, *layer_blobs]  # _register adds the diff_ids it makes
        try:
            with self._pinned(touched[:]):
                return self._register(
                    config_digest,
                    layer_blobs,
                    tags,
                    parent,
                    repo_digest,
                    list(what) or list(layer_blobs),
                    touched,
                )
        except BaseException:
            self.discard(touched)
            raise

    def _register(
        self,
        config_digest: str,
        layer_blobs: Sequence[str],
        tags: Sequence[str],
        parent: str,
        repo_digest: str | None,
        names: builtins.list[str],
        touched: builtins.list[str],
    ) -> Image:
        try:
            config = json.loads(self.blobs.read(config_digest))
            diff_ids = [str(d) for d in config["rootfs"]["diff_ids"]]
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"invalid image config ({e})", obj=config_digest) from None
        if len(diff_ids) != len(layer_blobs):
            raise ConfigError(f"config lists {len(diff_ids)} layers, {len(layer_blobs)} given",
                              obj=config_digest)  # fmt: skip
        parsed_tags = [str(refs.parse(t)) for t in tags]
        touched += diff_ids
        with self._pinned(diff_ids):
            made = [self._layer_from_blob(b, d, n)
                    for b, d, n in zip(layer_blobs, diff_ids, names, strict=True)]  # fmt: skip
            with self._lock:
                index = self._index
                index.refresh()
                for diff_id, (size, gzip_digest) in zip(diff_ids, made, strict=True):
                    layer = index.layers.setdefault(diff_id, {})
                    layer["size"] = size
                    if gzip_digest:
                        layer["gzip"] = gzip_digest
                entry = index.images.setdefault(config_digest, {})
                if parent:
                    entry["parent"] = parent
                if repo_digest and repo_digest not in entry.setdefault("repo_digests", []):
                    entry["repo_digests"].append(repo_digest)
                for tag in parsed_tags:
                    index.tags[tag] = config_digest
                    entry["last_tag_time"] = imageconfig.now()
                self._configs[config_digest] = config
                index.save()
                return self._image(config_digest)

    def _add_layer_tar(self, write: Callable[[BinaryIO], object]) -> str:
        """Store the layer tar `write` produces; return its diff_id."""
        with self.blobs.scratch() as tmp:
            with open(tmp / "layer.tar", "wb") as f:
                writer = HashingWriter(f)
                write(writer)  # type: ignore[arg-type]
            self.blobs.adopt(tmp / "layer.tar", writer.digest)
        return writer.digest

    def _add_image(
        self,
        config: dict[str, Any],
        layers: Sequence[str],
        ref: str | None,
        parent: str = "",
        what: Sequence[str] = (),
    ) -> Image:
        digest = self.put_blob(json.dumps(config, separators=(",", ":")).encode())
        return self.register(digest, layers, [ref] if ref else [], parent=parent, what=what)

    def import_rootfs(
        self,
        archive: BinaryIO,
        ref: str | None,
        changes: dict[str, Any] | None,
        *,
        comment: str = "Imported from -",
    ) -> Image:
        """`docker import`: a rootfs tar (maybe compressed) becomes a one-layer image."""
        if ref is not None:
            refs.parse(ref)  # refuse a bad name before doing the work
        src = decompressed(archive, "rootfs archive")
        diff_id = self._add_layer_tar(lambda out: shutil.copyfileobj(src, out, 1 << 20))
        config = imageconfig.import_config(diff_id, changes, comment)
        return self._add_image(config, [diff_id], ref, what=["rootfs archive"])

    def commit(self, upperdir: Path, parent: Image, ref: str | None, config: dict[str, Any] | None,
               exclude: Sequence[str] = (), *, comment: str = "", author: str = "",
               container: str = "") -> Image:  # fmt: skip
        """A new image: `parent` plus the layer packed from a container's overlay upperdir
        (whiteouts become `.wh.` entries). `config` is the runtime config (the parent's when
        None); `exclude` holds paths never exported (the engine's /etc mount points)."""
        if ref is not None:
            refs.parse(ref)
        diff_id = self._add_layer_tar(lambda out: pack(upperdir, out, exclude))
        new = imageconfig.commit_config(parent, diff_id, config, comment=comment, author=author,
                                        container=container)  # fmt: skip
        with self._pinned(parent.layers):
            return self._add_image(new, [*parent.layers, diff_id], ref, parent=parent.id)

    def load(self, archive: BinaryIO) -> builtins.list[str]:
        """`docker load`: a docker-save or OCI-layout tar (maybe compressed) → the refs
        loaded (tags; image ids for untagged images)."""
        from reference.image import archive as archives

        return archives.load(self, archive)

    def save(self, refs_: Sequence[str], out: BinaryIO) -> None:
        """`docker save`: a docker-save tar of the images, which `docker load` accepts."""
        from reference.image import archive as archives

        archives.save(self, refs_, out)

    # --- views ---------------------------------------------------------------------------
    def inspect(self, image: Image) -> dict[str, Any]:
        """The Engine API's ImageInspect object."""
        dirs = [str(self.layers_root / d[7:]) for d in image.layers]
        return imageconfig.inspect_view(image, dirs)

    # --- blobs and manifests (registry client) -------------------------------------------
    def put_blob(self, src: bytes | BinaryIO, digest: str | None = None) -> str:
        """Store content (bytes or a stream read to its end); verified against `digest` if
        given (ConfigError naming it, nothing stored). Returns the digest."""
        return self.blobs.put(src, digest)

    def get_blob(self, digest: str) -> bytes:
        """A whole blob in memory (configs, manifests); NotFoundError naming the digest."""
        return self.blobs.read(digest)

    def open_blob(self, digest: str) -> BinaryIO:
        """A blob as a binary file (layers: stream it); the caller closes it."""
        return self.blobs.open(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blobs.has(digest)

    def blob_size(self, digest: str) -> int:
        return self.blobs.size(digest)

    def manifest(self, image: Image, oci: bool = False) -> tuple[bytes, str]:
        """A manifest for pushing `image`, with gzip layers (compressed once, with mtime 0 so
        the digest is stable); its bytes and media type. Every blob it lists is in this
        store. Manifests themselves are not stored."""
        from reference.image import manifest as mf

        layers = [self._gzip_layer(d) for d in image.layers]
        config = mf.Descriptor(mf.OCI_CONFIG if oci else mf.DOCKER_CONFIG, image.id,
                               self.blobs.size(image.id))  # fmt: skip
        kind = mf.OCI_LAYER_GZIP if oci else mf.DOCKER_LAYER_GZIP
        descriptors = [mf.Descriptor(kind, d, self.blobs.size(d)) for d in layers]
        return mf.build_manifest(config, descriptors, oci), (
            mf.OCI_MANIFEST if oci else mf.DOCKER_MANIFEST
        )

    def _gzip_layer(self, diff_id: str) -> str:
        import gzip

        with self._lock:
            known = self._index.layers.get(diff_id, {}).get("gzip")
        if known and self.blobs.has(known):
            return str(known)
        with self.blobs.scratch() as tmp:
            with open(tmp / "layer.tar.gz", "wb") as raw, self.blobs.open(diff_id) as src:
                writer = HashingWriter(raw)
                z = gzip.GzipFile(filename="", mode="wb", fileobj=writer, mtime=0)  # type: ignore[call-overload]
                with z:
                    shutil.copyfileobj(src, z, 1 << 20)
            self.blobs.adopt(tmp / "layer.tar.gz", writer.digest)
        with self._lock:
            self._index.refresh()
            self._index.layers.setdefault(diff_id, {})["gzip"] = writer.digest
            self._index.save()
        return writer.digest
