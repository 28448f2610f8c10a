"""Image manifests and indexes, Docker schema 2 and OCI: media types, parsing, building.

Shared by the OCI-layout archive loader and the registry client. Parsing checks the shape the
store relies on (a config descriptor, layer descriptors with sha256 digests) and names the
object it came from on failure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reference.errors import ConfigError, NotFoundError

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
# Annotations that name an image in an OCI layout: containerd/Docker write the full name, the
# OCI spec's own key often holds only a tag.
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "size": self.size,
            "digest": self.digest,
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = dict(self.platform)
        return out


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


def _descriptor(raw: object, what: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ConfigError("invalid descriptor (not an object)", obj=what)
    digest, size = raw.get("digest"), raw.get("size", 0)
    if not isinstance(digest, str) or not digest.startswith("sha256:") or not isinstance(size, int):
        raise ConfigError(f"invalid descriptor {raw!r}", obj=what)
    return Descriptor(
        media_type=str(raw.get("mediaType", "")),
        digest=digest,
        size=size,
        annotations=dict(raw.get("annotations") or {}),
        platform=dict(raw.get("platform") or {}),
    )


def _load(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise ConfigError(f"invalid JSON ({e})", obj=what) from None
    if not isinstance(doc, dict):
        raise ConfigError("invalid manifest (not an object)", obj=what)
    return doc


def media_type(data: bytes, what: str, declared: str | None = None) -> str:
    """The document's media type: its own `mediaType`, else what was declared, else guessed
    from its shape (OCI allows both to be absent)."""
    doc = _load(data, what)
    found = doc.get("mediaType") or declared
    if found:
        return str(found)
    return OCI_INDEX if "manifests" in doc else OCI_MANIFEST


def is_index(data: bytes, what: str, declared: str | None = None) -> bool:
    return media_type(data, what, declared) in INDEX_TYPES


def parse_manifest(data: bytes, what: str, declared: str | None = None) -> Manifest:
    """An image manifest; ConfigError naming `what` if it is not one."""
    doc = _load(data, what)
    kind = media_type(data, what, declared)
    if kind not in MANIFEST_TYPES or "config" not in doc:
        raise ConfigError(f"not an image manifest (mediaType {kind!r})", obj=what)
    layers = doc.get("layers") or []
    if not isinstance(layers, list):
        raise ConfigError("invalid manifest: layers is not a list", obj=what)
    return Manifest(
        kind, _descriptor(doc["config"], what), tuple(_descriptor(layer, what) for layer in layers)
    )


def parse_index(data: bytes, what: str) -> tuple[Descriptor, ...]:
    """The manifests an OCI index or Docker manifest list points to."""
    doc = _load(data, what)
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise ConfigError("invalid index: no manifests list", obj=what)
    return tuple(_descriptor(m, what) for m in manifests)


def select_platform(
    manifests: Sequence[Descriptor], what: str, os_name: str = "linux", arch: str = "amd64"
) -> Descriptor:
    """The entry for this platform (entries without a platform match any, as Docker treats
    single-platform indexes); NotFoundError naming `what` if none matches."""
    for desc in manifests:
        platform = desc.platform
        if not platform or (platform.get("os") == os_name and platform.get("architecture") == arch):
            return desc
    raise NotFoundError(
        f"no matching manifest for {os_name}/{arch} in the manifest list entries", obj=what
    )


def build_manifest(config: Descriptor, layers: Sequence[Descriptor], oci: bool = False) -> bytes:
    """A schema-2 (or OCI) image manifest; the bytes are what gets pushed and digested."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    return json.dumps(doc, indent=3).encode()
