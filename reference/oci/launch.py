"""The parent's side of starting container processes: fork, id maps, reaping, waiting.

refrun makes itself a child subreaper before it forks: the namespace stage exits as soon as it
has forked the init, and the init is then re-parented to refrun rather than to the host's init,
so `run` and `exec` can wait for it and report its exit status (and a failed create can reap
what it started before it removes the cgroup).
"""

from __future__ import annotations

import os
import sys

from reference.errors import KernelError, RefError
from reference.linux.syscall import PR_SET_CHILD_SUBREAPER
from reference.oci import sync

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from reference.oci.spec import IDMapping


def become_subreaper() -> None:
    from reference.linux.libc import LinuxSyscall

    LinuxSyscall().prctl(PR_SET_CHILD_SUBREAPER, 1)


def fork(body: Callable[[], None], ch: sync.Channel, other: sync.Channel) -> int:
    """Fork a child that closes the parent's pipe ends (`other`), runs `body` and _exits: 0 if
    it returned, 1 after sending any exception to the parent over `ch` (or to stderr)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        other.close()
        body()
        code = 0
    except BaseException as e:
        report_child_error(ch, e)
    finally:
        os._exit(code)


def report_child_error(ch: sync.Channel, e: BaseException) -> None:
    try:
        ch.send("error", **sync.encode_error(e))
    except OSError:
        # Nobody listens any more (after `create` returned): the container's stderr is the
        # only place left, which is where runc's init writes too.
        print(f"refrun init: {e}", file=sys.stderr, flush=True)


def kill_quiet(pid: int, sig: int) -> None:
    """kill, where a process that is already gone is no error."""
    try:
        os.kill(pid, sig)
    except OSError:
        return


def reap(pid: int, *, kill: bool = False) -> int | None:
    """waitpid `pid` (SIGKILL first if asked); its exit status, or None if not our child."""
    if kill:
        kill_quiet(pid, 9)
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    return exit_code(status)


def exit_code(status: int) -> int:
    """A shell's view of a wait status: the exit code, or 128 + the signal that killed it."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def write_id_maps(
    pid: int, uid_maps: tuple[IDMapping, ...], gid_maps: tuple[IDMapping, ...]
) -> None:
    for name, maps, field in (
        ("uid_map", uid_maps, "uidMappings"),
        ("gid_map", gid_maps, "gidMappings"),
    ):
        text = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps)
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
        except OSError as e:
            raise KernelError(f"write {name}", e.errno or 0, obj=f"linux.{field}") from None


def connect_console(path: str) -> int:
    """Connect to --console-socket; the fd is inherited by the init, which sends the pty."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise KernelError("connect", e.errno or 0, obj=f"console socket {path}") from None
    return sock.detach()


# Signals a foreground `run`/`exec` passes on to the container's process, as runc does.
_FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH")


def exit_on_signals() -> None:
    """In the container's init, until it execs: die of the signals that would kill a program.

    A PID namespace's init only gets the signals it handles; runc's init (Go, with handlers
    everywhere) dies of `kill ID TERM` while it waits in the created state, and so should
    ours. execve resets the handlers, so the user's program starts with the defaults.
    """
    if TYPE_CHECKING:
        import signal as _signal
    else:
        import _signal

    def die(sig: int, _frame: object) -> None:
        os._exit(128 + sig)

    for name in _FORWARDED:
        if name != "SIGWINCH":
            _signal.signal(getattr(_signal, name), die)


def wait_forwarding(pid: int) -> int:
    """Wait for `pid` (our child, directly or as subreaper), forwarding signals to it, reaping
    any other orphan meanwhile; its exit code as a shell reports it."""
    if TYPE_CHECKING:
        import signal as _signal
    else:
        import _signal

    def forward(sig: int, _frame: object) -> None:
        kill_quiet(pid, sig)

    saved = {}
    for name in _FORWARDED:
        sig = getattr(_signal, name)
        saved[sig] = _signal.signal(sig, forward)
    try:
        while True:
            try:
                wpid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                raise RefError("lost track of the container process", obj=str(pid)) from None
            if wpid == pid:
                return exit_code(status)
    finally:
        for sig, handler in saved.items():
            _signal.signal(sig, handler)
