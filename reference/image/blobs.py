"""Content-addressed blobs: `<root>/blobs/sha256/<hex>`, written once, never changed.

Every write goes to a per-operation scratch directory `<root>/tmp/<pid>-<token>/` on the same
file system and is renamed into place when complete, so a reader never sees half a blob and a
crash leaves only scratch that the next store on this root sweeps (its pid is dead). Renaming
onto an existing blob is harmless: the content is the same by construction.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO

from reference.errors import ConfigError, NotFoundError

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_CHUNK = 1 << 20


def check_digest(digest: str) -> str:
    """The hex part of a `sha256:<64 hex>` digest; ConfigError naming it if malformed."""
    if not _DIGEST.fullmatch(digest):
        raise ConfigError("invalid digest (want sha256:<64 hex digits>)", obj=digest)
    return digest[7:]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class HashingWriter:
    """A write-only file wrapper that hashes and counts what passes through it."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        self._sink.write(data)
        return len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


def copy_hashed(src: IO[bytes], dest: Path) -> tuple[str, int]:
    """Copy a stream to a new file; return its digest and size."""
    with open(dest, "wb") as f:
        writer = HashingWriter(f)
        while chunk := src.read(_CHUNK):
            writer.write(chunk)
    return writer.digest, writer.size


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(directory: Path, prefix: str = "") -> None:
    """Remove `<prefix><pid>-<token>` entries left in `directory` by processes now dead."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        pid, sep, _ = name.removeprefix(prefix).partition("-")
        if name.startswith(prefix) and sep and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(directory / name, ignore_errors=True)


def scratch_name(prefix: str = "") -> str:
    """A name unique to this process and call, recognisable by `sweep_stale`."""
    return f"{prefix}{os.getpid()}-{secrets.token_hex(6)}"


class BlobStore:
    """`<root>/blobs/sha256/<hex>` plus the scratch area `<root>/tmp`."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "blobs" / "sha256"
        self.tmp = root / "tmp"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(exist_ok=True)
        sweep_stale(self.tmp)

    def path(self, digest: str) -> Path:
        return self.dir / check_digest(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFoundError("No such blob", obj=digest) from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFoundError("No such blob", obj=digest) from None

    def read(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Path]:
        """A private scratch directory, removed with whatever is left in it."""
        path = self.tmp / scratch_name()
        path.mkdir()
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def adopt(self, path: Path, digest: str) -> None:
        """Move a complete file whose digest the caller computed into place."""
        os.chmod(path, 0o644)
        os.replace(path, self.path(digest))

    def put(self, src: bytes | BinaryIO, digest: str | None = None) -> str:
        """Store bytes or a stream; verify them against `digest` when one is given."""
        if digest is not None:
            check_digest(digest)
        with self.scratch() as tmp:
            target = tmp / "blob"
            if isinstance(src, bytes):
                target.write_bytes(src)
                actual = sha256_digest(src)
            else:
                actual, _ = copy_hashed(src, target)
            if digest is not None and actual != digest:
                raise ConfigError(f"content does not match its digest (got {actual})", obj=digest)
            self.adopt(target, actual)
        return actual

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()


def chain_ids(diff_ids: list[str] | tuple[str, ...]) -> list[str]:
    """The OCI chain ids of a layer stack (what `docker rmi` prints as deleted layers):
    chain(L0) = diff(L0), chain(Ln) = sha256(chain(Ln-1) + " " + diff(Ln))."""
    chain: list[str] = []
    for diff_id in diff_ids:
        chain.append(sha256_digest(f"{chain[-1]} {diff_id}".encode()) if chain else diff_id)
    return chain
