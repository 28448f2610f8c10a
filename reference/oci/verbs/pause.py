"""`refrun pause ID` / `refrun resume ID`: freeze or thaw every task of the container."""

from __future__ import annotations

from reference.oci import args, lifecycle, store
from reference.oci.runlog import Globals


def main(g: Globals, verb: str, argv: list[str]) -> int:
    _, positional = args.parse(argv, {})
    cid = args.one_id(positional, verb)
    rec = store.require(g, cid)
    lifecycle.check_transition("pause" if verb == "pause" else "resume", rec.status(), cid)
    manager = rec.manager()
    if verb == "pause":
        manager.freeze()
    else:
        manager.thaw()
    return 0
