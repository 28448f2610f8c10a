"""The cgroups suite must catch a runtime that drops one resource section of config.json: the
tests of that controller fail, and only they (the other files run along and pass)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.selftest.harness import broken_runc, failed, run_suite

pytestmark = pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")

CASES = {
    # mutation: (suite files, the tests that must fail as module::test)
    "no-memory": (
        ("test_memory.py", "test_oom.py", "test_membership.py"),
        {
            "test_memory::test_memory_limit_is_written_to_cgroupfs",
            "test_memory::test_memory_swap_flag_sets_memory_plus_swap",
            "test_oom::test_oom_kill_of_pid_1_exits_137",
            "test_oom::test_oom_kill_is_counted_and_spares_pid_1",
            "test_oom::test_oom_kill_disable_makes_the_task_wait_until_the_limit_is_raised",
        },
    ),
    "no-cpu": (
        ("test_cpu.py", "test_pids.py"),
        {
            "test_cpu::test_cpus_sets_quota_and_caps_usage",
            "test_cpu::test_cpu_shares_split_one_cpu",
            "test_cpu::test_cpuset_cpus_pins_the_container",
        },
    ),
    "no-pids": (
        ("test_pids.py", "test_freezer.py"),
        {"test_pids::test_pids_limit_contains_a_fork_bomb"},
    ),
}


@pytest.mark.parametrize("mutation", sorted(CASES))
def test_dropped_resource_fails_exactly_its_tests(mutation: str, tmp_path: Path) -> None:
    files, expected = CASES[mutation]
    target = broken_runc(mutation, tmp_path)
    outcomes = run_suite(target, tmp_path / "junit.xml", *(f"suites/cgroups/{f}" for f in files))
    # The run's CLEAN-02 item compares the whole host before and after, which other runs on a
    # shared machine change too; the per-file leak checks below cover this area's containers.
    outcomes = {k: v for k, v in outcomes.items() if k.startswith("suites.cgroups.")}
    assert failed(outcomes) == {f"suites.cgroups.{t}[{target}]" for t in expected}, outcomes
    passed = {name for name, verdict in outcomes.items() if verdict == "passed"}
    # Every file's leak check ran and passed, so each file started containers and ran through.
    assert {f"suites.cgroups.{f[:-3]}::cleanup[{target}]" for f in files} <= passed, outcomes
