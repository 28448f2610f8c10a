"""refrun end to end, as root: bad input, hooks, console socket, user namespace, fds, seccomp.

A failed create must exit non-zero with an error naming the field, and leave no state
directory, no cgroup and no mount that mentions its id.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from tests.reference.refrun._e2e import (
    REFRUN,
    Env,
    env,
    image_rootfs,
    ns,
    wait_status,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
__all__ = ["env", "image_rootfs"]  # fixtures, imported to be found by pytest


# --- bad input: an error naming the field, and nothing left behind -----------------------------
BAD = {
    "malformed": (None, "malformed JSON"),
    "missing-rootfs": ({"root": {"path": "nope"}}, "root.path"),
    "unknown-namespace": (
        {"linux.namespaces+": {"type": "bogus"}},
        "unknown namespace type 'bogus'",
    ),
    "memory-limit": (
        {"linux.resources": {"memory": {"limit": -5}}},
        "linux.resources.memory.limit",
    ),
    "cpu-shares": ({"linux.resources": {"cpu": {"shares": 1}}}, "linux.resources.cpu.shares"),
    # Refused by the kernel, after the namespace stage was forked and joined the cgroup:
    "cpuset": ({"linux.resources": {"cpu": {"cpus": "250"}}}, "cpuset.cpus"),
    # Refused in the container's init, after mounts were made:
    "bind-source": (
        {"mounts+": {"destination": "/x", "type": "bind", "source": "/nonexistent-cts"}},
        "mounts[7].source",
    ),
    "rlimit": (
        {"process.rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1 << 40}]},
        "process.rlimits[0]",
    ),
    "executable": ({"process.args": ["no-such-binary"]}, 'exec: "no-such-binary"'),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_leaves_nothing(env: Env, case: str) -> None:
    cid = env.new_id()
    config = env.config("/bin/probe", "exit", "0", cid=cid)
    change, message = BAD[case]
    if change is None:
        (env.bundle / "config.json").write_text('{"ociVersion": ')
    else:
        for key, value in change.items():
            *parents, last = key.rstrip("+").split(".")
            obj: dict[str, object] = config
            for p in parents:
                child = obj[p]
                assert isinstance(child, dict)
                obj = child
            if key.endswith("+"):
                target = obj[last]
                assert isinstance(target, list)
                target.append(value)
            else:
                obj[last] = value
        env.write(config)
    log = env.bundle.parent / "log.json"
    done = env.refrun(
        "--log", str(log), "--log-format", "json", "create", "--bundle", str(env.bundle), cid
    )
    assert done.returncode != 0
    assert message in done.stderr
    assert message in json.loads(log.read_text().splitlines()[-1])["msg"]
    assert env.leftovers(cid) == []
    if case == "executable":
        assert done.returncode == 127


# --- hooks, console, user namespace -------------------------------------------------------------
def test_hooks(env: Env) -> None:
    cid = env.new_id()
    out = env.bundle.parent
    config = env.config("/bin/probe", "exit", "0", cid=cid)
    stages = ("createRuntime", "poststart", "poststop")
    config["hooks"] = {
        stage: [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}/{stage}.json"],
                 "timeout": 5}]
        for stage in stages
    }  # fmt: skip
    env.write(config)
    done = env.refrun("run", "--bundle", str(env.bundle), cid)
    assert done.returncode == 0, done.stderr
    seen = {s: json.loads((out / f"{s}.json").read_text()) for s in stages}
    assert seen["createRuntime"]["status"] == "creating"
    assert seen["createRuntime"]["pid"] > 0
    assert seen["poststart"]["status"] == "running"
    assert seen["poststop"]["status"] == "stopped"
    assert {s["id"] for s in seen.values()} == {cid}


def test_failing_create_runtime_hook_fails_create(env: Env) -> None:
    cid = env.new_id()
    config = env.config("/bin/probe", "exit", "0", cid=cid)
    config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]}
    env.write(config)
    done = env.refrun("create", "--bundle", str(env.bundle), cid)
    assert done.returncode != 0
    assert "hooks.createRuntime[0] exited with status 3" in done.stderr
    assert env.leftovers(cid) == []


def test_console_socket(env: Env, tmp_path: Path) -> None:
    cid = env.new_id()
    config = env.config("/bin/sh", "-c", "tty; echo on-the-terminal", cid=cid)
    process = config["process"]
    assert isinstance(process, dict)
    process["terminal"] = True
    env.write(config)
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    received: list[int] = []

    def accept() -> None:
        conn, _ = server.accept()
        _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        received.extend(fds)
        conn.close()

    t = threading.Thread(target=accept)
    t.start()
    try:
        done = env.refrun("run", "--console-socket", path, "--bundle", str(env.bundle), cid)
        t.join(10)
        assert done.returncode == 0, done.stderr
        assert len(received) == 1
        output = b""
        while True:
            try:
                chunk = os.read(received[0], 4096)
            except OSError:  # EIO once the slave side is closed
                break
            if not chunk:
                break
            output += chunk
        assert b"/dev/pts/0" in output
        assert b"on-the-terminal" in output
    finally:
        server.close()
        for fd in received:
            os.close(fd)


def test_user_namespace(image_rootfs: Path) -> None:
    # The container's root (host uid 100000) must be able to reach the bundle: pytest's own
    # temporary directories are 0700, so this one lives elsewhere.
    tmp = Path(tempfile.mkdtemp(prefix="cts-refrun-"))
    tmp.chmod(0o755)
    env = Env(tmp, image_rootfs)
    try:
        _user_namespace(env)
    finally:
        for cid in env.ids:
            env.refrun("delete", "--force", cid)
        shutil.rmtree(tmp, ignore_errors=True)


def _user_namespace(env: Env) -> None:
    cid = env.new_id()
    maps = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    namespaces = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "user")]
    env.write(
        env.config("/bin/probe", "sleep", "forever", cid=cid, namespaces=namespaces,
                   uidMappings=maps, gidMappings=maps)
    )  # fmt: skip
    os.chmod(env.bundle, 0o755)
    assert env.detached("run", "-d", "--bundle", str(env.bundle), cid) == 0, (
        env.bundle.parent / "container.log"
    ).read_text()
    pid = int(str(env.state(cid)["pid"]))
    assert Path(f"/proc/{pid}/uid_map").read_text().split() == ["0", "100000", "65536"]
    assert ns(pid, "user") != ns("self", "user")
    assert os.stat(f"/proc/{pid}").st_uid == 100000
    # exec joins the user namespace first, then the others: root inside, 100000 outside.
    done = env.refrun("exec", cid, "/bin/sh", "-c", "id -u; cat /proc/self/uid_map")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "0", "100000", "65536"]


def test_fds_no_pivot_and_exec_process_file(env: Env) -> None:
    cid = env.new_id()
    env.write(env.config("/bin/sh", "-c", "ls /proc/self/fd; cat <&3", cid=cid))
    r, w = os.pipe()
    stray = os.open("/dev/null", os.O_RDONLY)  # inheritable: must still not reach the container
    os.set_inheritable(stray, True)
    os.write(w, b"through-fd-3\n")
    os.close(w)
    try:
        done = subprocess.run(
            [str(REFRUN), "--root", str(env.root), "run", "--no-pivot", "--preserve-fds", "1",
             "--bundle", str(env.bundle), cid],
            capture_output=True, text=True, timeout=60, close_fds=False,
            preexec_fn=lambda: os.dup2(r, 3),
        )  # fmt: skip
    finally:
        os.close(r)
        os.close(stray)
    assert done.returncode == 0, done.stderr
    fds = [int(x) for x in done.stdout.split()[:-1]]
    assert fds == [0, 1, 2, 3, 4]  # stdio, fd 3, and the one `ls` opens for /proc/self/fd
    assert done.stdout.split()[-1] == "through-fd-3"


def test_exec_detached_with_process_file_and_kill_all(env: Env) -> None:
    cid = env.new_id()
    env.write(env.config("/bin/probe", "sleep", "forever", cid=cid))
    assert env.detached("run", "-d", "--bundle", str(env.bundle), cid) == 0
    process = env.bundle.parent / "process.json"
    process.write_text(json.dumps({"user": {"uid": 0, "gid": 0}, "cwd": "/",
                                   "args": ["/bin/probe", "sleep", "forever"]}))  # fmt: skip
    pid_file = env.bundle.parent / "exec.pid"
    assert env.detached("exec", "-d", "--process", str(process), "--pid-file", str(pid_file),
                        cid) == 0  # fmt: skip
    extra = int(pid_file.read_text())
    ps = json.loads(env.refrun("ps", "--format", "json", cid).stdout)
    assert extra in ps
    assert len(ps) == 2
    assert env.refrun("kill", "--all", cid, "KILL").returncode == 0
    wait_status(env, cid, "stopped")
    assert env.refrun("delete", cid).returncode == 0
    assert env.leftovers(cid) == []
    assert env.refrun("delete", "--force", cid).returncode == 0  # runc: --force on nothing is ok


def test_seccomp_profile(env: Env) -> None:
    pytest.importorskip("reference.oci.seccomp")
    cid = env.new_id()
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": 1}]}  # fmt: skip
    env.write(env.config("/bin/sh", "-c", "mkdir /dev/shm/x || echo denied", cid=cid,
                         seccomp=profile))  # fmt: skip
    done = env.refrun("run", "--bundle", str(env.bundle), cid)
    assert done.returncode == 0, done.stderr
    assert "denied" in done.stdout
