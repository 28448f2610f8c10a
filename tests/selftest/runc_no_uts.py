#!/usr/bin/python3 -S
"""A deliberately broken OCI runtime: runc, but every bundle loses its UTS namespace (and the
hostname, which runc would otherwise refuse without one). The suite must catch exactly that."""

import json
import os
import shutil
import sys


def bundle_of(argv: list[str]) -> str:
    for flag in ("--bundle", "-b"):
        if flag in argv:
            return argv[argv.index(flag) + 1]
        for arg in argv:
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return "."


def main() -> None:
    argv = sys.argv[1:]
    # The first known verb: global flags such as --root take values that are not verbs.
    verb = next((a for a in argv if a in ("create", "run", "start", "exec", "delete", "spec")), "")
    if verb in ("create", "run"):
        path = os.path.join(bundle_of(argv), "config.json")
        with open(path) as f:
            config = json.load(f)
        linux = config.get("linux", {})
        linux["namespaces"] = [n for n in linux.get("namespaces", []) if n.get("type") != "uts"]
        config.pop("hostname", None)
        with open(path, "w") as f:
            json.dump(config, f)
    runc = shutil.which("runc")
    assert runc, "runc not found"
    os.execv(runc, [runc, *argv])


if __name__ == "__main__":
    main()
