"""Exits and OOM events of running containers, watched from one thread.

refd is a child subreaper (PR_SET_CHILD_SUBREAPER): when the OCI runtime's `create` exits,
the container's init is reparented to refd, which can then waitpid() it for its exit status.
Each init is watched through a pidfd (readable once it has exited), so no waitpid(-1) ever
races with subprocess's own waits. On cgroup v1 each container's memory cgroup also gets an
eventfd registered in cgroup.event_control against memory.oom_control: it fires on every OOM
in the cgroup, killed or (with --oom-kill-disable) paused, which is what Docker 20.10 reports
as an "oom" event and as State.OOMKilled.

Adopted containers (live-restore after a refd restart) are watched by pidfd too, but their
init is not refd's child: its exit status went to whoever reaped it (the old refd's parent or
PID 1), so the exit code is unknown. A per-container monitor process (containerd's shim) would
keep it; refd has none, and reports such exits as code 255.

Orphans: with --pid host, or a double fork inside a container, processes other than the init
can be reparented to refd; `sweep` reaps those zombies, skipping every PID that runtime.spawn
registered (their exit status belongs to a Popen) and every watched init.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
from collections.abc import Callable
from pathlib import Path

from reference.engine import runtime

UNKNOWN_EXIT = 255
SWEEP_SECONDS = 5.0
ExitHandler = Callable[[int], None]  # called with the exit code, in a thread of its own
OomHandler = Callable[[], None]


def become_subreaper() -> None:
    from reference.linux.libc import LinuxSyscall
    from reference.linux.syscall import PR_SET_CHILD_SUBREAPER

    LinuxSyscall().prctl(PR_SET_CHILD_SUBREAPER, 1)


def exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else UNKNOWN_EXIT


class Watch:
    def __init__(self, pid: int, pidfd: int, on_exit: ExitHandler, adopted: bool) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.on_exit = on_exit
        self.adopted = adopted
        self.oom_fds: tuple[int, int] | None = None  # (eventfd, oom_control fd)


class Monitor:
    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._pending: list[tuple[int, object]] = []
        self._watched: dict[int, Watch] = {}  # pid → watch
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self._thread.start()

    # -- registration -------------------------------------------------------------------
    def watch(self, pid: int, on_exit: ExitHandler, *, adopted: bool = False) -> None:
        """Call `on_exit(code)` once `pid` exits. The pidfd is taken now: if the process is
        already gone this raises ProcessLookupError and the caller handles the exit."""
        pidfd = os.pidfd_open(pid)
        entry = Watch(pid, pidfd, on_exit, adopted)
        with self._lock:
            self._watched[pid] = entry
            self._pending.append((pidfd, ("exit", entry)))
        os.write(self._wake_w, b"x")

    def watch_oom(self, pid: int, memory_dir: Path, on_oom: OomHandler) -> bool:
        """cgroup v1: an eventfd that fires on every OOM of that memory cgroup."""
        try:
            control = os.open(memory_dir / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            with open(memory_dir / "cgroup.event_control", "w") as f:
                f.write(f"{efd} {control}")
        except OSError:
            os.close(efd)
            os.close(control)
            return False
        with self._lock:
            entry = self._watched.get(pid)
            if entry is None:
                os.close(efd)
                os.close(control)
                return False
            entry.oom_fds = (efd, control)
            self._pending.append((efd, ("oom", on_oom)))
        os.write(self._wake_w, b"x")
        return True

    def watched(self, pid: int) -> bool:
        with self._lock:
            return pid in self._watched

    # -- the thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            ready = self._selector.select(timeout=SWEEP_SECONDS)
            if not ready:
                self.sweep()
            for key, _ in ready:
                if key.data is None:
                    self._take_pending()
                    continue
                kind, payload = key.data
                if kind == "oom":
                    try:
                        os.eventfd_read(key.fd)
                    except OSError:
                        self._selector.unregister(key.fd)  # the cgroup is gone
                        continue
                    threading.Thread(target=payload, name="oom", daemon=True).start()
                else:
                    self._exited(payload)

    def _take_pending(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 4096)
        with self._lock:
            pending, self._pending = self._pending, []
        for fd, data in pending:
            self._selector.register(fd, selectors.EVENT_READ, data)

    def _exited(self, entry: Watch) -> None:
        code = UNKNOWN_EXIT
        if not entry.adopted:
            try:
                _, status = os.waitpid(entry.pid, 0)
                code = exit_code(status)
            except ChildProcessError:
                pass
        with self._lock:
            self._watched.pop(entry.pid, None)
        for fd in (entry.pidfd, *(entry.oom_fds or ())):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(fd)
            os.close(fd)
        threading.Thread(target=entry.on_exit, args=(code,), name="exit", daemon=True).start()

    def sweep(self) -> list[int]:
        """Reap zombie children that nobody waits for (see module doc)."""
        me = str(os.getpid())
        lock, spawned = runtime.spawned()
        reaped = []
        with lock:
            with self._lock:
                skip = set(spawned) | set(self._watched)
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit() or int(entry.name) in skip:
                    continue
                try:
                    text = Path(f"/proc/{entry.name}/stat").read_text()
                except OSError:
                    continue
                fields = text[text.rfind(")") + 2 :].split()
                if fields[0] == "Z" and fields[1] == me:
                    try:
                        os.waitpid(int(entry.name), os.WNOHANG)
                        reaped.append(int(entry.name))
                    except ChildProcessError:
                        pass
        return reaped
