"""`refrun start ID`: let a created container's init exec the user's program.

The init is blocked opening exec.fifo for writing; opening it for reading releases it, it
writes one byte and execs. The fifo is then removed, which is what makes the status "running".
The open is non-blocking and polled, so that a dead init is an error instead of a hang.
"""

from __future__ import annotations

import os
import select

from reference.errors import RefError
from reference.oci import args, hooks, lifecycle, runlog, store
from reference.oci.runlog import Globals


def main(g: Globals, verb: str, argv: list[str]) -> int:
    _, positional = args.parse(argv, {})
    cid = args.one_id(positional, verb)
    start(g, store.require(g, cid))
    return 0


def start(g: Globals, rec: store.Record) -> None:
    lifecycle.check_transition("start", rec.status(), rec.id)
    fifo = rec.path(store.FIFO)
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        # Another `start` won the race between our status check and the open.
        raise RefError("cannot start an already running container", obj=rec.id) from None
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            if poller.poll(100) and os.read(fd, 1):
                break
            if rec.status() == lifecycle.STOPPED:
                raise RefError("container init is dead; cannot start", obj=rec.id)
    finally:
        os.close(fd)
    store.unlink_quiet(fifo)
    state = hooks.hook_state(
        str(rec.data.get("ociVersion", "")),
        rec.id,
        lifecycle.RUNNING,
        rec.pid,
        rec.bundle,
        rec.annotations(),
    )
    try:
        hooks.run_hooks("poststart", rec.hooks("poststart"), state)
    except RefError as e:
        # runtime.md: a poststart failure is logged; the container keeps running.
        runlog.warn(g, str(e))
