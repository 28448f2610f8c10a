#!/usr/bin/python3 -S
"""A deliberately broken dockerd: every registry on TEST-NET-2 (198.51.100.0/24, where the
registry suite's lab registries live) counts as insecure, as if a stray entry sat in every
configuration file it is given (--config-file). Invoked as `dockerd` from a directory put
first on PATH (tests/selftest/test_registries.py); it then execs the real dockerd, so the PID
stays the daemon's. The shared daemon is never started through it."""

import json
import os
import sys

STRAY_ENTRY = "198.51.100.0/24"


def config_file(argv: list[str]) -> str | None:
    for index, arg in enumerate(argv):
        if arg == "--config-file" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--config-file="):
            return arg.split("=", 1)[1]
    return None


def real_dockerd() -> str:
    here = os.path.realpath(os.path.dirname(os.path.abspath(sys.argv[0])))
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(directory, "dockerd")
        if os.path.realpath(directory) != here and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit("broken_dockerd: no real dockerd on PATH")


def main() -> None:
    argv = sys.argv[1:]
    path = config_file(argv)
    if path:
        with open(path) as stream:
            config = json.load(stream)
        entries = config.setdefault("insecure-registries", [])
        if STRAY_ENTRY not in entries:
            entries.append(STRAY_ENTRY)
        with open(path, "w") as stream:
            json.dump(config, stream)
    dockerd = real_dockerd()
    os.execv(dockerd, [dockerd, *argv])


if __name__ == "__main__":
    main()
