"""Start-up budget of the refrun CLI, as the modules it loads (not as timings, which depend on
the machine): `refrun` runs several times per container, and each of these stdlib modules
costs milliseconds to import (see bench/README.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

# Heavy modules no hot path may import: (dataclasses, inspect, typing, pathlib, re, enum, json,
# logging, subprocess, collections, argparse, copy, functools).
HEAVY = frozenset(
    {"dataclasses", "inspect", "typing", "pathlib", "re", "enum", "json", "logging",
     "subprocess", "collections", "argparse", "copy", "functools", "importlib.util"}
)  # fmt: skip


def _loaded(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-IS", "-c", f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
         f"{code}\nprint(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "code",
    [
        # What `refrun create/run` loads before it forks the container's processes.
        "from reference.cgroups import warmup; warmup.start()\n"
        "import reference.oci.verbs.run, reference.cgroups.factory, reference.cgroups.resources\n"
        "import reference.oci.init.console, reference.linux.libc as l; l._libc(); warmup.wait()",
        # ... and what the init loads for a spec with a seccomp profile (Docker's default).
        "from reference.oci.init import process; process.seccomp_compiler()",
        # Validation of Docker's configs ("ociVersion": "1.0.2-dev").
        "from reference.oci import validate; validate._check_version('1.0.2-dev')",
        "import reference.oci.verbs.state",
        "import reference.oci.verbs.start, reference.oci.verbs.kill, reference.oci.verbs.delete",
        "import reference.oci.verbs.exec",
        "from reference.cli.refrun import main",
    ],
    ids=["create-run", "seccomp", "semver", "state", "start-kill-delete", "exec", "cli"],
)
def test_hot_paths_import_no_heavy_module(code: str) -> None:
    assert _loaded(code) & HEAVY == set()


def test_delete_of_a_container_builds_its_manager_without_heavy_modules() -> None:
    code = (
        "from reference.cgroups.factory import from_description\n"
        "m = from_description({'driver': 'v1', 'path': '/x', 'dirs': {'memory': '/nonexistent'},"
        " 'mount_dirs': {'memory': '/nonexistent'}})\n"
        "assert m.pids() == [] and not m.exists()"
    )
    assert _loaded(code) & HEAVY == set()
