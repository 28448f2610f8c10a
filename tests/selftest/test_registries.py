"""The registry suite must catch a daemon that trusts registries it should refuse: with
198.51.100.0/24 insecure from the start (broken_dockerd.py, a dockerd wrapper first on PATH,
so only the suite's private daemons are affected), exactly the tests that expect a refusal
fail: the secure-by-default ones, both certs.d ones (trust without the file) and the reload
one (its registry was never refused); the insecure-registries, loopback and round-trip tests
and the module leak checks pass."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.selftest.harness import failed, run_suite

BROKEN_DOCKERD = Path(__file__).with_name("broken_dockerd.py")
pytestmark = pytest.mark.skipif(
    shutil.which("dockerd") is None
    or shutil.which("docker-registry") is None
    or not Path("/var/run/docker.sock").exists(),
    reason="needs dockerd, docker-registry and a Docker engine on /var/run/docker.sock",
)
AREA = "suites.registries"


def test_daemon_trusting_the_lab_fails_exactly_the_refusal_tests(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dockerd").symlink_to(BROKEN_DOCKERD)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    outcomes = run_suite("docker", tmp_path / "junit.xml", "suites/registries", env=env)
    assert failed(outcomes) == {
        f"{AREA}.test_registry_secure_default::test_unconfigured_daemon_refuses_the_registry"
        "[docker-http]",
        f"{AREA}.test_registry_secure_default::test_unconfigured_daemon_refuses_the_registry"
        "[docker-tls]",
        f"{AREA}.test_registry_secure_default::test_refusal_names_the_cause[docker-http]",
        f"{AREA}.test_registry_secure_default::test_refusal_names_the_cause[docker-tls]",
        f"{AREA}.test_registry_certs_d::test_ca_in_certs_d_makes_the_registry_trusted[docker]",
        f"{AREA}.test_registry_certs_d::test_certs_d_directory_must_name_host_and_port[docker]",
        f"{AREA}.test_registry_reload::test_sighup_reloads_insecure_registries[docker]",
    }, outcomes
    passed = {name for name, verdict in outcomes.items() if verdict == "passed"}
    must_pass = {
        f"{AREA}.test_registry_insecure::test_listed_registry_takes_push_and_pull"
        f"[{form}-docker-{kind}]"
        for form in ("cidr", "host-port")
        for kind in ("http", "tls")
    } | {
        f"{AREA}.test_registry_loopback::test_loopback_registry_needs_no_configuration"
        f"[docker-{name}]"
        for name in ("127.0.0.1", "localhost")
    }
    must_pass.add(
        f"{AREA}.test_registry_roundtrip::test_pushed_image_comes_back_byte_identical[docker]"
    )
    assert must_pass <= passed, outcomes
