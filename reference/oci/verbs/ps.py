"""`refrun ps [--format table|json] ID [PS_ARGS...]`: the processes of a container.

json prints the PIDs (host namespace) as an array, as runc does; table runs ps(1) with the
given arguments (default -ef) and keeps its header and the lines of the container's PIDs.
"""

from __future__ import annotations

import sys

from reference.errors import ConfigError, RefError
from reference.oci import args, fastjson, store
from reference.oci.runlog import Globals

FLAGS = args.flags(("--format|-f", "format", args.VALUE))


def _field(line: str, column: int) -> str:
    fields = line.split()
    return fields[column] if column < len(fields) else ""


def main(g: Globals, verb: str, argv: list[str]) -> int:
    opts, positional = args.parse(argv, FLAGS, stop_at_positional=True)
    if not positional:
        raise ConfigError("usage: ps [--format table|json] ID [PS_ARGS...]", obj=verb)
    rec = store.require(g, positional[0])
    pids = rec.manager().pids() if rec.cgroup() else []
    fmt = args.string(opts, "format", "table")
    if fmt == "json":
        sys.stdout.write(fastjson.dumps(pids) + "\n")
        return 0
    if fmt != "table":
        raise ConfigError(f"invalid format {fmt!r} (table or json)", obj="--format")
    import subprocess

    ps_args = positional[1:] or ["-ef"]
    try:
        out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise RefError(f"ps {' '.join(ps_args)} failed ({e})", obj="ps") from None
    lines = out.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    if "PID" not in header:
        raise RefError("no PID column in the output of ps", obj=" ".join(ps_args))
    column = header.index("PID")
    wanted = {str(p) for p in pids}
    keep = [lines[0]] + [ln for ln in lines[1:] if _field(ln, column) in wanted]
    sys.stdout.write("\n".join(keep) + "\n")
    return 0
