"""`refrun list [-q] [--format table|json]`: every container under --root."""

from __future__ import annotations

import sys

from reference.errors import ConfigError, RefError
from reference.oci import args, fastjson, store
from reference.oci.runlog import Globals

FLAGS = args.flags(("--quiet|-q", "quiet", args.BOOL), ("--format|-f", "format", args.VALUE))


def _owner(path: str) -> str:
    import os
    import pwd

    try:
        return pwd.getpwuid(os.stat(path).st_uid).pw_name
    except (KeyError, OSError):
        return ""


def table(rows: list[list[str]]) -> str:
    """Go's tabwriter as runc configures it: columns at least 12 wide, 3 spaces of padding."""
    widths = [max(12, *(len(r[c]) + 3 for r in rows)) for c in range(len(rows[0]) - 1)]
    lines = [
        "".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + r[-1] for r in rows
    ]
    return "\n".join(lines) + "\n"


def main(g: Globals, verb: str, argv: list[str]) -> int:
    opts, positional = args.parse(argv, FLAGS)
    if positional:
        raise ConfigError("takes no arguments", obj=verb)
    fmt = args.string(opts, "format", "table")
    if fmt not in ("table", "json"):
        raise ConfigError(f"invalid format {fmt!r} (table or json)", obj="--format")
    records = []
    for cid in store.list_ids(g):
        try:
            rec = store.load(g, cid)
        except RefError:
            continue  # a damaged entry must not hide the others; `delete --force` removes it
        if rec is not None:
            records.append(rec)
    if opts.get("quiet"):
        sys.stdout.write("".join(r.id + "\n" for r in records))
        return 0
    states = [r.oci_state() for r in records]
    if fmt == "json":
        sys.stdout.write(fastjson.dumps(states) + "\n")
        return 0
    rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
    for rec, st in zip(records, states, strict=True):
        rows.append(
            [
                rec.id,
                str(st["pid"]),
                str(st["status"]),
                rec.bundle,
                str(st["created"]),
                _owner(rec.dir),
            ]
        )
    sys.stdout.write(table(rows))
    return 0
