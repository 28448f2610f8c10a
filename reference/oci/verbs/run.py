"""`refrun run [-d] [--bundle DIR] [--pid-file F] [--console-socket S] ID`: create + start.

In the foreground refrun stays the container's parent (it is a subreaper, see launch.py),
forwards signals to it, removes the container when it exits, and exits with its status
(128 + signal if it was killed), as `runc run` does. With -d it returns after start.
"""

from __future__ import annotations

from reference.errors import RefError
from reference.oci import args, launch, runlog, store, teardown
from reference.oci.verbs import create, start

FLAGS = {
    **create.FLAGS,
    **args.flags(("--detach|-d", "detach", args.BOOL), ("--keep", "keep", args.BOOL)),
}


def main(g: runlog.Globals, verb: str, argv: list[str]) -> int:
    opts, positional = args.parse(argv, FLAGS)
    cid = args.one_id(positional, verb)
    rec = create.create(g, cid, create.CreateOptions.from_opts(opts))
    try:
        start.start(g, rec)
    except BaseException:
        _remove(g, rec)
        raise
    if opts.get("detach"):
        return 0
    runlog.debug(g, "run: started")
    try:
        code = launch.wait_forwarding(rec.pid)
        runlog.debug(g, f"run: container exited with {code}")
    finally:
        if not opts.get("keep"):
            _remove(g, rec)
            runlog.debug(g, "run: container removed")
    return code


def _remove(g: runlog.Globals, rec: store.Record) -> None:
    try:
        teardown.kill_and_wait(rec)
        teardown.destroy(g, rec)
    except RefError as e:
        runlog.warn(g, f"cleanup of {rec.id}: {e}")
