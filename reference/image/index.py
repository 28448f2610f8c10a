"""The store's one metadata file, `index.json`: images, tags and recorded layers.

    {"images": {"sha256:<id>": {"parent": id, "repo_digests": [...], "last_tag_time": t}},
     "tags":   {"bb:latest": "sha256:<id>"},
     "layers": {"sha256:<diff_id>": {"size": bytes, "gzip": "sha256:<compressed digest>"}}}

Not thread-safe by itself: ImageStore calls it under its lock. Writes are atomic (tmp file,
fsync, rename). Another writer on the same file (a second store object) is noticed by the
file's (inode, mtime, size) stamp and the file is read again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from reference.errors import ConfigError
from reference.image import refs
from reference.image.blobs import scratch_name, sweep_stale

_PREFIX = ".index-"


class Index:
    def __init__(self, path: Path) -> None:
        self.path = path
        sweep_stale(path.parent, _PREFIX)
        self.images: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, str] = {}
        self.layers: dict[str, dict[str, Any]] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._loaded = False
        self.refresh()

    def _current_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def refresh(self) -> None:
        """Read the file again if someone else wrote it since."""
        stamp = self._current_stamp()
        if self._loaded and stamp == self._stamp:
            return
        doc: dict[str, Any] = {}
        if stamp is not None:
            try:
                doc = json.loads(self.path.read_bytes())
                if not isinstance(doc, dict):
                    raise ValueError("not an object")
            except ValueError as e:
                raise ConfigError(f"corrupt image index ({e})", obj=str(self.path)) from None
        self.images = dict(doc.get("images") or {})
        self.tags = dict(doc.get("tags") or {})
        self.layers = dict(doc.get("layers") or {})
        self._stamp, self._loaded = stamp, True

    def save(self) -> None:
        tmp = self.path.parent / scratch_name(_PREFIX)
        doc = {"images": self.images, "tags": self.tags, "layers": self.layers}
        with open(tmp, "w") as f:
            json.dump(doc, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._stamp = self._current_stamp()

    # --- queries -------------------------------------------------------------------------
    def lookup(self, text: str) -> str | None:
        """The image id `text` names: a full id, a tag, `name@digest`, or an id prefix that
        matches exactly one image (Docker's order)."""
        if text in self.images:
            return text
        try:
            ref = refs.parse(text)
        except ConfigError:
            ref = None
        if ref is not None and ref.digest is not None:
            wanted = f"{ref.name}@{ref.digest}"
            return next(
                (i for i, e in self.images.items() if wanted in (e.get("repo_digests") or ())),
                None,
            )
        if ref is not None and str(ref) in self.tags:
            return self.tags[str(ref)]
        if refs.is_id_prefix(text):
            prefix = text if text.startswith("sha256:") else f"sha256:{text}"
            found = [i for i in self.images if i.startswith(prefix)]
            if len(found) == 1:
                return found[0]
        return None

    def tags_of(self, image_id: str) -> tuple[str, ...]:
        return tuple(sorted(t for t, i in self.tags.items() if i == image_id))

    def tag_of(self, text: str, image_id: str) -> str | None:
        """The stored tag `text` spells, if it names `image_id` (not an id or prefix)."""
        try:
            tag = str(refs.parse(text))
        except ConfigError:
            return None
        return tag if self.tags.get(tag) == image_id else None

    def children(self, image_id: str) -> list[str]:
        return [i for i, e in self.images.items() if e.get("parent") == image_id]

    def referenced(self) -> set[str]:
        """Every blob digest an image or a recorded layer holds on to."""
        held = set(self.images) | set(self.layers)
        held |= {str(e["gzip"]) for e in self.layers.values() if e.get("gzip")}
        return held

    def layer_size(self, diff_id: str) -> int | None:
        entry = self.layers.get(diff_id)
        return None if entry is None else int(entry.get("size", 0))
