"""Signalling and tearing down a container: shared by kill, delete and run.

Killing the init of a container with its own PID namespace makes the kernel kill everything
else in it; with a shared PID namespace the other processes survive, so `--all` (and delete)
signal every PID in the container's cgroup, as runc does. Frozen tasks do not act on SIGKILL
until thawed, so a paused container is thawed after a SIGKILL.
"""

from __future__ import annotations

import os
import time

from reference.errors import ConfigError, KernelError, RefError
from reference.oci import hooks, lifecycle, runlog

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # the same constants and functions, with stubs

    from reference.oci.store import Record
else:
    import _signal  # `signal` imports enum: ~8 ms for the same constants


def parse_signal(text: str) -> int:
    """`KILL`, `SIGKILL`, `9`, `RTMIN+3` -> number; anything else is a ConfigError."""
    if text.isdigit():
        num = int(text)
        if 0 < num <= _signal.SIGRTMAX:
            return num
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        base, plus, offset = name.partition("+")
        value = getattr(_signal, base, None)
        if isinstance(value, int) and not base.startswith("SIG_"):
            num = value + (int(offset) if plus and offset.isdigit() else 0)
            if not plus or (base == "SIGRTMIN" and num <= _signal.SIGRTMAX):
                return num
    raise ConfigError(f"unknown signal {text!r}", obj="signal")


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass  # it died meanwhile: what we wanted, or at least not an error to report
    except OSError as e:
        raise KernelError("kill", e.errno or 0, obj=f"pid {pid}") from None


def signal_container(rec: Record, sig: int, *, all_processes: bool = False) -> None:
    if not all_processes:
        _kill(rec.pid, sig)
        return
    manager = rec.manager()
    paused = rec.status() == lifecycle.PAUSED
    for pid in manager.pids():
        _kill(pid, sig)
    if paused and sig == _signal.SIGKILL:
        manager.thaw()


def kill_and_wait(rec: Record, timeout: float = 10.0) -> None:
    """SIGKILL the init and every task in the cgroup; wait until the init is gone."""
    if rec.cgroup():
        signal_container(rec, _signal.SIGKILL, all_processes=True)
    # Only a live init (same start time) is signalled by PID: a reaped init's PID may
    # already belong to some other process.
    if rec.status() != lifecycle.STOPPED:
        _kill(rec.pid, _signal.SIGKILL)
    deadline = time.monotonic() + timeout
    delay = 0.001
    while rec.status() != lifecycle.STOPPED:
        if time.monotonic() > deadline:
            raise RefError(f"container init (pid {rec.pid}) did not die after SIGKILL", obj=rec.id)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def destroy(g: runlog.Globals, rec: Record) -> None:
    """Remove a stopped container: its cgroup, poststop hooks, its state directory.

    The cgroup goes first: a failure there keeps the state directory, so that `delete` can be
    retried instead of leaving an orphaned cgroup that nothing refers to any more."""
    if rec.cgroup():
        manager = rec.manager()
        for pid in manager.pids():  # stragglers of a shared PID namespace
            _kill(pid, _signal.SIGKILL)
        manager.destroy()
        extra = rec.cgroup().get("extra")
        if isinstance(extra, dict) and extra:
            from reference.oci import cgroup_extra

            cgroup_extra.remove({str(k): str(v) for k, v in extra.items()})
    try:
        state = hooks.hook_state(
            str(rec.data.get("ociVersion", "")),
            rec.id,
            lifecycle.STOPPED,
            0,
            rec.bundle,
            rec.annotations(),
        )
        hooks.run_hooks("poststop", rec.hooks("poststop"), state)
    except RefError as e:
        # runtime.md: a poststop failure is logged and the delete goes on.
        runlog.warn(g, str(e))
    rec.remove()
