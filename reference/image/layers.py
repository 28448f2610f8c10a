"""Layer tars ⇄ overlayfs directories, and the changes an upper directory holds.

A layer tar marks deletions the OCI way: `.wh.<name>` deletes `<name>` from the layers below,
`.wh..wh..opq` in a directory hides everything below it. Overlayfs marks them its own way: a
character device 0:0 named `<name>`, and the `trusted.overlay.opaque=y` xattr on a directory.
`unpack` turns the first into the second (the layer becomes an overlay lowerdir as is); `pack`
turns an upperdir back into a tar. Packing is deterministic (sorted names, no user/group names,
whole-second mtimes, no record padding: an empty layer is the 1024 zero bytes Docker's is), so
the same tree always has the same diff_id, the sha256 of the uncompressed tar.
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import gzip
import io
import lzma
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from reference.errors import ConfigError, KernelError, UnsupportedError

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_OVERLAY_XATTRS = "trusted.overlay."  # overlay's own bookkeeping: never taken from a layer
_EXPORTED_XATTRS = ("security.capability",)  # what Docker writes into layer tars
_PAX_XATTR = "SCHILY.xattr."
_BLOCK = tarfile.BLOCKSIZE
_TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)
_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were already read (to sniff the compression)."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def compression(head: bytes) -> str | None:
    """`gzip`, `bzip2`, `xz`, `zstd` or None (plain), from a stream's first six bytes."""
    return next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)


def decompressed(src: BinaryIO, what: str) -> BinaryIO:
    """`src` decompressed if it is gzip, bzip2 or xz (what `docker load`/`import` accept)."""
    head = src.read(6)
    kind = compression(head)
    stream: BinaryIO = io.BufferedReader(_Prefixed(head, src), 1 << 16)
    if kind is None:
        return stream
    if kind == "gzip":
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    if kind == "bzip2":
        return bz2.BZ2File(stream)  # type: ignore[return-value]
    if kind == "xz":
        return lzma.LZMAFile(stream)  # type: ignore[return-value]
    raise UnsupportedError(f"{kind}-compressed layers are not supported", obj=what)


