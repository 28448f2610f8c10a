"""The /etc suite must catch an engine that ignores --dns: exactly the --dns test fails; the
--dns-search/--dns-option tests, the other /etc tests and the module leak checks pass.

The broken engine is the real Docker behind a CLI wrapper that drops --dns
(broken_docker.py, mutation no-dns)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.selftest.harness import broken_docker_env, failed, run_suite

pytestmark = pytest.mark.skipif(
    shutil.which("docker") is None or not Path("/var/run/docker.sock").exists(),
    reason="no Docker engine on /var/run/docker.sock",
)


def test_ignored_dns_flag_fails_exactly_the_dns_test(tmp_path: Path) -> None:
    env = broken_docker_env("no-dns", tmp_path)
    outcomes = run_suite("docker", tmp_path / "junit.xml", "suites/etc", env=env)
    assert failed(outcomes) == {
        "suites.etc.test_etc_resolv::test_dns_flag_sets_the_nameservers[docker]",
    }, outcomes
    passed = {name for name, verdict in outcomes.items() if verdict == "passed"}
    assert "suites.etc.test_etc_resolv::test_dns_search_flag_sets_the_search_domains[docker]" in (
        passed
    ), outcomes
    assert len(passed) >= 15, outcomes  # the other 13 tests and the module cleanups
