"""File primitives shared by the v1 and v2 drivers.

Cgroup files are kernel interfaces, not data: a write either takes effect or fails with an errno
that means something (EINVAL, EBUSY, ...), so every failure becomes a `CgroupError` naming the
file and the value. Writes never create files: a missing file means the controller or the knob is
absent, and creating a plain file under a real cgroupfs is refused anyway. Fake trees used by the
unit tests therefore have to provide the files they expect to be written.

Paths are strings or os.PathLike (the unit tests pass pathlib.Path); nothing here imports
pathlib, which costs ~10 ms and would be paid on every `refrun create` and `delete`.
"""

from __future__ import annotations

import errno
import os
import time

from reference.errors import CgroupError

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see reference/records.py
if TYPE_CHECKING:
    from collections.abc import Callable

    from reference.linux.syscall import StrPath

# runc's rmdir schedule: five tries, doubling from 10 ms (about 0.3 s in all). Long enough for
# the tasks of a just-killed container to be reaped, short enough not to stall a `delete`.
RMDIR_DELAYS = (0.01, 0.02, 0.04, 0.08, 0.16)


def warn(logger: str, msg: str, *args: object) -> None:
    """logging.getLogger(logger).warning(msg, *args), importing logging only when there is
    something to say: the runtime CLI imports this package on every create, and importing
    logging costs more (~10 ms) than the rest of what create does with cgroups."""
    import logging

    logging.getLogger(logger).warning(msg, *args)


def read(path: StrPath) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        raise CgroupError(f"cannot read cgroup file ({e.strerror})", obj=os.fspath(path)) from e


def read_int(path: StrPath) -> int | None:
    """An integer file; None for "max" (v2's spelling of unlimited)."""
    text = read(path).strip()
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError as e:
        raise CgroupError(f"not an integer: {text!r}", obj=os.fspath(path)) from e


def read_keyed(path: StrPath) -> dict[str, int]:
    """A flat keyed file ("key value" lines: memory.stat, cpu.stat, memory.events, ...)."""
    out: dict[str, int] = {}
    for line in read(path).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def write(path: StrPath, value: str | int) -> None:
    # No O_CREAT (see module doc); O_TRUNC is a no-op on cgroupfs but keeps fake trees readable.
    data = str(value).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(f"cannot open cgroup file ({e.strerror})", obj=os.fspath(path)) from e
    try:
        os.write(fd, data)
    except OSError as e:
        raise CgroupError(
            f"writing {data.decode()!r} failed ({e.strerror})", obj=os.fspath(path)
        ) from e
    finally:
        os.close(fd)


# Files whose value a new cgroup does not inherit: membership, and v1 cpuset's lists (a fresh
# v1 cpuset child has empty cpus/mems, which is why the v1 driver copies them down).
_FRESH = frozenset(
    {
        "cgroup.procs",
        "tasks",
        "cgroup.subtree_control",
        "cgroup.freeze",
        "cpuset.cpus",
        "cpuset.mems",
    }
)


def mkdir(directory: StrPath, *, fake: bool) -> None:
    """Create a cgroup and any missing ancestors.

    The kernel fills a new cgroup directory with its control files. A fake tree cannot, so there
    each new directory gets a copy of its parent's files (values inherited, membership and cpuset
    lists empty): close enough to the kernel's defaults for the drivers' reads and writes.
    """
    missing = []
    d = os.fspath(directory)
    while d and not os.path.exists(d):
        missing.append(d)
        parent = os.path.dirname(d)
        d = parent if parent != d else ""
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            continue  # another process created it meanwhile: fine, it is the same cgroup
        except OSError as e:
            raise CgroupError(f"cannot create cgroup ({e.strerror})", obj=d) from e
        if fake:
            for f in os.scandir(os.path.dirname(d)):
                if f.is_file():
                    with open(f.path) as src:
                        text = "" if f.name in _FRESH else src.read()
                    with open(os.path.join(d, f.name), "w") as out:
                        out.write(text)


def ancestry(directory: str) -> list[str]:
    """`directory` and its ancestors up to "/", nearest first (what [p, *p.parents] gives)."""
    chain = [directory]
    while (parent := os.path.dirname(chain[-1])) != chain[-1]:
        chain.append(parent)
    return chain


def subdirs(directory: str) -> list[str]:
    """The child directories of `directory`, sorted; none if it is gone (a cgroup removed
    meanwhile has no children left)."""
    try:
        with os.scandir(directory) as it:
            return sorted(e.path for e in it if e.is_dir())
    except FileNotFoundError:
        return []


def procs(directory: StrPath, *, recursive: bool = True) -> list[int]:
    """PIDs in `directory`'s cgroup.procs and, if recursive, in every descendant's."""
    found: set[int] = set()
    dirs = [os.fspath(directory)]
    while dirs:
        d = dirs.pop()
        procs_file = os.path.join(d, "cgroup.procs")
        if os.path.exists(procs_file):
            found.update(int(tok) for tok in read(procs_file).split())
        if recursive:
            dirs.extend(subdirs(d))
    return sorted(found)


def poll(check: Callable[[], bool], *, timeout: float) -> bool:
    """Call `check` with a growing sleep until it is true or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def remove(directory: StrPath, *, fake: bool) -> None:
    """rmdir a cgroup and its descendants, deepest first; a missing directory is not an error.

    On cgroupfs a directory holding only control files is removable, and EBUSY means tasks are
    still inside: retry while they drain, then fail. A fake tree (`fake`, i.e. a non-/ root) holds
    plain files instead, so it is emptied by hand, and a non-empty cgroup.procs there stands in for
    the kernel's EBUSY so that the same path is exercised by the unit tests.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return
    for child in subdirs(directory):
        remove(child, fake=fake)
    for attempt, delay in enumerate((*RMDIR_DELAYS, None)):
        try:
            if fake:
                _fake_rmdir(directory)
            else:
                os.rmdir(directory)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno == errno.EBUSY and delay is not None:
                time.sleep(delay)
                continue
            hint = " (tasks still inside)" if e.errno == errno.EBUSY else ""
            raise CgroupError(
                f"cannot remove cgroup after {attempt + 1} attempts: {e.strerror}{hint}",
                obj=directory,
            ) from e


def _fake_rmdir(directory: str) -> None:
    if procs(directory, recursive=False):
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), directory)
    for entry in os.scandir(directory):
        if entry.is_file():
            os.unlink(entry.path)
    os.rmdir(directory)
