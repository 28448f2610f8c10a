"""Target names pick the right driver; compliance verdicts fold test outcomes correctly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.errors import UnknownTargetError
from fixtures.requirements import Requirement
from fixtures.targets import make_driver, slug
from fixtures.targets.base import ContainerSpec
from fixtures.targets.engine_cli import DockerDriver, PodmanDriver
from reports.compliance import Compliance, Result


def test_docker_names(tmp_path: Path) -> None:
    plain = make_driver("docker", tmp_path)
    assert isinstance(plain, DockerDriver)
    assert plain.cli("ps") == ["docker", "ps"]
    other = make_driver("docker:///run/other.sock", tmp_path)
    assert other.cli("ps") == ["docker", "-H", "unix:///run/other.sock", "ps"]  # type: ignore[attr-defined]


def test_docker_with_another_runtime(tmp_path: Path) -> None:
    driver = make_driver("docker?runtime=refrun", tmp_path)
    assert isinstance(driver, DockerDriver)
    assert "--runtime=refrun" in driver.spec_flags(ContainerSpec(command=["true"]))
    with pytest.raises(UnknownTargetError, match="unknown option"):
        make_driver("docker?flavour=x", tmp_path)


def test_podman_gets_host_safe_config(tmp_path: Path) -> None:
    driver = make_driver("podman", tmp_path)
    assert isinstance(driver, PodmanDriver)
    assert 'runtime = "runc"' in driver.conf.read_text()
    assert driver.env()["CONTAINERS_CONF"] == str(driver.conf)


@pytest.mark.parametrize("name", ["", "oci:", "dockerd", "reference-ish", "crio"])
def test_unknown_targets_are_refused_by_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnknownTargetError, match="unknown target"):
        make_driver(name, tmp_path)


def test_slug_is_file_and_ifname_safe() -> None:
    assert slug("oci:/usr/sbin/runc") == "oci_usr_sbin_runc"
    assert slug("docker:///var/run/docker.sock") == "docker_var_run_docker_sock"


REQ = Requirement("NS-01", "namespaces", "MUST", "s", "https://example.org")


@pytest.mark.parametrize(
    ("outcomes", "verdict"),
    [
        (["passed", "passed"], "passed"),
        (["passed", "failed"], "failed"),
        (["skipped", "passed"], "passed"),
        (["skipped"], "skipped"),
        ([], "untested"),
    ],
)
def test_verdict_folding(outcomes: list[str], verdict: str, tmp_path: Path) -> None:
    results = [Result(f"t{i}", "docker", ["NS-01"], outcome=o) for i, o in enumerate(outcomes)]
    compliance = Compliance({"NS-01": REQ}, {"docker": "docker 20.10"}, results)
    assert compliance.verdict("NS-01", "docker")[0] == verdict
    compliance.write(tmp_path / "c.json")
    written = json.loads((tmp_path / "c.json").read_text())
    assert written["requirements"]["NS-01"]["results"]["docker"]["status"] == verdict
    assert written["summary"]["docker"][verdict] == 1


def test_a_failed_phase_wins_over_later_phases() -> None:
    result = Result("t", "docker", ["NS-01"])
    result.fold("setup", "passed", "", 0.1)
    result.fold("call", "failed", "boom", 0.2)
    result.fold("teardown", "passed", "", 0.1)
    assert (result.outcome, result.detail) == ("failed", "call: boom")
    assert result.duration == pytest.approx(0.4)


def test_a_skip_outranks_the_passing_teardown() -> None:
    result = Result("t", "docker", ["NS-01"])
    result.fold("setup", "skipped", "lacks capability", 0.0)
    result.fold("teardown", "passed", "", 0.0)
    assert (result.outcome, result.detail) == ("skipped", "lacks capability")
