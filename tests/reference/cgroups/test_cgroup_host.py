"""The v1 driver against this host's real cgroupfs: create, limit, join, freeze, destroy.

Needs root and a v1 memory hierarchy (this machine and CI are hybrid); skipped elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from pathlib import Path

import pytest

from reference.cgroups.manager import new_manager
from reference.cgroups.mounts import parse_mountinfo, v1_mounts
from reference.cgroups.resources import Resources
from reference.cgroups.v1 import V1Manager


def _v1_memory_mounted() -> bool:
    try:
        return "memory" in v1_mounts(parse_mountinfo(Path("/proc/self/mountinfo").read_text()))
    except OSError:
        return False


pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not _v1_memory_mounted(), reason="needs root and a v1 memory hierarchy"
)


def test_limit_join_destroy_on_the_host() -> None:
    mgr = new_manager(f"/cts-unit-{secrets.token_hex(4)}")
    assert isinstance(mgr, V1Manager)
    dirs = mgr.dirs
    assert {"memory", "pids", "cpu"} <= set(dirs)
    child = 0
    try:
        mgr.create()
        mgr.set(Resources.from_spec({"memory": {"limit": 64 << 20}, "pids": {"limit": 32}}))
        ready_r, ready_w = os.pipe()
        child = os.fork()
        if child == 0:  # the child joins by itself, as a container's init would
            try:
                mgr.apply(os.getpid())
                os.write(ready_w, b"1")
                time.sleep(60)
            finally:
                os._exit(0)
        os.close(ready_w)
        assert os.read(ready_r, 1) == b"1", "child failed to join"
        os.close(ready_r)

        assert (dirs["memory"] / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
        assert (dirs["pids"] / "pids.max").read_text().strip() == "32"
        assert mgr.pids() == [child]
        own = Path(f"/proc/{child}/cgroup").read_text()
        assert f":memory:/{mgr.path.lstrip('/')}\n" in own
        assert mgr.stats().memory.limit == 64 << 20
        assert mgr.stats().pids.current == 1

        mgr.freeze()
        assert mgr.state() == "FROZEN"
        mgr.thaw()
        assert mgr.state() == "THAWED"

        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        child = 0
        mgr.destroy()
        for controller, d in dirs.items():
            assert not d.exists(), controller
        assert not mgr.exists()
    finally:
        if child:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
        for d in set(dirs.values()):
            with contextlib.suppress(FileNotFoundError):
                d.rmdir()
