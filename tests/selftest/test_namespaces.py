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


def test_missing_ipc_namespace_fails_exactly_the_ipc_tests(tmp_path: Path) -> None:
    target = broken_runc("no-ipc", tmp_path)
    outcomes = run_suite(target, tmp_path / "junit.xml", *(f"{AREA}/{f}" for f in FILES))
    assert failed(outcomes) == {
        f"suites.namespaces.test_inodes::test_default_namespace[{target}-ipc]",
        f"suites.namespaces.test_ipc::test_sysv_objects_stay_in_the_container[{target}]",
        f"suites.namespaces.test_ipc::test_ipc_container_mode_shares_the_donors_objects[{target}]",
    }, outcomes
    # 11 inode tests, 2 IPC, 1 net, 2 mnt, 8 propagation; 5 module cleanups
    assert len(outcomes) == 29, outcomes


def test_private_bind_mounts_fail_exactly_the_crossing_tests(tmp_path: Path) -> None:
    target = broken_runc("private-binds", tmp_path)
    outcomes = run_suite(target, tmp_path / "junit.xml", f"{AREA}/test_propagation.py")
    # rprivate and rslave already keep mounts made inside from the host: only these three
    # expectations change when everything is private.
    assert failed(outcomes) == {
        f"suites.namespaces.test_propagation::{test}[{target}-{mode}]"
        for test, mode in (
            ("test_host_mount_under_source_reaches_container", "rslave"),
            ("test_host_mount_under_source_reaches_container", "rshared"),
            ("test_container_mount_under_target_reaches_host", "rshared"),
        )
    }, outcomes
    assert len(outcomes) == 9, outcomes  # 8 tests and the module cleanup
