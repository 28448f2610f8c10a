"""Stage one of a container: the forked child that enters the namespaces, then forks the init.

Joining and creating namespaces happens in a freshly forked, single-threaded child (setns into
a user or mount namespace refuses multithreaded callers), and a new PID namespace only applies
to children of the process that unshares it, hence the second fork: the init is the first
process of the new PID namespace, PID 1.

Order (runc's nsexec): open every namespace to join first (joining the mount namespace changes
what paths mean), join the user namespace before the others (it grants the capabilities to join
them), then create a new user namespace and let the parent write its id maps (only a process
outside may), become root in it, then create the other namespaces all at once. The parent has
already put this process in the container's cgroup, so a new cgroup namespace is rooted there.
"""

from __future__ import annotations

import os

from reference.errors import KernelError
from reference.linux.syscall import CLONE_NEWUSER, NAMESPACE_FLAGS, Syscall
from reference.oci.sync import Channel

# The order to join in; user first (see above), mount last (after it, /proc paths change).
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


def enter(sc: Syscall, ch: Channel | None, joins: list[tuple[str, str]], new: list[str]) -> None:
    """Join `joins` ((type, path) pairs, e.g. ("network", "/var/run/netns/x")) and create the
    namespaces of the types in `new`. `ch` carries the id-map handshake of a new user ns."""
    ordered = sorted(joins, key=lambda j: JOIN_ORDER.index(j[0]))
    fds: list[tuple[str, int]] = []
    try:
        for ns_type, path in ordered:
            try:
                fds.append((ns_type, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
            except OSError as e:
                raise KernelError("open", e.errno or 0, obj=f"{ns_type} namespace {path}") from None
        for ns_type, fd in fds:
            sc.setns(fd, NAMESPACE_FLAGS[ns_type])
    finally:
        for _, fd in fds:
            os.close(fd)
    if "user" in new:
        sc.unshare(CLONE_NEWUSER)
        if ch is not None:
            ch.send("userns")
            ch.expect("maps")
        # Root of the new namespace, so the init (and what it creates) is owned by its root.
        sc.setresgid(0, 0, 0)
        sc.setresuid(0, 0, 0)
    flags = 0
    for ns_type in new:
        if ns_type != "user":
            flags |= NAMESPACE_FLAGS[ns_type]
    if flags:
        sc.unshare(flags)
