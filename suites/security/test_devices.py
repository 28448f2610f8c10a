"""/dev in a default container: the runtime's few safe nodes and nothing of the host's,
listed from the host through /proc/PID/root/dev."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

import pytest

from fixtures.containers import Containers
from fixtures.probe import SLEEP
from fixtures.security import in_container
from fixtures.targets.base import ContainerSpec

# runc libcontainer/specconv AllowedDevices (created by every kind here: all run runc).
NODES: Mapping[str, tuple[int, int]] = {
    "null": (1, 3),
    "zero": (1, 5),
    "full": (1, 7),
    "random": (1, 8),
    "urandom": (1, 9),
    "tty": (5, 0),
}
# runc libcontainer/rootfs_linux.go setupDevSymlinks/setupPtmx; `core` only where the host has
# /proc/kcore; /dev/console only with a terminal, which the suite never asks for.
LINKS: Mapping[str, str] = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",
    **({"core": "/proc/kcore"} if os.path.exists("/proc/kcore") else {}),
}
DIRS = frozenset({"pts", "shm", "mqueue"})


def describe(path: str) -> str:
    st = os.lstat(path)
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
        return f"{kind} {os.major(st.st_rdev)}:{os.minor(st.st_rdev)} {stat.S_IMODE(st.st_mode):o}"
    if stat.S_ISLNK(st.st_mode):
        return f"-> {os.readlink(path)}"
    return "dir" if stat.S_ISDIR(st.st_mode) else f"mode {st.st_mode:o}"


@pytest.mark.req("SEC-08")
def test_dev_holds_only_the_default_nodes(containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP))
    dev = in_container(container.pid, "/dev")
    seen = {name: describe(str(dev / name)) for name in os.listdir(dev)}
    wanted = {
        **{name: f"c {major}:{minor} 666" for name, (major, minor) in NODES.items()},
        **{name: f"-> {target}" for name, target in LINKS.items()},
        **dict.fromkeys(DIRS, "dir"),
    }
    extra = {name: seen[name] for name in seen.keys() - wanted.keys()}
    wrong = {
        name: (seen.get(name), want) for name, want in wanted.items() if seen.get(name) != want
    }
    assert not extra, f"unexpected entries in /dev: {extra}"
    assert not wrong, f"differing entries (seen, wanted): {wrong}"
