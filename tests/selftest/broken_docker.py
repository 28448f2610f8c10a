#!/usr/bin/python3 -S
"""Deliberately broken Docker CLIs: `docker` with one mutation, named by the name this script
is invoked under (a symlink `docker-no-dns` → this file). Self-tests select one through
CTS_DOCKER_CLI (read by fixtures/targets/engine_cli.DockerDriver) and require that exactly the
tests of the broken behaviour fail."""

import os
import shutil
import subprocess
import sys
from collections.abc import Callable


def drop_dns(argv: list[str]) -> list[str]:
    """`run`/`create` without --dns (--dns-search and --dns-option pass)."""
    if "run" not in argv and "create" not in argv:
        return argv
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


def ignore_user_networks(argv: list[str]) -> list[str]:
    """`run`/`create` that leave a container on the default network when it asks for a
    user-defined one (--network=NAME; the built-in modes pass)."""
    builtin = ("none", "host", "bridge", "default", "container:")
    return [a for a in argv if not a.startswith("--network=") or a[10:].startswith(builtin)]


def diff_without_deletions(output: str) -> str:
    """`diff` that forgets deleted paths."""
    return "".join(line for line in output.splitlines(keepends=True) if not line.startswith("D "))


# name (after "docker-") → (argv rewrite, (verb, output rewrite) or None)
MUTATIONS: dict[
    str, tuple[Callable[[list[str]], list[str]], tuple[str, Callable[[str], str]] | None]
] = {
    "no-dns": (drop_dns, None),
    "diff-no-deletes": (lambda argv: argv, ("diff", diff_without_deletions)),
    "no-user-networks": (ignore_user_networks, None),
}


def main() -> None:
    rewrite, output_filter = MUTATIONS[os.path.basename(sys.argv[0]).removeprefix("docker-")]
    argv = rewrite(sys.argv[1:])
    docker = shutil.which("docker")
    assert docker, "docker not found"
    if output_filter and output_filter[0] in argv:
        done = subprocess.run([docker, *argv], capture_output=True, text=True, check=False)
        sys.stdout.write(output_filter[1](done.stdout))
        sys.stderr.write(done.stderr)
        sys.exit(done.returncode)
    os.execv(docker, [docker, *argv])


if __name__ == "__main__":
    main()
