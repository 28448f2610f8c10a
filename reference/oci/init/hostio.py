"""Host operations of the container init that are not in the Syscall protocol.

They are kept behind one small class for the same reason the syscalls are: the init sequence is
tested with `RecordingIO`, which records instead of changing the test process's session, cwd,
umask or OOM score, and whose `execve` returns instead of replacing the process.
"""

from __future__ import annotations

import os

from reference.errors import KernelError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object


class InitIO(Protocol):
    def write_file(self, path: str, data: str) -> None: ...
    def chdir(self, path: str) -> None: ...
    def fchdir(self, fd: int) -> None: ...
    def umask(self, mask: int) -> int: ...
    def setsid(self) -> None: ...
    def chown(self, path: str, uid: int, gid: int) -> None: ...
    def loopback_up(self) -> None: ...
    def exec_fifo(self, dir_fd: int) -> None:
        """Block until `refrun start` opens the container's exec.fifo, then signal it."""
        ...

    def close_fds(self, first: int) -> None:
        """Mark every fd from `first` up close-on-exec: the container gets stdio and the
        --preserve-fds ones, never what refrun's caller happened to leave open."""
        ...

    def execve(self, path: str, argv: list[str], env: list[str]) -> None:
        """Replace the process; returns only in fakes."""
        ...


def _fail(op: str, e: OSError, obj: str) -> KernelError:
    return KernelError(op, e.errno or 0, obj=obj)


class HostIO:
    """The real thing."""

    def write_file(self, path: str, data: str) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, data.encode())
            finally:
                os.close(fd)
        except OSError as e:
            raise _fail("write", e, f"{data!r} to {path}") from None

    def chdir(self, path: str) -> None:
        try:
            os.chdir(path)
        except OSError as e:
            raise _fail("chdir", e, path) from None

    def fchdir(self, fd: int) -> None:
        try:
            os.fchdir(fd)
        except OSError as e:
            raise _fail("fchdir", e, f"fd {fd}") from None

    def umask(self, mask: int) -> int:
        return os.umask(mask)

    def setsid(self) -> None:
        try:
            os.setsid()
        except OSError as e:
            raise _fail("setsid", e, "init") from None

    def chown(self, path: str, uid: int, gid: int) -> None:
        try:
            os.chown(path, uid, gid, follow_symlinks=False)
        except OSError as e:
            raise _fail("chown", e, path) from None

    def loopback_up(self) -> None:
        """ip link set lo up: runc configures the loopback of a new network namespace."""
        from reference.linux.libc import link_up

        link_up("lo")

    def exec_fifo(self, dir_fd: int) -> None:
        # Through the state directory's fd: after pivot_root the host path is out of reach,
        # and /proc/self/fd is unreadable once a non-root user has been set.
        try:
            fd = os.open("exec.fifo", os.O_WRONLY | os.O_CLOEXEC, dir_fd=dir_fd)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        except OSError as e:
            raise _fail("open", e, "exec.fifo") from None
        os.close(dir_fd)

    def close_fds(self, first: int) -> None:
        try:
            fds = [int(name) for name in os.listdir("/proc/self/fd")]
        except OSError:  # no /proc in the container: every possible fd, then
            import resource

            fds = list(range(resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
        for fd in fds:
            if fd >= first:
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    continue  # the fd listdir itself used, already closed
        for fd in range(3, first):
            try:
                os.set_inheritable(fd, True)  # --preserve-fds: passed on as they are
            except OSError:
                continue

    def execve(self, path: str, argv: list[str], env: list[str]) -> None:
        if TYPE_CHECKING:
            import signal as _signal
        else:
            import _signal

        # Python ignores SIGPIPE and SIGXFSZ; ignored signals survive execve, and a program
        # that expects to die on a closed pipe must not inherit that.
        for sig in (_signal.SIGPIPE, _signal.SIGXFSZ):
            _signal.signal(sig, _signal.SIG_DFL)
        environ = dict(e.split("=", 1) for e in env)
        try:
            os.execve(path, argv, environ)
        except OSError as e:
            raise _fail("exec", e, path) from None
