#!/usr/bin/python3 -S
"""A deliberately broken Docker CLI: `docker` with every --dns flag of `run`/`create` dropped
(--dns-search and --dns-option pass). The /etc self-test selects it through CTS_DOCKER_CLI
(read by fixtures/targets/engine_cli.DockerDriver); exactly the --dns test must fail."""

import os
import shutil
import sys


def without_dns(argv: list[str]) -> list[str]:
    kept: list[str] = []
    skip_value = False
    for arg in argv:
        if skip_value:
            skip_value = False
        elif arg == "--dns":
            skip_value = True
        elif not arg.startswith("--dns="):
            kept.append(arg)
    return kept


def main() -> None:
    argv = sys.argv[1:]
    if "run" in argv or "create" in argv:
        argv = without_dns(argv)
    docker = shutil.which("docker")
    assert docker, "docker not found"
    os.execv(docker, [docker, *argv])


if __name__ == "__main__":
    main()
