"""The NAT test must catch an engine that does not masquerade.

The broken runtime is a real Docker whose MASQUERADE rule is missing: a private dockerd
started with --ip-masq=false in a lab network namespace of its own (fixtures.daemon_config;
everything else about its bridge works), presented to the suite as the target
docker://<its socket>. The suite finds the namespace its bridge lives in from the process
serving that socket, so the fake WAN host is linked there. Exactly the masquerade test must
fail; the --ip-masq=false test (on a private daemon of its own) and the module cleanup pass.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fixtures.daemon_config import private_daemon
from fixtures.session import CACHE_DIR
from fixtures.targets.engine_cli import DockerDriver
from tests.selftest.harness import failed, run_suite

pytestmark = pytest.mark.skipif(
    shutil.which("dockerd") is None or shutil.which("docker") is None,
    reason="no dockerd to run a private daemon with",
)

NAT = "suites.network.test_nat"


def test_missing_masquerade_fails_exactly_the_nat_test(tmp_path: Path) -> None:
    engine = DockerDriver("docker", tmp_path / "driver")
    with private_daemon(engine, {"ip-masq": False}) as broken:
        target = f"docker://{broken.daemon.socket}"
        try:
            outcomes = run_suite(target, tmp_path / "junit.xml", "suites/network/test_nat.py")
        finally:
            # The suite's driver for that target named an image-import lock after its socket.
            for lock in CACHE_DIR.rglob(f".import-*{broken.daemon.root.name}*.lock"):
                lock.unlink()
    assert failed(outcomes) == {
        f"{NAT}::test_outbound_connection_leaves_with_the_host_address[{target}]"
    }, outcomes
    assert outcomes == {
        f"{NAT}::test_outbound_connection_leaves_with_the_host_address[{target}]": "failure",
        f"{NAT}::test_without_ip_masq_the_container_address_leaves[{target}]": "passed",
        f"{NAT}::cleanup[{target}]": "passed",
    }, outcomes
