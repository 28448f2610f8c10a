"""Registry client (Distribution API v2, no auth): `pull` into and `push` out of the ImageStore.

The flows are Docker 20.10's: ping `/v2/` on each endpoint in turn (HTTPS, then plain HTTP only
for an insecure registry; see registry_transport), then manifests and blobs. A pull accepts
Docker schema 2 and OCI manifests and, from a manifest list or OCI index, the entry for this
host's platform; every manifest and blob is verified against its digest before the store keeps
it. A push skips blobs the registry has (HEAD), uploads the others (POST, then one PUT, or PATCH
chunks and a closing PUT), then PUTs the manifest and returns its digest, as `docker push`
prints it. Progress goes to a callback as Docker's JSON messages (`{"status", "id",
"progressDetail"}`), for the engine API to stream.
"""

from __future__ import annotations

import hashlib
import io
import logging
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from reference.errors import ConfigError, NotFoundError, RefError, UnsupportedError
from reference.image import manifest as mf
from reference.image.imageconfig import architecture
from reference.image.refs import Reference
from reference.image.registry_ref import InsecureRegistries, parse_reference, target
from reference.image.registry_transport import (
    Body,
    Progress,
    Progressing,
    RegistryError,
    Response,
    Session,
    TransportError,
    Verifying,
    errcode_text,
    lookup_endpoints,
    status_error,
)

if TYPE_CHECKING:
    from reference.image.store import Image, ImageStore

__all__ = ["RegistryClient", "RegistryError", "TransportError"]

log = logging.getLogger(__name__)

SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
# Docker 20.10 asks for these (and schema 1, which this store cannot hold).
ACCEPT = ", ".join((mf.DOCKER_MANIFEST, mf.DOCKER_MANIFEST_LIST, mf.OCI_MANIFEST, mf.OCI_INDEX))


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _ignore(message: dict[str, Any]) -> None:
    pass


def _short(digest: str) -> str:
    """Docker's progress id for a blob: the first 12 hex digits."""
    return digest.partition(":")[2][:12]


