"""Run the suite against a deliberately broken runtime and read back which tests failed."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BROKEN_RUNC = Path(__file__).with_name("broken_runc.py")
BROKEN_DOCKER = Path(__file__).with_name("broken_docker.py")


def broken_runc(mutation: str, directory: Path) -> str:
    """A target name for runc with `mutation` (a key of broken_runc.MUTATIONS)."""
    link = directory / f"runc-{mutation}"
    link.symlink_to(BROKEN_RUNC)
    return f"oci:{link}"


def broken_docker_env(mutation: str, directory: Path) -> dict[str, str]:
    """Environment that makes the docker target use the CLI with `mutation`
    (a key of broken_docker.MUTATIONS)."""
    link = directory / f"docker-{mutation}"
    link.symlink_to(BROKEN_DOCKER)
    return {**os.environ, "CTS_DOCKER_CLI": str(link)}


def run_suite(
    target: str, junit: Path, *paths: str, env: dict[str, str] | None = None
) -> dict[str, str]:
    """Run suite files on `target`; {classname::name: passed|failure|error|skipped}.
    Without CLEAN-02: self-tests run side by side under -n 2, and the host-wide comparison
    would see each other's objects (the per-module CLEAN-01 checks stay)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *paths,
            "--target",
            target,
            "-q",
            f"--junitxml={junit}",
            "--no-session-check",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=env,
    )
    outcomes = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        verdict = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                verdict = child.tag
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = verdict
    return outcomes


def failed(outcomes: dict[str, str]) -> set[str]:
    return {name for name, verdict in outcomes.items() if verdict in ("failure", "error")}
