"""Client/server: the API socket is the daemon's, with restrictive permissions, and the
daemon is a long-running process apart from the client.

Witness: stat(2) of the socket, and the kernel's socket table (/proc/net/unix of the daemon's
network namespace, which need not be ours: the listening socket bound to that path, by socket
inode) matched against every process's open file descriptors (/proc/<pid>/fd → socket:[inode]).
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from fixtures import host
from fixtures.netlab import engine_netns
from fixtures.targets.base import Driver

# Docker's default: owner root, group `docker` (-G), mode 0660: no access for anyone else.
SOCKET_OWNER_UID = 0
SOCKET_MODE = 0o660
SO_ACCEPTCON = 0x10000  # /proc/net/unix Flags of a listening socket


def engine_socket(target: Driver) -> Path:
    socket = target.engine_socket()
    assert socket is not None, f"{target.name} declares an engine but names no socket"
    return socket


def listening_inodes(target: Driver) -> set[str]:
    """Socket inodes of listening unix sockets bound to the target's socket path, from the
    table of the daemon's network namespace (/proc/net/unix lists its own namespace's)."""
    wanted = os.path.realpath(engine_socket(target))
    table = engine_netns(target).run("cat", "/proc/net/unix")
    assert table.returncode == 0, table.stderr
    found = set()
    for line in table.stdout.splitlines()[1:]:
        fields = line.split()
        listening = len(fields) >= 8 and int(fields[3], 16) & SO_ACCEPTCON
        if listening and os.path.realpath(fields[7]) == wanted:
            found.add(fields[6])
    return found


def holders(inodes: set[str]) -> dict[int, int | None]:
    """PID → start time of every process with one of the socket `inodes` open."""
    links = {f"socket:[{inode}]" for inode in inodes}
    found: dict[int, int | None] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry.name}/fd")
            if any(os.readlink(f"/proc/{entry.name}/fd/{fd}") in links for fd in fds):
                found[int(entry.name)] = host.start_time(int(entry.name))
        except OSError:
            continue  # exited meanwhile, or a kernel thread
    return found


@pytest.mark.req("ARCH-01")
@pytest.mark.needs("engine")
def test_socket_is_root_owned_with_mode_0660(target: Driver) -> None:
    info = os.stat(engine_socket(target))
    assert stat.S_ISSOCK(info.st_mode), f"{engine_socket(target)} is not a socket"
    assert info.st_uid == SOCKET_OWNER_UID, f"socket owned by uid {info.st_uid}"
    assert stat.S_IMODE(info.st_mode) == SOCKET_MODE, f"mode {stat.S_IMODE(info.st_mode):04o}"


@pytest.mark.req("ARCH-13")
@pytest.mark.needs("engine")
def test_socket_is_held_by_a_daemon_apart_from_the_client(target: Driver) -> None:
    inodes = listening_inodes(target)
    assert inodes, f"no process listens on {engine_socket(target)}"
    before = holders(inodes)
    assert before, "no process holds the listening socket"
    assert os.getpid() not in before
    target.version()  # one client call; the daemon must neither come nor go with it
    assert holders(inodes) == before, "the listening processes changed across a client call"
    client = shutil.which(str(getattr(target, "binary", "")))
    for pid in before:
        assert host.status(pid).get("PPid") != str(os.getpid()), f"{pid} is our child"
        if client is not None:
            assert os.path.realpath(f"/proc/{pid}/exe") != os.path.realpath(client), (
                f"the socket is held by the client binary {client} (pid {pid})"
            )