def _clean(name: str, what: str) -> str:
    """A member name relative to the layer root, without `./`; refuses escapes."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ConfigError(f"{what}: path escapes the layer", obj=name)
    return "/".join(parts)


def _kernel(op: str, err: OSError, path: str) -> KernelError:
    return KernelError(op, err.errno or 0, obj=path)


class _Unpacker:
    """Applies the members of one layer tar to a directory (see `unpack`)."""

    def __init__(self, dest: Path, what: str) -> None:
        self.root = str(dest)
        self.what = what
        self.safe: set[str] = {""}  # directories known to be real directories, not symlinks
        self.dirs: dict[str, tarfile.TarInfo] = {}  # metadata applied last, deepest first
        self.size = 0
        self.privileged = os.geteuid() == 0

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def ensure_dir(self, rel: str, member: str) -> None:
        """Make sure `rel` is a directory inside the layer (never a symlink out of it)."""
        if rel in self.safe:
            return
        parent = rel.rpartition("/")[0]
        self.ensure_dir(parent, member)
        path = self.path(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path, 0o755)  # a parent the tar did not list: 0755 root, as Docker makes
        else:
            if not stat.S_ISDIR(st.st_mode):
                raise ConfigError(f"{self.what}: parent of a member is not a directory", obj=member)
        self.safe.add(rel)

    def clear(self, rel: str, keep_dir: bool) -> None:
        """Remove what is at `rel` so a later member can replace it (later members win)."""
        path = self.path(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return
            shutil.rmtree(path)
            below = rel + "/"
            self.safe = {d for d in self.safe if d != rel and not d.startswith(below)}
            self.dirs = {d: i for d, i in self.dirs.items() if d != rel and not d.startswith(below)}
        else:
            os.unlink(path)

    def apply(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = _clean(m.name, self.what)
        parent, _, base = rel.rpartition("/")
        if rel:
            self.ensure_dir(parent, m.name)
        if base == OPAQUE_MARKER:
            os.setxattr(self.path(parent), OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # other aufs metadata (.wh..wh.plnk...) has no overlay meaning
        if base.startswith(WHITEOUT_PREFIX):
            victim = base[len(WHITEOUT_PREFIX) :]
            if victim in ("", ".", ".."):
                raise ConfigError(f"{self.what}: invalid whiteout", obj=m.name)
            target = f"{parent}/{victim}" if parent else victim
            self.clear(target, keep_dir=False)
            os.mknod(self.path(target), stat.S_IFCHR, os.makedev(0, 0))
            self.owner(self.path(target), m)
            os.utime(self.path(target), ns=(int(m.mtime * 1e9),) * 2, follow_symlinks=False)
            return
        if not rel and not m.isdir():
            raise ConfigError(f"{self.what}: the layer root is not a directory", obj=m.name)
        path = self.path(rel)
        self.clear(rel, keep_dir=m.isdir())
        if m.isdir():
            if rel:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(path, 0o700)
                self.safe.add(rel)
            self.dirs[rel] = m
            return
        if m.isreg():
            src = tar.extractfile(m)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with open(fd, "wb") as out:
                if src is not None:
                    shutil.copyfileobj(src, out, 1 << 20)
            self.size += m.size
        elif m.issym():
            os.symlink(m.linkname, path)
            self.size += len(os.fsencode(m.linkname))
        elif m.islnk():
            target = _clean(m.linkname, self.what)
            self.ensure_dir(target.rpartition("/")[0], m.name)
            try:
                os.link(self.path(target), path, follow_symlinks=False)
            except FileNotFoundError:
                raise ConfigError(
                    f"{self.what}: hard link to a file not in the layer", obj=m.name
                ) from None
            return  # a hard link shares the target's inode: its metadata is already set
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(m.devmajor, m.devminor))
        elif m.isfifo():
            os.mkfifo(path, 0o600)
        else:
            raise ConfigError(f"{self.what}: unsupported tar entry type {m.type!r}", obj=m.name)
        self.meta(path, m)

    def owner(self, path: str, m: tarfile.TarInfo) -> None:
        if self.privileged:  # unprivileged unpacking (tests) keeps the caller's ownership
            os.lchown(path, m.uid, m.gid)

    def meta(self, path: str, m: tarfile.TarInfo) -> None:
        """Ownership, then mode (chown clears set-id bits), xattrs, times."""
        self.owner(path, m)
        if not m.issym():
            os.chmod(path, m.mode & 0o7777)
        for key, value in m.pax_headers.items():
            name = key[len(_PAX_XATTR) :]
            if key.startswith(_PAX_XATTR) and not name.startswith(_OVERLAY_XATTRS):
                try:
                    raw = value.encode("utf-8", "surrogateescape")
                    os.setxattr(path, name, raw, follow_symlinks=False)
                except OSError as e:
                    # Docker, too, drops xattrs the file system or the caller cannot hold.
                    if e.errno not in (errno.ENOTSUP, errno.EPERM):
                        raise _kernel("setxattr", e, path) from None
        os.utime(path, ns=(int(m.mtime * 1e9),) * 2, follow_symlinks=False)

    def finish(self) -> None:
        for rel in sorted(self.dirs, key=lambda d: -d.count("/") - (1 if d else 0)):
            self.meta(self.path(rel), self.dirs[rel])


def unpack(src: BinaryIO, dest: Path, what: str) -> int:
    """Apply an uncompressed layer tar to the (new, empty) directory `dest`.

    Returns the layer's size as Docker counts it: the bytes of its files and symlinks. A bad
    tar is a ConfigError naming `what` (the archive member or digest the tar came from).
    """
    dest.mkdir(mode=0o755, exist_ok=True)
    unpacker = _Unpacker(dest, what)
    try:
        with tarfile.open(fileobj=src, mode="r|") as tar:
            for member in tar:
                unpacker.apply(tar, member)
    except (ConfigError, KernelError):
        raise
    except _TAR_ERRORS as e:
        if isinstance(e, OSError) and not isinstance(e, tarfile.TarError | EOFError):
            raise _kernel("unpack", e, e.filename or what) from None
        raise ConfigError(f"invalid layer tar ({e})", obj=what) from None
    unpacker.finish()
    return unpacker.size


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def walk(top: Path, exclude: Sequence[str] = ()) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry under `top` as (relative path, lstat), depth first, parents before children,
    sorted by name so the order never depends on the directory's hash order. `exclude` holds
    absolute container paths (e.g. `/etc/hostname`) skipped with whatever is below them."""
    return _walk(str(top), "", {p.strip("/") for p in exclude})


def _walk(top: str, rel: str, skip: set[str]) -> Iterator[tuple[str, os.stat_result]]:
    for name in sorted(os.listdir(f"{top}/{rel}" if rel else top)):
        child = f"{rel}/{name}" if rel else name
        if child in skip:
            continue
        st = os.lstat(f"{top}/{child}")
        yield child, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(top, child, skip)


