"""The suite must catch a broken runtime: without a UTS namespace, the UTS tests fail, and
only they do (the PID and memory tests, and the leak checks, still pass)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BROKEN = Path(__file__).with_name("runc_no_uts.py")


def run_suite(target: str, junit: Path, *paths: str) -> dict[str, str]:
    """Run the suite on `target`; return {test name: outcome} from its junit.xml."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *paths,
            "--target",
            target,
            "-q",
            "-p",
            "no:randomly",
            f"--junitxml={junit}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    outcomes = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        verdict = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                verdict = child.tag
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = verdict
    return outcomes


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
def test_missing_uts_namespace_fails_exactly_the_uts_tests(tmp_path: Path) -> None:
    outcomes = run_suite(
        f"oci:{BROKEN}",
        tmp_path / "junit.xml",
        "suites/namespaces/test_uts.py",
        "suites/namespaces/test_pid.py",
        "suites/cgroups/test_memory.py",
    )
    failed = {name for name, verdict in outcomes.items() if verdict != "passed"}
    target = f"oci:{BROKEN}"
    assert failed == {
        f"suites.namespaces.test_uts::test_uts_namespace_is_new[{target}]",
        f"suites.namespaces.test_uts::test_hostname_flag_sets_container_hostname_only[{target}]",
    }, outcomes
    assert len(outcomes) >= 9, outcomes  # 5 tests, 3 module cleanups, 1 session cleanup
