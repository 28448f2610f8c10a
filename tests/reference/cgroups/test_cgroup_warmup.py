"""reference.cgroups.warmup: the no-op migration that warms the kernel's cgroup lock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reference.cgroups import warmup

REPO = Path(__file__).resolve().parents[3]


def test_own_procs_file_lists_this_process() -> None:
    path = warmup.own_procs_file()
    if path is None:
        pytest.skip("no cgroup hierarchy this process can be found in")
    assert path.endswith("/cgroup.procs")
    assert str(os.getpid()) in Path(path).read_text().split()


def test_start_wait_and_a_fork_meanwhile() -> None:
    # In a fresh interpreter: start twice (once counts), fork while the thread may still wait
    # in the kernel (what create does), then wait; nothing moves, nothing is printed.
    code = (
        f"import os, sys; sys.path.insert(0, {str(REPO)!r})\n"
        "from reference.cgroups import warmup\n"
        "before = open('/proc/self/cgroup').read()\n"
        "warmup.start(); warmup.start()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if open('/proc/self/cgroup').read() == before else 1)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "warmup.wait(); warmup.wait()\n"
        "assert os.waitstatus_to_exitcode(status) == 0\n"
        "assert open('/proc/self/cgroup').read() == before\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-IS", "-c", code], capture_output=True, text=True, timeout=30
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")