def _header(name: str, st: os.stat_result, kind: bytes, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def _write(out: BinaryIO, info: tarfile.TarInfo, path: str | None = None) -> None:
    out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
    if path is not None and info.size:
        with open(path, "rb") as f:
            copied = 0
            while chunk := f.read(min(1 << 20, info.size - copied)):
                out.write(chunk)
                copied += len(chunk)
        if copied != info.size:  # the file changed under us: the header would lie
            raise ConfigError("file changed size while being packed", obj=path)
        if info.size % _BLOCK:
            out.write(b"\0" * (_BLOCK - info.size % _BLOCK))


def pack(upper: Path, out: BinaryIO, exclude: Sequence[str] = ()) -> None:
    """Write the layer tar of an overlay upperdir (whiteouts become `.wh.` entries)."""
    links: dict[tuple[int, int], str] = {}
    for rel, st in walk(upper, exclude):
        path = f"{upper}/{rel}"
        mode = st.st_mode
        if _is_whiteout(st):
            parent, _, base = rel.rpartition("/")
            name = f"{parent}/{WHITEOUT_PREFIX}{base}".lstrip("/")
            _write(out, _header(name, st, tarfile.REGTYPE, mode=0o600))
            continue
        pax: dict[str, str] = {}
        for attr in _EXPORTED_XATTRS:
            with contextlib.suppress(OSError):
                value = os.getxattr(path, attr, follow_symlinks=False)
                pax[_PAX_XATTR + attr] = value.decode("utf-8", "surrogateescape")
        if stat.S_ISDIR(mode):
            _write(out, _header(rel, st, tarfile.DIRTYPE, pax_headers=pax))
            if _is_opaque(path):
                _write(out, _header(f"{rel}/{OPAQUE_MARKER}", st, tarfile.REGTYPE))
        elif stat.S_ISREG(mode):
            first = links.setdefault((st.st_dev, st.st_ino), rel) if st.st_nlink > 1 else rel
            if first != rel:
                _write(out, _header(rel, st, tarfile.LNKTYPE, linkname=first, pax_headers=pax))
            else:
                _write(
                    out, _header(rel, st, tarfile.REGTYPE, size=st.st_size, pax_headers=pax), path
                )
        elif stat.S_ISLNK(mode):
            _write(out, _header(rel, st, tarfile.SYMTYPE, linkname=os.readlink(path)))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            kind = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            dev = {"devmajor": os.major(st.st_rdev), "devminor": os.minor(st.st_rdev)}
            _write(out, _header(rel, st, kind, **dev))
        elif stat.S_ISFIFO(mode):
            _write(out, _header(rel, st, tarfile.FIFOTYPE))
        # Sockets have no tar form; Docker skips them too.
    out.write(b"\0" * (2 * _BLOCK))


def _hidden_below(layer: Path, rel: str) -> bool:
    """Whether an ancestor of `rel` in `layer` hides the layers below it (opaque or replaced)."""
    parts = rel.split("/")[:-1]
    for i in range(len(parts)):
        path = f"{layer}/{'/'.join(parts[: i + 1])}"
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if not stat.S_ISDIR(st.st_mode) or _is_opaque(path):
            return True
    return False


def in_lowers(rel: str, lowers: Sequence[Path]) -> bool:
    """Whether the union of `lowers` (topmost first) has `rel`."""
    for layer in lowers:
        try:
            st = os.lstat(f"{layer}/{rel}")
        except (FileNotFoundError, NotADirectoryError):
            if _hidden_below(layer, rel):
                return False
            continue
        return not _is_whiteout(st)
    return False


def changes(upper: Path, lowers: Sequence[Path]) -> list[tuple[str, str]]:
    """What `docker diff` prints: ("A"|"C"|"D", "/path"), sorted by path."""
    found: list[tuple[str, str]] = []
    for rel, st in walk(upper):
        kind = "D" if _is_whiteout(st) else "C" if in_lowers(rel, lowers) else "A"
        found.append((kind, "/" + rel))
    return sorted(found, key=lambda change: change[1])


def tree_size(top: Path) -> int:
    """A layer directory's size as `unpack` counts it (used when that count was lost)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for _, st in walk(top):
        key = (st.st_dev, st.st_ino)
        if not stat.S_ISDIR(st.st_mode) and key not in seen:
            seen.add(key)
            total += st.st_size
    return total
