"""Failures at each step of a container's life leave nothing behind, or leave a container
that a later `rm` cleans completely. The OCI runtime is refrun behind a wrapper (a `runtimes`
entry) that fails the verb named by a flag file, as a broken runtime would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reference.engine._refd import REPO, Refd, needs_root, running_refd

pytestmark = pytest.mark.skipif(needs_root(), reason="needs root")
SLEEP = ["/bin/probe", "sleep", "forever"]
WRAPPER = """#!/bin/sh
# refrun, failing the verb that has a flag file in {flags}
verb=""
skip=0
for arg in "$@"; do
  if [ $skip = 1 ]; then skip=0; continue; fi
  case "$arg" in
    --root|--log|--log-format) skip=1 ;;
    -*) ;;
    *) verb="$arg"; break ;;
  esac
done
if [ -e "{flags}/fail-$verb" ]; then
  echo "injected failure of $verb" >&2
  exit 1
fi
exec {refrun} "$@"
"""


@pytest.fixture(scope="module")
def flags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("flags")


@pytest.fixture(scope="module")
def refd(tmp_path_factory: pytest.TempPathFactory, flags: Path) -> Iterator[Refd]:
    wrapper = flags / "flaky-runtime"
    wrapper.write_text(WRAPPER.format(flags=flags, refrun=REPO / "bin" / "refrun"))
    wrapper.chmod(0o755)
    config = {"runtimes": {"flaky": {"path": str(wrapper)}}, "default-runtime": "flaky"}
    with running_refd(tmp_path_factory.mktemp("fail"), config) as daemon:
        yield daemon


@pytest.fixture
def fail(flags: Path) -> Iterator[list[str]]:
    """Verbs to fail while the test runs."""
    verbs: list[str] = []
    yield verbs
    for verb in verbs:
        (flags / f"fail-{verb}").unlink(missing_ok=True)


def inject(flags: Path, fail: list[str], verb: str) -> None:
    (flags / f"fail-{verb}").touch()
    fail.append(verb)


def state(refd: Refd, cid: str) -> dict[str, object]:
    document: dict[str, object] = json.loads(
        refd.ctl("inspect", "-f", "{{json .State}}", cid).stdout
    )
    return document


@pytest.mark.parametrize("verb", ["create", "start"])
def test_failed_start_keeps_only_the_created_container(
    refd: Refd, flags: Path, fail: list[str], verb: str
) -> None:
    inject(flags, fail, verb)
    done = refd.ctl("run", "-d", "--name", f"fail-{verb}", "--pull=never", refd.image, *SLEEP)
    assert done.returncode == 125
    assert f"injected failure of {verb}" in done.stderr
    found = state(refd, f"fail-{verb}")
    assert found["Status"] == "created"
    assert f"injected failure of {verb}" in str(found["Error"])
    cid = refd.ctl("inspect", "-f", "{{.Id}}", f"fail-{verb}").stdout.strip()
    # nothing of the attempted run is left: no cgroup, no runtime state, no bundle
    assert [x for x in refd.leftovers(cid) if "cgroup" in x or "runtime" in x or "exec" in x] == []
    (flags / f"fail-{verb}").unlink()
    assert refd.ctl("rm", f"fail-{verb}").returncode == 0
    assert refd.leftovers(cid) == []


def test_failed_remove_leaves_a_dead_container_that_rm_cleans_later(
    refd: Refd, flags: Path, fail: list[str]
) -> None:
    cid = refd.ctl("run", "-d", "--pull=never", refd.image, *SLEEP).stdout.strip()
    assert cid
    inject(flags, fail, "delete")
    done = refd.ctl("rm", "-f", cid)
    assert done.returncode == 1
    assert "unable to remove container" in done.stderr
    assert "injected failure of delete" in done.stderr
    assert state(refd, cid)["Status"] == "dead"
    (flags / "fail-delete").unlink()
    assert refd.ctl("rm", "-f", cid).returncode == 0
    assert refd.leftovers(cid) == []


def test_failed_pause_changes_nothing(refd: Refd, flags: Path, fail: list[str]) -> None:
    cid = refd.ctl("run", "-d", "--pull=never", refd.image, *SLEEP).stdout.strip()
    try:
        inject(flags, fail, "pause")
        done = refd.ctl("pause", cid)
        assert done.returncode == 1
        assert "injected failure of pause" in done.stderr
        assert state(refd, cid)["Status"] == "running"
    finally:
        refd.ctl("rm", "-f", cid)
    assert refd.leftovers(cid) == []
