"""refrun end to end, as root: bin/refrun on a real bundle (a copy of the test image).

The kernel is the witness: namespaces from /proc/<pid>/ns, limits from cgroupfs, the freezer
from freezer.state. Every container id is `cts-refrun-<hex>` under a private --root.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.reference.refrun._e2e import (
    CGROUP_ROOT,
    REFRUN,
    Env,
    cgroup_dir,
    env,
    image_rootfs,
    ns,
    wait_status,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
__all__ = ["env", "image_rootfs"]  # fixtures, imported to be found by pytest


# --- lifecycle ---------------------------------------------------------------------------
def test_create_start_kill_delete(env: Env) -> None:
    cid = env.new_id()
    env.write(env.config("/bin/probe", "sleep", "forever", cid=cid))
    pid_file = env.bundle.parent / "pid"
    assert (
        env.detached("create", "--bundle", str(env.bundle), "--pid-file", str(pid_file), cid) == 0
    )
    state = env.state(cid)
    pid = int(pid_file.read_text())
    assert (state["status"], state["pid"], state["bundle"]) == ("created", pid, str(env.bundle))
    for kind in ("pid", "mnt", "uts", "ipc", "net"):
        assert ns(pid, kind) != ns("self", kind), kind
    # NSpid: the init is PID 1 of its own PID namespace.
    status = Path(f"/proc/{pid}/status").read_text()
    assert f"NSpid:\t{pid}\t1" in status
    assert env.refrun("start", cid).returncode == 0
    assert env.state(cid)["status"] == "running"
    again = env.refrun("start", cid)
    assert again.returncode != 0
    assert f"cannot start a running container (needs created): {cid}" in again.stderr
    refused = env.refrun("delete", cid)
    assert refused.returncode != 0
    assert "cannot delete a running container" in refused.stderr
    assert env.refrun("kill", cid, "KILL").returncode == 0
    wait_status(env, cid, "stopped")
    assert env.state(cid)["pid"] == 0
    assert env.refrun("delete", cid).returncode == 0
    assert env.leftovers(cid) == []
    gone = env.refrun("state", cid)
    assert gone.returncode != 0
    assert "does not exist" in gone.stderr


def test_run_foreground_exit_codes(env: Env) -> None:
    for argv, code in ((("/bin/probe", "exit", "3"), 3), (("/bin/sh", "-c", "echo hello"), 0)):
        cid = env.new_id()
        env.write(env.config(*argv, cid=cid))
        done = env.refrun("run", "--bundle", str(env.bundle), cid)
        assert done.returncode == code, done.stderr
        if code == 0:
            assert done.stdout == "hello\n"
        assert env.leftovers(cid) == []  # foreground run removes the container


def test_run_foreground_killed_is_128_plus_signal(env: Env) -> None:
    cid = env.new_id()
    env.write(env.config("/bin/probe", "sleep", "forever", cid=cid))
    proc = subprocess.Popen(
        [str(REFRUN), "--root", str(env.root), "run", "--bundle", str(env.bundle), cid],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while env.refrun("state", cid).stdout.find('"running"') < 0:
            assert time.monotonic() < deadline, "never running"
            time.sleep(0.05)
        # PID 1 of a namespace ignores SIGKILL from inside it; from the host it dies.
        assert env.refrun("kill", cid, "KILL").returncode == 0
        assert proc.wait(10) == 128 + 9
    finally:
        proc.kill()
        proc.wait()
    assert env.leftovers(cid) == []


def test_run_foreground_forwards_signals(env: Env) -> None:
    cid = env.new_id()
    env.write(env.config("/bin/sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.1; done",
                         cid=cid))  # fmt: skip
    proc = subprocess.Popen(
        [str(REFRUN), "--root", str(env.root), "run", "--bundle", str(env.bundle), cid],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while env.refrun("state", cid).stdout.find('"running"') < 0:
            assert time.monotonic() < deadline, "never running"
            time.sleep(0.05)
        time.sleep(0.3)  # let the shell install its trap
        proc.terminate()  # SIGTERM to refrun, which passes it on
        assert proc.wait(10) == 42
    finally:
        proc.kill()
        proc.wait()


def test_hostname_and_namespaces(env: Env) -> None:
    cid = env.new_id()
    config = env.config("/bin/probe", "hostname", cid=cid)
    config["hostname"] = "cts-box"
    env.write(config)
    done = env.refrun("run", "--bundle", str(env.bundle), cid)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["hostname"] == "cts-box"
    assert os.uname().nodename != "cts-box"


def test_memory_limit_pause_resume_update(env: Env) -> None:
    cid = env.new_id()
    env.write(
        env.config(
            "/bin/probe", "sleep", "forever", cid=cid,
            resources={"memory": {"limit": 64 << 20}, "pids": {"limit": 100}},
        )
    )  # fmt: skip
    assert env.detached("run", "-d", "--bundle", str(env.bundle), cid) == 0
    pid = int(str(env.state(cid)["pid"]))
    memory = cgroup_dir(pid, "memory")
    assert memory == CGROUP_ROOT / "memory" / cid
    assert int((memory / "memory.limit_in_bytes").read_text()) == 64 << 20
    assert int((cgroup_dir(pid, "pids") / "pids.max").read_text()) == 100
    assert env.refrun("update", "--memory=32m", "--pids-limit", "7", cid).returncode == 0
    assert int((memory / "memory.limit_in_bytes").read_text()) == 32 << 20
    assert int((cgroup_dir(pid, "pids") / "pids.max").read_text()) == 7
    assert env.refrun("pause", cid).returncode == 0
    assert (cgroup_dir(pid, "freezer") / "freezer.state").read_text().strip() == "FROZEN"
    assert env.state(cid)["status"] == "paused"
    assert env.refrun("resume", cid).returncode == 0
    assert (cgroup_dir(pid, "freezer") / "freezer.state").read_text().strip() == "THAWED"
    assert env.state(cid)["status"] == "running"
    ps = env.refrun("ps", "--format", "json", cid)
    assert json.loads(ps.stdout) == [pid]
    assert env.refrun("delete", "--force", cid).returncode == 0
    assert env.leftovers(cid) == []


def test_exec(env: Env) -> None:
    cid = env.new_id()
    env.write(env.config("/bin/probe", "sleep", "forever", cid=cid))
    assert env.detached("run", "-d", "--bundle", str(env.bundle), cid) == 0
    init = int(str(env.state(cid)["pid"]))
    done = env.refrun("exec", cid, "/bin/sh", "-c", "echo $$; exit 5")
    assert done.returncode == 5, done.stderr
    assert int(done.stdout) > 1  # a PID of the container's namespace, not the host's
    hostname = env.refrun("exec", "-e", "X=1", cid, "/bin/sh", "-c", "echo $X; hostname")
    assert hostname.stdout.split() == ["1", "runc"]
    missing = env.refrun("exec", cid, "nope")
    assert missing.returncode == 127
    assert 'exec: "nope": executable file not found in $PATH' in missing.stderr
    assert env.state(cid)["pid"] == init


def test_duplicate_id(env: Env) -> None:
    cid = env.new_id()
    env.write(env.config("/bin/probe", "sleep", "forever", cid=cid))
    assert env.detached("run", "-d", "--bundle", str(env.bundle), cid) == 0
    done = env.refrun("create", "--bundle", str(env.bundle), cid)
    assert done.returncode != 0
    assert f"container already exists (status running): {cid}" in done.stderr
    assert env.state(cid)["status"] == "running"


def test_created_container_dies_of_sigterm(env: Env) -> None:
    # As runc's: the waiting init is not protected like an ordinary PID-namespace init.
    cid = env.new_id()
    env.write(env.config("/bin/probe", "sleep", "forever", cid=cid))
    assert env.detached("create", "--bundle", str(env.bundle), cid) == 0
    assert env.refrun("kill", cid, "TERM").returncode == 0
    wait_status(env, cid, "stopped")
    assert env.refrun("delete", cid).returncode == 0
    assert env.leftovers(cid) == []
