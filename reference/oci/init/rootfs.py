"""The container's root: propagation, pivot_root, masked and read-only paths.

Order and technique follow runc (libcontainer/rootfs_linux.go): everything is first made a
slave of the host (events flow in, never out), the rootfs is bound onto itself so that it is a
mount point pivot_root accepts, and pivot_root(".", ".") stacks the old root under the new one
where it is detached, without needing a directory for it inside the image.
"""

from __future__ import annotations

import os

from reference.errors import KernelError
from reference.linux import procfs
from reference.linux.syscall import (
    MNT_DETACH,
    MS_BIND,
    MS_MOVE,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MS_SLAVE,
    Syscall,
)
from reference.oci.init.hostio import InitIO
from reference.oci.mountopts import PROPAGATION

# statvfs f_flag -> MS_ flags that a read-only remount must keep (they are locked in a userns).
_KEEP = ((2, MS_NOSUID), (4, MS_NODEV), (8, MS_NOEXEC))


def prepare_root(sc: Syscall, rootfs: str, propagation: str) -> None:
    """rootfsPropagation (default rslave) on /, a private parent for the rootfs, the rootfs
    bound onto itself."""
    sc.mount(None, "/", None, PROPAGATION.get(propagation, MS_SLAVE | MS_REC))
    _private_parent(sc, rootfs)
    sc.mount(rootfs, rootfs, "bind", MS_BIND | MS_REC)


def _private_parent(sc: Syscall, rootfs: str) -> None:
    # pivot_root(".", ".") refuses a shared put_old, and put_old is the rootfs bind made next:
    # a bind of a shared mount joins its peer group. So the mount the rootfs lives on (the
    # rootfs itself when it is a mount point, e.g. an engine's overlay) goes private first, as
    # runc does; rootfsPropagation is applied to the new / after pivot_root (apply_propagation).
    try:
        mounts = procfs.parse_mountinfo(procfs.read("self", "mountinfo"))
    except KernelError:
        return
    parent = procfs.mount_at(mounts, os.path.realpath(rootfs))
    if parent is not None and "shared" in parent.optional:
        sc.mount(None, parent.mount_point, None, MS_PRIVATE)


def apply_propagation(sc: Syscall, propagation: str) -> None:
    """rootfsPropagation on the container's own / (after pivot_root, so that the host's
    mounts are not touched); nothing when the spec names none."""
    if propagation in PROPAGATION:
        sc.mount(None, "/", None, PROPAGATION[propagation])


def pivot(sc: Syscall, io: InitIO, rootfs: str) -> None:
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        io.fchdir(new)
        sc.pivot_root(".", ".")
        # The old root is now stacked on "."; from there, detach it (after making it a slave,
        # so the unmount does not propagate to the host's mounts).
        io.fchdir(old)
        sc.mount(None, ".", None, MS_SLAVE | MS_REC)
        sc.umount2(".", MNT_DETACH)
        io.chdir("/")
    finally:
        os.close(old)
        os.close(new)


def move_root(sc: Syscall, io: InitIO, rootfs: str) -> None:
    """--no-pivot (for ramfs roots, where pivot_root is impossible): move the rootfs mount over
    / and chroot into it. The host's mounts stay reachable by a process with CAP_SYS_ADMIN,
    which is why pivot_root is the default."""
    io.chdir(rootfs)
    sc.mount(rootfs, "/", None, MS_MOVE)
    sc.chroot(".")
    io.chdir("/")


def readonly_path(sc: Syscall, path: str) -> None:
    """Bind `path` onto itself and remount it read-only (a missing path is skipped)."""
    try:
        sc.mount(path, path, None, MS_BIND | MS_REC)
    except KernelError as e:
        if e.errno == 2:  # ENOENT
            return
        raise
    sc.mount(path, path, None, _kept_flags(path) | MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC)


def mask_path(sc: Syscall, path: str) -> None:
    """Hide `path`: /dev/null over a file, an empty read-only tmpfs over a directory."""
    try:
        is_dir = os.path.isdir(path)
        os.lstat(path)
    except OSError:
        return  # nothing there to hide
    if is_dir:
        sc.mount("tmpfs", path, "tmpfs", MS_RDONLY, None)
    else:
        sc.mount("/dev/null", path, None, MS_BIND)


def readonly_root(sc: Syscall) -> None:
    sc.mount(None, "/", None, _kept_flags("/") | MS_BIND | MS_REMOUNT | MS_RDONLY)


def _kept_flags(path: str) -> int:
    try:
        st = os.statvfs(path).f_flag
    except OSError:
        return 0
    return sum(ms for bit, ms in _KEEP if st & bit)
