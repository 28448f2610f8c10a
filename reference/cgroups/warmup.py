"""Warm the kernel's cgroup migration lock in the background while refrun does other work.

Moving a process into a cgroup (a write to cgroup.procs) takes the global
cgroup_threadgroup_rwsem for writing, and the first writer after a quiet spell waits for an RCU
grace period (rcu_sync_enter): 10-20 ms on this machine, a fifth of a whole `refrun run`. For
about one more grace period after the last writer the lock stays fast. So `create` starts, on a
thread, as soon as the verb is known, a no-op migration: refrun's own pid into the cgroup it is
already in. The grace period then passes while Python imports modules and loads the spec, and
the real move of the container's first process finds the lock warm (measured: 13 ms -> 0.3 ms).
runc gets the same overlap without trying: its parent writes cgroup.procs while the re-executed
`runc init` is starting up.

Nothing changes but timing: the write moves nothing, and any failure (no permission, no cgroup
filesystem, an unexpected layout) is ignored, because all this can ever do is save time.
`create` forks its namespace stage while the thread may still wait in the kernel. That is safe:
the thread takes no lock a child could need (it imports nothing, its modules are loaded before
it starts; os.fork holds the interpreter's own locks across the fork), and the child, which has
only the forking thread, never touches this module. The caller `wait()`s before anything else
that forks (hooks), so that from then on refrun has one thread.
"""

from __future__ import annotations

import _thread
import os
import posixpath

from reference.cgroups.mounts import (
    UNIFIED,
    parse_mountinfo,
    parse_proc_cgroup,
    v1_mounts,
    v2_mount,
)

_done = _thread.allocate_lock()  # held while the thread runs
_started = False


def start() -> None:
    """Start the no-op migration on a thread (once per process)."""
    global _started
    if _started:
        return
    _started = True
    _done.acquire()
    try:
        _thread.start_new_thread(_migrate_self, ())
    except RuntimeError:  # cannot start a thread: then there is nothing to wait for
        _done.release()


def wait() -> None:
    """Return once the thread started by `start` (if any) is done."""
    _done.acquire()
    _done.release()


def own_procs_file() -> str | None:
    """cgroup.procs of the cgroup this process is in, in one hierarchy it can be found in."""
    with open("/proc/self/cgroup") as f:
        own = parse_proc_cgroup(f.read())
    with open("/proc/self/mountinfo") as f:
        mounts = parse_mountinfo(f.read())
    candidates = list(v1_mounts(mounts).items())
    v2 = v2_mount(mounts)
    if v2 is not None:
        candidates.append((UNIFIED, v2))
    for key, mount in candidates:
        if key not in own:
            continue
        rel = posixpath.relpath(posixpath.normpath(own[key]), mount.root)
        if rel == ".." or rel.startswith("../"):
            continue  # our cgroup is outside what is mounted here
        return os.path.normpath(os.path.join(mount.host_dir("/"), rel, "cgroup.procs"))
    return None


def _migrate_self() -> None:
    try:
        path = own_procs_file()
        if path is not None:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)
    except Exception:
        pass  # only ever an optimisation (see the module doc): any failure is ignored
    finally:
        _done.release()
