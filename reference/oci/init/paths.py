"""Paths inside the rootfs before pivot_root: resolve them as the container will see them.

A destination like /etc/resolv.conf may be a symlink in the image, possibly an absolute one, or
contain "..": joined naively it could point at the host (/etc/resolv.conf of the host!). As
runc's securejoin does, symlinks are followed with the rootfs as "/", and ".." stops at it.
"""

from __future__ import annotations

import os
import stat

from reference.errors import ConfigError, KernelError

_MAX_LINKS = 255


def secure_join(root: str, unsafe: str) -> str:
    """`root`/`unsafe` with symlinks resolved inside `root`; missing components stay as given."""
    todo = [p for p in reversed(unsafe.split("/")) if p and p != "."]
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        path = os.path.join(root, *done, part)
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            done.append(part)  # does not exist (yet): the rest is taken as written
            continue
        if not stat.S_ISLNK(mode):
            done.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise ConfigError("too many levels of symbolic links", obj=unsafe)
        target = os.readlink(path)
        if target.startswith("/"):
            done = []
        todo.extend(p for p in reversed(target.split("/")) if p and p != ".")
    return os.path.join(root, *done)


def make_dir(path: str, mode: int = 0o755) -> None:
    try:
        os.makedirs(path, mode, exist_ok=True)
    except OSError as e:
        raise KernelError("mkdir", e.errno or 0, obj=path) from None


def make_file(path: str) -> None:
    """An empty file to bind-mount a file onto (its parents created as directories)."""
    make_dir(os.path.dirname(path))
    if os.path.isdir(path):
        raise KernelError("open", 21, obj=path)  # EISDIR: a file cannot go on a directory
    if os.path.lexists(path):
        # Leave an existing mount point alone: opening it for writing would make overlayfs
        # copy it up into the container's layer, and `diff`/`commit` would then list it.
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
    except FileExistsError:
        return  # created meanwhile: fine, it is a mount point either way
    except OSError as e:
        raise KernelError("open", e.errno or 0, obj=path) from None


def make_symlink(target: str, path: str) -> None:
    """Create a symlink unless something is already there (the image may ship its own)."""
    try:
        os.symlink(target, path)
    except FileExistsError:
        return
    except OSError as e:
        raise KernelError("symlink", e.errno or 0, obj=path) from None
