"""refd, the reference engine daemon.

    refd [--config-file FILE] [dockerd-style flags]

Flags and daemon.json keys are dockerd's (reference.engine.config lists them); the default
configuration file is /etc/refd/daemon.json. A configuration refd does not understand stops
it before anything is touched, with the key named, as dockerd does. `--purge` (refd's own,
for test drivers) starts on the given state, stops and removes every container, and exits.
"""

from __future__ import annotations

import sys

from reference.errors import RefError


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        sys.stdout.write(__doc__ or "")
        return 0
    if args and args[0] in ("-v", "--version"):
        from reference.engine.api.system import VERSION

        sys.stdout.write(f"refd version {VERSION}, API 1.41\n")
        return 0
    purge = "--purge" in args
    args = [a for a in args if a != "--purge"]
    try:
        from reference.engine.config import load
        from reference.engine.daemon import Daemon, log

        config = load(args)
        daemon = Daemon(config)
        daemon.restore()
        if purge:
            daemon.purge()
            return 0
        daemon.serve()
    except RefError as e:
        sys.stderr.write(f"failed to start daemon: {e}\n")
        return 1
    except OSError as e:
        sys.stderr.write(f"failed to start daemon: {e}\n")
        return 1
    log("info", "refd stopped")
    return 0
