"""`refrun kill [--all] ID [SIGNAL]`: send a signal (default SIGTERM) to the container."""

from __future__ import annotations

from reference.errors import ConfigError
from reference.oci import args, lifecycle, store, teardown
from reference.oci.runlog import Globals

FLAGS = args.flags(("--all|-a", "all", args.BOOL))


def main(g: Globals, verb: str, argv: list[str]) -> int:
    opts, positional = args.parse(argv, FLAGS)
    if not 1 <= len(positional) <= 2:
        raise ConfigError("usage: kill [--all] ID [SIGNAL]", obj=verb)
    cid = positional[0]
    sig = teardown.parse_signal(positional[1] if len(positional) == 2 else "SIGTERM")
    rec = store.require(g, cid)
    lifecycle.check_transition("kill", rec.status(), cid)
    teardown.signal_container(rec, sig, all_processes=bool(opts.get("all")))
    return 0
