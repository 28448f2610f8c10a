"""`refrun state ID`: print the OCI state JSON (runtime.md "Query State")."""

from __future__ import annotations

import sys

from reference.oci import args, fastjson, store
from reference.oci.runlog import Globals


def main(g: Globals, verb: str, argv: list[str]) -> int:
    _, positional = args.parse(argv, {})
    rec = store.require(g, args.one_id(positional, verb))
    sys.stdout.write(fastjson.dumps(rec.oci_state(), indent=2) + "\n")
    return 0
