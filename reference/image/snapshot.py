"""Snapshots: the overlay mount each container's rootfs is.

    <root>/<key>/upper    the container's own changes (its overlay upperdir)
    <root>/<key>/work     overlay's workdir (same file system as upper)
    <root>/<key>/merged   the mount point: the bundle rootfs
    <root>/<key>/meta.json  {"image": id, "init": init layer name}
    <root>/.init/<hash>/  init layers, shared by every snapshot with the same init files

Lower layers, topmost first: the init layer, then the image's layers (store.layer_dirs). The
init layer holds the empty mount points Docker's `<id>-init` layer holds (/etc/hostname,
/etc/hosts, /etc/resolv.conf, /dev/console, /.dockerenv, /etc/mtab → /proc/mounts, /dev/pts,
/dev/shm, /proc, /sys). It sits BELOW the upper dir, so the engine's bind mounts onto those
files never copy anything up and a commit of the upper dir never exports them. Its content is
the same for every container with the same init files, so it is made once and shared:
`prepare` is then three mkdirs, a rename and one mount(2).

The mount options must fit in one page (the kernel's limit for mount(2) data); a deep image
whose lowerdir list does not fit is mounted through the new mount API (fsopen/fsconfig with one
`lowerdir+` per layer, kernel >= 6.8), which has no such limit. Options pin the features a
commit relies on: no redirect_dir (a renamed directory is copied up whole) and no metacopy
(copied-up files hold their data), and index=off so layers can be shared freely.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from reference.errors import ConfigError, ConflictError, KernelError, NotFoundError, StateError
from reference.image.blobs import scratch_name, sweep_stale
from reference.image.layers import changes
from reference.linux.syscall import MNT_DETACH

if TYPE_CHECKING:
    from reference.image.store import Image, ImageStore
    from reference.linux.syscall import Syscall

# Docker's init layer (daemon/initlayer): path → "dir", "file" or a symlink target.
DEFAULT_INIT_FILES: dict[str, str] = {
    "/dev/pts": "dir", "/dev/shm": "dir", "/proc": "dir", "/sys": "dir",
    "/.dockerenv": "file", "/etc/resolv.conf": "file", "/etc/hosts": "file",
    "/etc/hostname": "file", "/dev/console": "file", "/etc/mtab": "/proc/mounts",
}  # fmt: skip
OVERLAY_OPTIONS = (("index", "off"), ("redirect_dir", "off"), ("metacopy", "off"))
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_INIT = ".init"


def _fsmount_overlay(lowers: Sequence[str], upper: str, work: str, target: str) -> None:
    """Mount an overlay with the new mount API: one `lowerdir+` per layer, no length limit.
    The kernel's own message (read from the fs context) goes into the error."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    # Generic syscall numbers: the same on every architecture but alpha.
    open_tree_move_mount, fsopen, fsconfig, fsmount = 429, 430, 431, 432
    c_int, c_str = ctypes.c_int, ctypes.c_char_p

    def call(nr: int, op: str, *args: object, fs: int = -1) -> int:
        ret = int(libc.syscall(ctypes.c_long(nr), *args))
        if ret < 0:
            err = ctypes.get_errno()
            detail = ""
            if fs >= 0:
                with contextlib.suppress(OSError):
                    detail = os.read(fs, 512).decode(errors="replace").strip()
            where = f"overlay on {target}" + (f" ({detail})" if detail else "")
            raise KernelError(op, err, obj=where)
        return ret

    fs = call(fsopen, "fsopen", c_str(b"overlay"), c_int(1))  # FSOPEN_CLOEXEC
    try:
        settings = [("lowerdir+", d) for d in lowers]
        settings += [("upperdir", upper), ("workdir", work), *OVERLAY_OPTIONS]
        for key, value in settings:  # FSCONFIG_SET_STRING
            call(fsconfig, "fsconfig", c_int(fs), c_int(1), c_str(key.encode()),
                 c_str(os.fsencode(value)), c_int(0), fs=fs)  # fmt: skip
        call(fsconfig, "fsconfig", c_int(fs), c_int(6), None, None, c_int(0), fs=fs)  # CMD_CREATE
        mnt = call(fsmount, "fsmount", c_int(fs), c_int(1), c_int(0), fs=fs)  # FSMOUNT_CLOEXEC
        try:  # AT_FDCWD, MOVE_MOUNT_F_EMPTY_PATH
            call(open_tree_move_mount, "move_mount", c_int(mnt), c_str(b""), c_int(-100),
                 c_str(os.fsencode(target)), c_int(4))  # fmt: skip
        finally:
            os.close(mnt)
    finally:
        os.close(fs)


