"""`docker rmi` and garbage collection for ImageStore (a mixin: same object, same lock).

Removal follows Docker's rules: removing a tag only untags while other tags, a child image or
a container still need the image; removing by id refuses an image with several tags unless
forced, and never removes one with child images; `in_use` (set by the engine) reports a
container whose rootfs stands on the image: running blocks even a forced removal, stopped
blocks an unforced one, and a forced one only untags (the layers stay for the container).
Deleting an image deletes the layers (blobs and unpacked dirs) no other image holds, and
then its parent if that is untagged and unused, as Docker prunes intermediate images.

Deleted layer dirs are renamed away under the lock (atomic) and removed after it.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reference.errors import ConflictError
from reference.image import refs
from reference.image.blobs import BlobStore, chain_ids, scratch_name
from reference.image.index import Index

if TYPE_CHECKING:
    import threading

    from reference.image.store import Image

# `in_use(image_id)` → (id, running) of a container whose rootfs stands on the image, or None.
InUse = Callable[[str], "tuple[str, bool] | None"]


class Removal:
    """The removal half of ImageStore; the attributes are ImageStore's."""

    blobs: BlobStore
    layers_root: Path
    in_use: InUse | None
    _index: Index
    _lock: threading.RLock
    _pins: Counter[str]
    _configs: dict[str, dict[str, Any]]

    def resolve(self, ref_or_id: str) -> Image:
        raise NotImplementedError

    def _image(self, image_id: str) -> Image:
        raise NotImplementedError

    def remove(self, ref_or_id: str, force: bool = False) -> list[dict[str, str]]:
        """`docker rmi`: [{"Untagged": ref}..., {"Deleted": id}, {"Deleted": chain id}...].

        Docker's conflicts: an id with several tags (unless forced), child images, and the
        containers `in_use` reports (running: never; stopped: only forced, and then the
        image is untagged but kept, because the container's rootfs stands on its layers)."""
        trash: list[Path] = []
        with self._lock:
            image = self.resolve(ref_or_id)
            index, short = self._index, refs.short_id(image.id)
            user = self.in_use(image.id) if self.in_use else None
            tag = index.tag_of(ref_or_id, image.id)
            out: list[dict[str, str]] = []
            if tag is not None:
                last = len(image.repo_tags) == 1
                if last and user and not force:
                    raise ConflictError(
                        f'conflict: unable to remove repository reference "{ref_or_id}" (must '
                        f"force) - container {user[0][:12]} is using its referenced image {short}"
                    )
                del index.tags[tag]
                out.append({"Untagged": tag})
                if not last or user or index.children(image.id):
                    index.save()  # the image stays: other tags, a container or a child need it
                    return out
            else:
                why = self._undeletable(image, user, force)
                if why:
                    raise ConflictError(f"conflict: unable to delete {short} {why}")
                for name in image.repo_tags:
                    del index.tags[name]
                    out.append({"Untagged": name})
                if user:
                    index.save()
                    return out
            out += [{"Untagged": d} for d in image.repo_digests]
            out += self._delete(image, trash)
            index.save()
        for path in trash:
            shutil.rmtree(path, ignore_errors=True)
        return out

    def _undeletable(self, image: Image, user: tuple[str, bool] | None, force: bool) -> str:
        if self._index.children(image.id):
            return "(cannot be forced) - image has dependent child images"
        if user and user[1]:
            return f"(cannot be forced) - image is being used by running container {user[0][:12]}"
        if user and not force:
            return f"(must be forced) - image is being used by stopped container {user[0][:12]}"
        if len(image.repo_tags) > 1 and not force:
            return "(must be forced) - image is referenced in multiple repositories"
        return ""

    def _delete(self, image: Image, trash: list[Path]) -> list[dict[str, str]]:
        """Drop the image and what only it used; prune untagged, unused parents like Docker."""
        index = self._index
        entry = index.images.pop(image.id)
        self._configs.pop(image.id, None)
        out = [{"Deleted": image.id}]
        # Docker reports the chain ids its layer store releases; the files here are shared by
        # diff_id, so they go only when no remaining image (or running operation) has them.
        remaining = [self._image(i).layers for i in index.images]
        chains = {c for layers in remaining for c in chain_ids(layers)}
        used = {d for layers in remaining for d in layers} | set(self._pins)
        stack = list(zip(image.layers, chain_ids(image.layers), strict=True))
        for diff_id, chain_id in reversed(stack):
            if chain_id not in chains:
                chains.add(chain_id)
                out.append({"Deleted": chain_id})
            if diff_id not in used:
                used.add(diff_id)
                layer = index.layers.pop(diff_id, {})
                for blob in (diff_id, layer.get("gzip")):
                    if blob:
                        self.blobs.delete(blob)
                self._trash_layer(diff_id, trash)
        if image.id not in self._pins:
            self.blobs.delete(image.id)
        parent = str(entry.get("parent") or "")
        orphan = parent in index.images and not index.tags_of(parent)
        if orphan and not index.children(parent) and not (self.in_use and self.in_use(parent)):
            out += self._delete(self._image(parent), trash)
        return out

    def discard(self, digests: Sequence[str]) -> None:
        """Delete these blobs and unpacked layers unless an image, a recorded layer or a
        running operation holds them: the clean-up after a failed load, import or pull."""
        trash: list[Path] = []
        with self._lock:
            self._index.refresh()
            held = self._index.referenced() | set(self._pins)
            for digest in dict.fromkeys(digests):
                if digest not in held and digest.startswith("sha256:"):
                    self.blobs.delete(digest)
                    self._trash_layer(digest, trash)
        for path in trash:
            shutil.rmtree(path, ignore_errors=True)

    def _trash_layer(self, diff_id: str, trash: list[Path]) -> None:
        """Move an unpacked layer out of sight (atomic); the caller removes it unlocked."""
        target = self.layers_root / diff_id.removeprefix("sha256:")
        if target.is_dir():
            trash.append(self.blobs.tmp / scratch_name())
            os.rename(target, trash[-1])
