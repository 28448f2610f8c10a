"""The suite must catch a broken runtime: without a UTS namespace, the UTS tests fail, and
only they do (the PID and memory tests, and the leak checks, still pass)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.selftest.harness import broken_runc, failed, run_suite

pytestmark = pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")


def test_missing_uts_namespace_fails_exactly_the_uts_tests(tmp_path: Path) -> None:
    target = broken_runc("no-uts", tmp_path)
    outcomes = run_suite(
        target,
        tmp_path / "junit.xml",
        "suites/namespaces/test_uts.py",
        "suites/namespaces/test_pid.py",
        "suites/cgroups/test_memory.py",
    )
    assert failed(outcomes) == {
        f"suites.namespaces.test_uts::test_uts_namespace_is_new[{target}]",
        f"suites.namespaces.test_uts::test_hostname_flag_sets_container_hostname_only[{target}]",
        f"suites.namespaces.test_uts::test_hostname_set_inside_stays_inside[{target}]",
        f"suites.namespaces.test_uts::test_domainname_flag_sets_container_domainname_only[{target}]",
    }, outcomes
    assert len(outcomes) >= 11, outcomes  # 7 tests, 3 module cleanups, 1 session cleanup
