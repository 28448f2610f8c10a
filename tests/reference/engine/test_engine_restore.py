"""A refd restart: with live-restore, running containers are adopted (still running, still
listed, their output still logged, stoppable; their exit code is unknown: 255); without it,
they are killed and cleaned up at start-up. Either way nothing is leaked."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.reference.engine._refd import Refd, needs_root, running_refd

pytestmark = pytest.mark.skipif(needs_root(), reason="needs root")
TICKER = [
    "sh",
    "-c",
    "trap 'exit 0' TERM; i=0; while :; do echo tick$i; i=$((i+1)); sleep 0.2; done",
]


def restart(refd: Refd, *, hard: bool) -> None:
    pid = refd.pid()
    os.kill(pid, signal.SIGKILL if hard else signal.SIGTERM)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    refd.driver.start_daemon()


def state(refd: Refd, cid: str) -> dict[str, object]:
    document: dict[str, object] = json.loads(
        refd.ctl("inspect", "-f", "{{json .State}}", cid).stdout
    )
    return document


@pytest.mark.parametrize("hard", [False, True], ids=["sigterm", "sigkill"])
def test_live_restore_adopts_running_containers(tmp_path: Path, hard: bool) -> None:
    with running_refd(tmp_path, {"live-restore": True}) as refd:
        cid = refd.ctl("run", "-d", "--pull=never", refd.image, *TICKER).stdout.strip()
        before = state(refd, cid)
        restart(refd, hard=hard)
        after = state(refd, cid)
        assert (after["Status"], after["Pid"]) == ("running", before["Pid"])
        time.sleep(1.0)
        lines = refd.ctl("logs", cid).stdout.split()
        assert len(lines) >= 5, lines  # output written across the restart is kept
        assert refd.ctl("stop", cid).returncode == 0
        stopped = state(refd, cid)
        assert (stopped["Status"], stopped["ExitCode"]) == ("exited", 255)  # see monitor.py
        assert refd.ctl("rm", cid).returncode == 0
        assert refd.leftovers(cid) == []


def test_without_live_restore_running_containers_are_stopped(tmp_path: Path) -> None:
    with running_refd(tmp_path) as refd:
        cid = refd.ctl("run", "-d", "--pull=never", refd.image, *TICKER).stdout.strip()
        pid = state(refd, cid)["Pid"]
        restart(refd, hard=True)  # a crash: nobody stopped the container
        after = state(refd, cid)
        assert (after["Status"], after["Running"], after["ExitCode"]) == ("exited", False, 137)
        assert not Path(f"/proc/{pid}").exists()
        assert [m for m in refd.mounts() if cid in m] == []
        assert [p for p in refd.cgroups() if p.name == cid] == []
        assert refd.ctl("start", cid).returncode == 0  # and it can run again
        assert state(refd, cid)["Running"] is True
        assert refd.ctl("rm", "-f", cid).returncode == 0
        assert refd.leftovers(cid) == []


def test_shutdown_stops_containers_and_unmounts(tmp_path: Path) -> None:
    with running_refd(tmp_path) as refd:
        cid = refd.ctl("run", "-d", "--pull=never", refd.image, *TICKER).stdout.strip()
        restart(refd, hard=False)
        after = state(refd, cid)
        assert (after["Status"], after["ExitCode"]) == ("exited", 0)  # SIGTERM → trap → 0
        assert [m for m in refd.mounts() if cid in m] == []
