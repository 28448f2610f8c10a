"""`refrun spec [--bundle DIR] [--rootless]`: write a starter config.json (runc's)."""

from __future__ import annotations

import json
import os

from reference.errors import ConfigError, ConflictError, KernelError
from reference.oci import args
from reference.oci.default import default_spec
from reference.oci.runlog import Globals

FLAGS = args.flags(("--bundle|-b", "bundle", args.VALUE), ("--rootless", "rootless", args.BOOL))


def main(g: Globals, verb: str, argv: list[str]) -> int:
    opts, positional = args.parse(argv, FLAGS)
    if positional:
        raise ConfigError("takes no arguments", obj=verb)
    path = os.path.join(args.string(opts, "bundle", "."), "config.json")
    text = json.dumps(default_spec(rootless=bool(opts.get("rootless"))), indent="\t") + "\n"
    try:
        # O_EXCL: never overwrite someone's config (runc: "File config.json exists").
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        raise ConflictError("config.json exists; remove it first", obj=path) from None
    except OSError as e:
        raise KernelError("open", e.errno or 0, obj=path) from None
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return 0