class RegistryClient:
    """Pull and push images between an ImageStore and Distribution v2 registries."""

    def __init__(
        self,
        store: ImageStore,
        insecure: Sequence[str] = (),
        certs_dir: Path = Path("/etc/docker/certs.d"),
        *,
        chunk_size: int | None = None,
        timeout: float = 30.0,
        platform: tuple[str, str] | None = None,
    ) -> None:
        """`insecure`: the daemon's insecure-registries (validated here: ConfigError).
        `chunk_size`: push blobs in PATCH chunks of this size (None: one PUT per blob).
        `platform`: (os, architecture) to pick from a manifest list; default this host's."""
        self.store = store
        self.insecure = InsecureRegistries.parse(insecure)
        self.certs_dir = certs_dir
        self.chunk_size = chunk_size
        self.timeout = timeout
        self.platform = platform or ("linux", architecture())

    # -- endpoints ------------------------------------------------------------------------

    @contextmanager
    def _session(self, ref: Reference, action: str) -> Iterator[Session]:
        """A session on the first endpoint whose `/v2/` answers at all (Docker's fallback)."""
        endpoints = lookup_endpoints(ref.domain, self.insecure, self.certs_dir)
        error: TransportError | None = None
        for endpoint in endpoints:
            session = Session(endpoint, self.timeout)
            try:
                session.request("GET", "/v2/").read()
            except TransportError as e:
                session.close()
                error = e
                # Docker logs this after the last endpoint too, then returns that error.
                log.info("Attempting next endpoint for %s after error: %s", action, e)
                continue
            try:
                yield session
            finally:
                session.close()
            return
        assert error is not None
        raise error

    @staticmethod
    def _path(ref: Reference, kind: str, target: str) -> str:
        return f"/v2/{ref.path}/{kind}/{urllib.parse.quote(target, safe=':')}"

    # -- pull -----------------------------------------------------------------------------

    def pull(self, ref: str, progress: Progress | None = None) -> Image:
        """Pull `ref` (host[:port]/repo[:tag|@digest]) into the store; the image, tagged."""
        reference = parse_reference(ref)
        emit = progress if progress is not None else _ignore
        with self._session(reference, "pull") as session:
            emit({"status": f"Pulling from {reference.path}", "id": target(reference)})
            body, media_type = self._manifest(session, reference, target(reference))
            top_digest = _sha256(body)
            if media_type in mf.INDEX_TYPES:
                entries = mf.parse_index(body, str(reference))
                chosen = mf.select_platform(entries, str(reference), *self.platform)
                body, media_type = self._manifest(session, reference, chosen.digest)
            manifest = mf.parse_manifest(body, str(reference), media_type)
            fresh = self._fetch_config(session, reference, manifest.config)
            for layer in manifest.layers:
                emit(
                    {"status": "Pulling fs layer", "id": _short(layer.digest), "progressDetail": {}}
                )
            for layer in manifest.layers:
                fresh |= self._fetch_layer(session, reference, layer, emit)
        tag = None if reference.digest else f"{reference.name}:{reference.tag}"
        before = self._resolve(tag) if tag else None
        image = self.store.register(
            manifest.config.digest,
            [layer.digest for layer in manifest.layers],
            [tag] if tag else [],
            repo_digest=f"{reference.name}@{top_digest}",
        )
        for layer in manifest.layers:
            emit({"status": "Pull complete", "id": _short(layer.digest), "progressDetail": {}})
        emit({"status": f"Digest: {top_digest}"})
        shown = tag or f"{reference.name}@{top_digest}"
        if fresh or before is None or before.id != image.id:
            emit({"status": f"Status: Downloaded newer image for {shown}"})
        else:
            emit({"status": f"Status: Image is up to date for {shown}"})
        return image

    def _resolve(self, ref: str) -> Image | None:
        try:
            return self.store.resolve(ref)
        except NotFoundError:
            return None

    def _manifest(self, session: Session, ref: Reference, target: str) -> tuple[bytes, str]:
        """The manifest bytes and media type; verified if fetched by digest."""
        path = self._path(ref, "manifests", target)
        response = session.request("GET", path, {"Accept": ACCEPT})
        body = response.read()
        if response.status != 200:
            raise self._pull_error(ref, response, body)
        if target.startswith("sha256:") and _sha256(body) != target:
            raise RegistryError(f"manifest verification failed for digest {target}")
        header = (response.header("Content-Type") or "").split(";")[0].strip()
        media_type = mf.media_type(body, str(ref), header or None)
        if media_type in SCHEMA1:
            raise UnsupportedError("schema 1 manifests are not supported", obj=str(ref))
        if media_type not in (*mf.MANIFEST_TYPES, *mf.INDEX_TYPES):
            raise UnsupportedError(f"unsupported manifest media type {media_type!r}", obj=str(ref))
        return body, media_type

    @staticmethod
    def _pull_error(ref: Reference, response: Response, body: bytes) -> RefError:
        """Docker's TranslatePullError: unknown manifest or repository -> NotFoundError."""
        parsed = errcode_text(body)
        if parsed is None:
            return status_error(response, body)
        code, text = parsed
        if code == "MANIFEST_UNKNOWN":
            return NotFoundError(f"manifest for {ref} not found: {text}")
        if code == "NAME_UNKNOWN":
            return NotFoundError(f"repository {ref.name} not found: {text}")
        if code == "DENIED":
            return NotFoundError(
                f"pull access denied for {ref.name}, repository does not exist or may require "
                f"'docker login': {text}"
            )
        return RegistryError(text)

    def _fetch_config(self, session: Session, ref: Reference, config: mf.Descriptor) -> bool:
        """Fetch the image config unless stored; whether it was fetched."""
        digest = config.digest
        if self.store.has_blob(digest):
            return False
        response = self._get_blob(session, ref, digest)
        body = response.read()
        if _sha256(body) != digest:
            raise RegistryError(f"image config verification failed for digest {digest}")
        self.store.put_blob(body, digest)
        return True

    def _fetch_layer(
        self, session: Session, ref: Reference, layer: mf.Descriptor, emit: Progress
    ) -> bool:
        """Download one layer blob into the store unless it is there; whether it was fetched."""
        digest, size, short = layer.digest, layer.size, _short(layer.digest)
        if self.store.has_blob(digest):
            emit({"status": "Already exists", "id": short, "progressDetail": {}})
            return False
        response = self._get_blob(session, ref, digest)

        def tick(detail: dict[str, Any]) -> None:
            emit({"status": "Downloading", "id": short, "progressDetail": detail})

        stream = io.BufferedReader(Verifying(response.chunks(), digest, size, tick))
        self.store.put_blob(stream, digest)
        emit({"status": "Verifying Checksum", "id": short, "progressDetail": {}})
        emit({"status": "Download complete", "id": short, "progressDetail": {}})
        return True

    def _get_blob(self, session: Session, ref: Reference, digest: str) -> Response:
        response = session.request("GET", self._path(ref, "blobs", digest))
        if response.status != 200:
            raise status_error(response, response.read())
        return response

    # -- push -----------------------------------------------------------------------------

    def push(self, ref: str, progress: Progress | None = None) -> str:
        """Push the stored image tagged `ref`; the manifest digest the registry stored."""
        reference = parse_reference(ref)
        emit = progress if progress is not None else _ignore
        if reference.digest:
            raise ConfigError("cannot push a digest reference", obj=ref)
        tag = f"{reference.name}:{reference.tag}"
        image = self._resolve(tag)
        if image is None:
            raise NotFoundError(f"An image does not exist locally with the tag: {reference.name}")
        emit({"status": f"The push refers to repository [{reference.name}]"})
        body, media_type = self.store.manifest(image)  # compresses layers the first time
        manifest = mf.parse_manifest(body, str(reference), media_type)
        with self._session(reference, "push") as session:
            for layer in reversed(manifest.layers):  # Docker lists the top layer first
                emit({"status": "Preparing", "id": _short(layer.digest), "progressDetail": {}})
            for layer in manifest.layers:
                self._push_blob(session, reference, layer, emit)
            self._push_blob(session, reference, manifest.config, None)
            digest = self._put_manifest(session, reference, body, media_type)
        self.store.add_repo_digest(image.id, f"{reference.name}@{digest}")
        emit({"status": f"{reference.tag}: digest: {digest} size: {len(body)}"})
        emit({"progressDetail": {},
              "aux": {"Tag": reference.tag, "Digest": digest, "Size": len(body)}})  # fmt: skip
        return digest

    def _push_blob(
        self, session: Session, ref: Reference, blob: mf.Descriptor, emit: Progress | None
    ) -> None:
        digest, size, short = blob.digest, blob.size, _short(blob.digest)
        say = emit if emit is not None else _ignore
        head = session.request("HEAD", self._path(ref, "blobs", digest))
        head.read()
        if head.status == 200:
            say({"status": "Layer already exists", "id": short, "progressDetail": {}})
            return
        if head.status != 404:
            raise status_error(head, b"")
        start = session.request("POST", f"/v2/{ref.path}/blobs/uploads/")
        location = self._location(start, 202)
        with self.store.open_blob(digest) as source:
            if self.chunk_size is None:

                def tick(detail: dict[str, Any]) -> None:
                    say({"status": "Pushing", "id": short, "progressDetail": detail})

                body = Progressing(source, size, tick)
                self._finish_upload(session, location, digest, body, size)
            else:
                location = self._upload_chunks(session, location, source, size, short, say)
                self._finish_upload(session, location, digest, b"", 0)
        say({"status": "Pushed", "id": short, "progressDetail": {}})

    def _upload_chunks(
        self, session: Session, location: str, source: BinaryIO, size: int, short: str,
        say: Progress,
    ) -> str:  # fmt: skip
        assert self.chunk_size is not None
        offset = 0
        while offset < size:
            chunk = source.read(self.chunk_size)
            if not chunk:
                raise RegistryError(f"blob shorter than its descriptor ({size} bytes)", obj=short)
            end = offset + len(chunk) - 1
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{end}",
                "Content-Length": str(len(chunk)),
            }
            response = session.request("PATCH", location, headers, chunk)
            location = self._location(response, 202)
            offset = end + 1
            say({"status": "Pushing", "id": short,
                 "progressDetail": {"current": offset, "total": size}})  # fmt: skip
        return location

    def _finish_upload(
        self, session: Session, location: str, digest: str, body: bytes | Body, size: int
    ) -> None:
        separator = "&" if "?" in location else "?"
        url = f"{location}{separator}digest={urllib.parse.quote(digest, safe='')}"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        response = session.request("PUT", url, headers, body)
        answer = response.read()
        if response.status != 201:
            raise status_error(response, answer)
        stored = response.header("Docker-Content-Digest")
        if stored and stored != digest:
            raise RegistryError(f"registry stored blob {digest} as {stored}")

    @staticmethod
    def _location(response: Response, expected: int) -> str:
        body = response.read()
        location = response.header("Location")
        if response.status != expected:
            raise status_error(response, body)
        if not location:
            raise RegistryError(f"{response.method} {response.url}: no Location in the answer")
        return location

    def _put_manifest(self, session: Session, ref: Reference, body: bytes, media_type: str) -> str:
        path = self._path(ref, "manifests", ref.tag or "latest")
        response = session.request("PUT", path, {"Content-Type": media_type}, body)
        answer = response.read()
        if response.status != 201:
            raise status_error(response, answer)
        digest = _sha256(body)
        stored = response.header("Docker-Content-Digest")
        if stored and stored != digest:
            raise RegistryError(f"registry stored manifest {digest} as {stored}")
        return digest