class Snapshots:
    def __init__(self, root: Path, store: ImageStore, syscall: Syscall | None = None) -> None:
        if set(str(root)) & set(",:\\"):
            raise ConfigError("overlay options cannot name a path with ',', ':' or '\\'",
                              obj=str(root))  # fmt: skip
        if syscall is None:
            from reference.linux.libc import LinuxSyscall

            syscall = LinuxSyscall()
        self.root = root
        self.store = store
        self._sys = syscall
        self._lock = threading.Lock()  # one mount/unmount decision at a time
        self._inits = root / _INIT
        self._inits.mkdir(parents=True, exist_ok=True)
        sweep_stale(root, ".tmp-")
        sweep_stale(self._inits, ".tmp-")
        self.force_mount_api = False  # tests: take the fsopen path even for short options

    def _dir(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ConfigError("invalid snapshot key", obj=key)
        return self.root / key

    def _mounted(self, d: Path) -> bool:
        # An overlay has its own device number: a cheap test, no mountinfo parsing.
        return os.stat(d / "merged").st_dev != os.stat(d).st_dev

    def _init_layer(self, init_files: Mapping[str, str]) -> Path:
        entries = {**DEFAULT_INIT_FILES, **init_files}
        for path in entries:
            if not path.startswith("/") or ".." in path.split("/") or path == "/":
                raise ConfigError("init file must be an absolute path inside the rootfs", obj=path)
        name = hashlib.sha256(json.dumps(sorted(entries.items())).encode()).hexdigest()[:16]
        target = self._inits / name
        if target.is_dir():
            return target
        tmp = self._inits / scratch_name(".tmp-")
        try:
            for path, kind in sorted(entries.items()):
                full = tmp / path.lstrip("/")
                full.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                if kind == "dir":
                    full.mkdir(mode=0o755, exist_ok=True)
                elif kind == "file":
                    os.close(os.open(full, os.O_CREAT | os.O_WRONLY, 0o755))
                else:
                    os.symlink(kind, full)
            os.chmod(tmp, 0o755)
            try:
                os.rename(tmp, target)
            except OSError:  # made meanwhile by another process: same content
                if not target.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target

    def prepare(self, key: str, image: Image, init_files: Mapping[str, str] = {}) -> Path:
        """Create (or reuse: a restarted container keeps its upper dir) the snapshot `key` of
        `image` and mount it; the merged dir. `init_files` adds init-layer entries (path →
        "dir", "file" or a symlink target). Nothing is left behind if the mount fails."""
        d = self._dir(key)
        with self._lock:
            try:
                meta = json.loads((d / "meta.json").read_bytes())
            except FileNotFoundError:
                meta = None
            if meta is not None and meta.get("image") != image.id:
                raise ConflictError(f"snapshot belongs to image {meta.get('image')}", obj=key)
            recorded = self._inits / meta["init"] if meta is not None else None
            init = recorded if recorded and recorded.is_dir() else self._init_layer(init_files)
            created = meta is None
            if created:
                tmp = self.root / scratch_name(".tmp-")
                tmp.mkdir(mode=0o700)
                for sub in ("upper", "work", "merged"):
                    (tmp / sub).mkdir(mode=0o755)
                (tmp / "meta.json").write_text(json.dumps({"image": image.id, "init": init.name}))
                try:
                    os.rename(tmp, d)
                except OSError:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise ConflictError("snapshot directory exists", obj=key) from None
            elif self._mounted(d):
                return d / "merged"
            try:
                lowers = [str(init)] + [str(p) for p in reversed(self.store.layer_dirs(image))]
                self._mount(lowers, d)
            except BaseException:
                if created:
                    shutil.rmtree(d, ignore_errors=True)
                raise
        return d / "merged"

    def _mount(self, lowers: list[str], d: Path) -> None:
        upper, work, merged = f"{d}/upper", f"{d}/work", f"{d}/merged"
        options = ",".join(f"{k}={v}" for k, v in OVERLAY_OPTIONS)
        data = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work},{options}"
        if len(data) < _PAGE and not self.force_mount_api:
            self._sys.mount("overlay", merged, "overlay", 0, data)
        else:
            _fsmount_overlay(lowers, upper, work, merged)

    def unmount(self, key: str) -> None:
        """Unmount the snapshot's rootfs; nothing to do if it is not mounted or not there."""
        d = self._dir(key)
        with self._lock:
            self._unmount(d)

    def _unmount(self, d: Path) -> None:
        try:
            mounted = self._mounted(d)
        except FileNotFoundError:
            return
        if mounted:
            # Detached, as Docker does: a process still inside (cwd, open file) cannot make
            # the unmount fail; the overlay goes when its last user does.
            self._sys.umount2(d / "merged", MNT_DETACH)

    def remove(self, key: str) -> None:
        """Unmount and delete the snapshot (its upper dir too); nothing to do if absent."""
        d = self._dir(key)
        with self._lock:
            if not d.exists():
                return
            self._unmount(d)
            self._unmount_below(d)
            if (d / "merged").exists() and self._mounted(d):
                raise StateError("snapshot is still mounted", obj=str(d / "merged"))
            # Renamed first (atomic): a half-deleted snapshot is never taken for a live one.
            trash = self.root / scratch_name(".tmp-")
            os.rename(d, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def _unmount_below(self, d: Path) -> None:
        """Whatever else is mounted under the snapshot (e.g. the engine's bind mounts into
        the rootfs) comes off before anything is deleted: rmtree would follow into it."""
        from reference.linux.procfs import parse_mountinfo, read

        prefix = f"{d}/"
        below = [m.mount_point for m in parse_mountinfo(read("self", "mountinfo"))
                 if m.mount_point.startswith(prefix)]  # fmt: skip
        for point in sorted(set(below), key=len, reverse=True):
            with contextlib.suppress(KernelError):
                self._sys.umount2(point, MNT_DETACH)

    def upperdir(self, key: str) -> Path:
        d = self._dir(key)
        if not (d / "meta.json").exists():
            raise NotFoundError("No such snapshot", obj=key)
        return d / "upper"

    def exists(self, key: str) -> bool:
        return (self._dir(key) / "meta.json").exists()

    def mounted(self, key: str) -> bool:
        d = self._dir(key)
        try:
            return self._mounted(d)
        except FileNotFoundError:
            return False

    def diff(self, key: str) -> list[tuple[str, str]]:
        """`docker diff`: [("A"|"C"|"D", "/path")], judged against the init and image layers."""
        upper = self.upperdir(key)
        meta = json.loads((upper.parent / "meta.json").read_bytes())
        lowers = [self._inits / meta["init"]]
        with contextlib.suppress(NotFoundError):
            image = self.store.resolve(meta["image"])
            lowers += reversed(self.store.layer_dirs(image))
        return changes(upper, lowers)
