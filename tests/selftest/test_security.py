"""The security suite must catch a runtime that hands out CAP_SYS_ADMIN: exactly the
capability-set tests and the mount escape fail; masks, devices, seccomp, no_new_privs, the
other escapes and the leak checks still pass (the user-namespace tests skip: not Docker)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.selftest.harness import broken_runc, failed, run_suite

pytestmark = pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")


def test_added_sys_admin_fails_exactly_the_capability_and_mount_tests(tmp_path: Path) -> None:
    target = broken_runc("add-sys-admin", tmp_path)
    outcomes = run_suite(
        target, tmp_path / "junit.xml", "suites/security", "suites/namespaces/test_userns.py"
    )
    assert failed(outcomes) == {
        f"suites.security.test_capabilities::test_default_capability_sets[{target}]",
        # Its expected set is the defaults with NET_ADMIN added and KILL dropped: SYS_ADMIN
        # is just as foreign there.
        f"suites.security.test_capabilities::test_cap_add_and_drop[{target}]",
        f"suites.security.test_escapes::test_mount_is_refused[{target}]",
    }, outcomes
    skipped = {name for name, verdict in outcomes.items() if verdict == "skipped"}
    assert {name for name in skipped if "test_userns::test_" in name} == {
        f"suites.namespaces.test_userns::{test}[{target}]"
        for test in (
            "test_remapped_container_has_its_own_id_maps",
            "test_daemon_state_lives_under_the_remapped_root",
            "test_container_root_is_the_remapped_uid_on_the_host",
            "test_container_root_is_not_host_root",
        )
    }, outcomes
