"""`refrun delete [--force] ID`: remove a stopped container (--force kills it first)."""

from __future__ import annotations

from reference.errors import ConfigError, NotFoundError
from reference.oci import args, lifecycle, store, teardown
from reference.oci.runlog import Globals

FLAGS = args.flags(("--force|-f", "force", args.BOOL))


def main(g: Globals, verb: str, argv: list[str]) -> int:
    opts, positional = args.parse(argv, FLAGS)
    cid = args.one_id(positional, verb)
    force = bool(opts.get("force"))
    try:
        rec = store.require(g, cid)
    except (ConfigError, NotFoundError):
        if not force:
            raise
        # As runc: --force succeeds on a container that is not there, and a damaged or
        # missing state.json (an aborted create) must not make a container undeletable.
        store.Record(store.container_dir(g, cid), {"id": cid}).remove()
        return 0
    status = rec.status()
    # runc deletes a created container without --force (its init only waits on the fifo), and
    # containerd relies on that; the spec's "not stopped -> error" rule holds for the others.
    lifecycle.check_transition("delete", status, cid, force=force or status == lifecycle.CREATED)
    if status != lifecycle.STOPPED:
        teardown.kill_and_wait(rec)
    teardown.destroy(g, rec)
    return 0
