#!/usr/bin/python3 -S
"""Deliberately broken OCI runtimes: runc with one mutation applied to every bundle's
config.json before `create`/`run`. The mutation is named by this file's name as invoked:
a symlink `runc-no-uts` → this script is runc without a UTS namespace. The suite must catch
each mutation with exactly the tests of the behaviour it breaks (tests/selftest/)."""

import json
import os
import shutil
import sys
from collections.abc import Callable
from typing import Any

Config = dict[str, Any]


def drop_namespace(kind: str) -> Callable[[Config], None]:
    def mutate(config: Config) -> None:
        linux = config.get("linux", {})
        linux["namespaces"] = [n for n in linux.get("namespaces", []) if n.get("type") != kind]
        if kind == "uts":  # runc refuses a hostname without a private UTS namespace
            config.pop("hostname", None)

    return mutate


def drop_resource(section: str) -> Callable[[Config], None]:
    def mutate(config: Config) -> None:
        config.get("linux", {}).get("resources", {}).pop(section, None)

    return mutate


def add_capability(cap: str) -> Callable[[Config], None]:
    """`cap` in every capability set the spec lists (runc's: bounding, effective, permitted,
    ambient)."""

    def mutate(config: Config) -> None:
        sets = config.get("process", {}).get("capabilities", {})
        for name, caps in sets.items():
            sets[name] = [*caps, cap] if cap not in caps else caps

    return mutate


PROPAGATIONS = {"private", "rprivate", "slave", "rslave", "shared", "rshared"}


def private_binds(config: Config) -> None:
    """Every bind mount rprivate, whatever propagation was asked for."""
    for mount in config.get("mounts", []):
        options = mount.get("options", [])
        if mount.get("type") == "bind" or "bind" in options or "rbind" in options:
            mount["options"] = [o for o in options if o not in PROPAGATIONS] + ["rprivate"]
    config.get("linux", {}).pop("rootfsPropagation", None)


# name (after "runc-") → what is broken. Areas add theirs here.
MUTATIONS: dict[str, Callable[[Config], None]] = {
    "no-uts": drop_namespace("uts"),
    "no-ipc": drop_namespace("ipc"),
    "private-binds": private_binds,
    "no-memory": drop_resource("memory"),
    "no-cpu": drop_resource("cpu"),
    "no-pids": drop_resource("pids"),
    "add-sys-admin": add_capability("CAP_SYS_ADMIN"),
}


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
    mutation = MUTATIONS[os.path.basename(sys.argv[0]).removeprefix("runc-")]
    # The first known verb: global flags such as --root take values that are not verbs.
    verb = next((a for a in argv if a in ("create", "run", "start", "exec", "delete", "spec")), "")
    if verb in ("create", "run"):
        path = os.path.join(bundle_of(argv), "config.json")
        with open(path) as f:
            config = json.load(f)
        mutation(config)
        with open(path, "w") as f:
            json.dump(config, f)
    runc = shutil.which("runc")
    assert runc, "runc not found"
    os.execv(runc, [runc, *argv])


if __name__ == "__main__":
    main()
