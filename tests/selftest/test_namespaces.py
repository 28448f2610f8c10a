"""The namespace suites must catch a broken runtime with exactly the tests of what it broke:
without an IPC namespace the IPC tests fail (and only the ipc row of the namespace table);
with every bind mount forced to rprivate the propagation tests that expect a crossing fail."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.selftest.harness import broken_runc, failed, run_suite

pytestmark = pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")

AREA = "suites/namespaces"
FILES = ("test_inodes.py", "test_ipc.py", "test_net.py", "test_mnt.py", "test_propagation.py")
# CLEAN-02 compares the whole host before and after the run, so containers of other runs on
# the same machine (other self-tests under -n 2) show up in it; the per-module cleanups
# (CLEAN-01) are attributed exactly and stay in the comparison.
SESSION_CLEANUP = "suites::session-cleanup"


def area_failures(outcomes: dict[str, str]) -> set[str]:
    return {name for name in failed(outcomes) if not name.startswith(SESSION_CLEANUP)}


def test_missing_ipc_namespace_fails_exactly_the_ipc_tests(tmp_path: Path) -> None:
    target = broken_runc("no-ipc", tmp_path)
    outcomes = run_suite(target, tmp_path / "junit.xml", *(f"{AREA}/{f}" for f in FILES))
    assert area_failures(outcomes) == {
        f"suites.namespaces.test_inodes::test_default_namespace[{target}-ipc]",
        f"suites.namespaces.test_ipc::test_sysv_objects_stay_in_the_container[{target}]",
        f"suites.namespaces.test_ipc::test_ipc_container_mode_shares_the_donors_objects[{target}]",
    }, outcomes
    # 11 inode tests, 2 IPC, 1 net, 2 mnt, 8 propagation; 5 module cleanups, 1 session cleanup
    assert len(outcomes) == 30, outcomes


def test_private_bind_mounts_fail_exactly_the_crossing_tests(tmp_path: Path) -> None:
    target = broken_runc("private-binds", tmp_path)
    outcomes = run_suite(target, tmp_path / "junit.xml", f"{AREA}/test_propagation.py")
    # rprivate and rslave already keep mounts made inside from the host: only these three
    # expectations change when everything is private.
    assert area_failures(outcomes) == {
        f"suites.namespaces.test_propagation::{test}[{target}-{mode}]"
        for test, mode in (
            ("test_host_mount_under_source_reaches_container", "rslave"),
            ("test_host_mount_under_source_reaches_container", "rshared"),
            ("test_container_mount_under_target_reaches_host", "rshared"),
        )
    }, outcomes
    assert len(outcomes) == 10, outcomes  # 8 tests, the module cleanup, the session cleanup
