"""Compiled filters installed for real, each in a forked child (never in the pytest process).

The child sets no_new_privs (what lets an unprivileged process install a filter, and what runc
does before it), installs the program through LinuxSyscall, runs its checks and reports them as
JSON through a pipe; the parent asserts. Core dumps are off in the child, since KILL and TRAP
end it with SIGSYS. Needs root (for the mount/unshare denials to mean anything) and x86_64.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reference.errors import KernelError
from reference.linux import syscall as sc
from reference.linux.libc import LinuxSyscall
from reference.oci.seccomp import compile_seccomp
from reference.oci.seccomp_tables import X32_SYSCALL_BIT
from tests.reference.oci.test_oci_seccomp import arg, profile, rule
from tests.reference.oci.test_oci_seccomp_docker import docker_profile

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 syscall numbers"),
]

AF_VSOCK = 40


def filtered(program: bytes, body: Callable[[], dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """Run `body` in a child under `program`: (its exit status, what it reported)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        try:
            os.close(r)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            s = LinuxSyscall()
            s.set_no_new_privs()
            s.seccomp_set_mode_filter(program)
            try:
                report = body()
            except BaseException as e:
                report = {"crash": repr(e)}
            with open(w, "w") as pipe:
                json.dump(report, pipe)
        finally:
            os._exit(0)
    os.close(w)
    with open(r) as pipe:
        raw = pipe.read()
    _, status = os.waitpid(pid, 0)
    return status, json.loads(raw) if raw else {}


def errno_of(call: Callable[[], object]) -> int:
    """0 if `call` succeeds, else the errno it failed with."""
    try:
        call()
    except KernelError as e:
        return e.errno
    except OSError as e:
        return e.errno or -1
    return 0


def test_mkdir_fails_with_eperm(tmp_path: Path) -> None:
    target = tmp_path / "made"
    program = compile_seccomp(profile("SCMP_ACT_ALLOW", rule(("mkdir", "mkdirat")))).program

    def child() -> dict[str, Any]:
        status = Path("/proc/self/status").read_text()
        return {
            "mkdir": errno_of(lambda: os.mkdir(target)),
            "pid": os.getpid(),
            "seccomp": [line for line in status.splitlines() if line.startswith("Seccomp:")],
        }

    status, got = filtered(program, child)
    assert status == 0, got
    assert got["mkdir"] == errno.EPERM
    assert got["pid"] > 0
    assert got["seccomp"] == ["Seccomp:\t2"]  # SECCOMP_MODE_FILTER
    assert not target.exists()
    os.mkdir(target)  # the pytest process is not filtered


def test_argument_rules_match_only_their_values() -> None:
    program = compile_seccomp(profile(
        "SCMP_ACT_ALLOW",
        rule("socket", "SCMP_ACT_ERRNO", arg(0, "EQ", AF_VSOCK), errno=errno.EACCES),
        rule("personality", "SCMP_ACT_ERRNO", arg(0, "EQ", sc.PERSONALITY_QUERY),
             errno=errno.EXDEV),
    )).program  # fmt: skip

    def child() -> dict[str, Any]:
        s = LinuxSyscall()
        return {
            "vsock": errno_of(lambda: socket.socket(AF_VSOCK, socket.SOCK_STREAM)),
            "unix": errno_of(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()),
            "query": errno_of(lambda: s.personality(sc.PERSONALITY_QUERY)),
            "set": errno_of(lambda: s.personality(sc.PER_LINUX)),
        }

    status, got = filtered(program, child)
    assert status == 0, got
    assert got == {"vsock": errno.EACCES, "unix": 0, "query": errno.EXDEV, "set": 0}


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_TRAP"])
def test_kill_and_trap_end_the_process_with_sigsys(action: str) -> None:
    program = compile_seccomp(profile("SCMP_ACT_ALLOW", rule("getppid", action))).program
    status, got = filtered(program, lambda: {"ppid": os.getppid()})
    assert got == {}
    assert os.WIFSIGNALED(status)
    assert os.WTERMSIG(status) == signal.SIGSYS


def test_x32_call_in_an_x86_64_filter_is_a_bad_arch() -> None:
    program = compile_seccomp(profile("SCMP_ACT_ALLOW")).program

    def child() -> dict[str, Any]:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        return {"ret": libc.syscall(ctypes.c_long(X32_SYSCALL_BIT | 39))}  # x32 getpid

    status, got = filtered(program, child)
    assert got == {}  # KILL_THREAD of the only thread: the process dies of SIGSYS
    assert os.WIFSIGNALED(status)
    assert os.WTERMSIG(status) == signal.SIGSYS


def test_docker_default_profile_runs_a_normal_workload(tmp_path: Path) -> None:
    out = compile_seccomp(docker_profile())
    (tmp_path / "data").write_text("hello")

    def child() -> dict[str, Any]:
        s = LinuxSyscall()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        clone3 = [libc.syscall(ctypes.c_long(435), None, ctypes.c_long(0)), ctypes.get_errno()]
        # listns (470, Linux 6.18) is newer than the profile: runc's stub says ENOSYS, not EPERM
        listns = [
            libc.syscall(ctypes.c_long(470), None, None, ctypes.c_long(0)),
            ctypes.get_errno(),
        ]
        run = subprocess.run(
            [sys.executable, "-c", "import os, json; print(json.dumps(sorted(os.listdir('/'))))"],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        return {
            "read": (tmp_path / "data").read_text(),
            "listdir": sorted(os.listdir("/")),
            "python": [run.returncode, run.stdout.strip(), run.stderr[-500:]],
            "unshare": errno_of(lambda: s.unshare(sc.CLONE_NEWNS)),
            "mount": errno_of(lambda: s.mount("tmpfs", str(tmp_path), "tmpfs")),
            "vsock": errno_of(lambda: socket.socket(AF_VSOCK, socket.SOCK_STREAM)),
            "unix": errno_of(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()),
            "clone3": clone3,
            "listns": listns,
        }

    status, got = filtered(out.program, child)
    assert status == 0, got
    assert got["read"] == "hello"
    code, stdout, stderr = got["python"]
    assert code == 0, stderr
    assert json.loads(stdout) == got["listdir"]
    assert got["unshare"] == got["mount"] == got["vsock"] == errno.EPERM
    assert got["unix"] == 0
    assert got["clone3"] == got["listns"] == [-1, errno.ENOSYS]
    assert not os.path.ismount(tmp_path)
