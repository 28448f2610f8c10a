"""Docker's default seccomp profile (tests/reference/oci/data), compiled and decided.

The data file is Docker's own format; `docker_profile` converts it the way dockerd does for an
amd64 container with Docker's default capabilities, giving the OCI `linux.seccomp` that runc
receives. The kernel tests (test_oci_seccomp_kernel.py) install the same program.
"""

from __future__ import annotations

import errno
import json
import time
from pathlib import Path
from typing import Any

from reference.linux import syscall as sc
from reference.oci import seccomp_bpf as bpf
from reference.oci.seccomp import compile_seccomp
from reference.oci.spec import Seccomp, parse_spec
from tests.reference.oci.test_oci_seccomp import (
    ALLOW,
    EPERM,
    X32,
    X86,
    X86_64,
    decide,
    errno_ret,
)

# The same file refd applies (reference/engine/seccomp_default.md says where it is from).
PROFILE = Path(__file__).resolve().parents[3] / "reference" / "engine" / "seccomp_default.json"

DOCKER_DEFAULT_CAPS = frozenset(
    {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
     "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
     "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
)  # fmt: skip


def docker_profile_json(caps: frozenset[str] = DOCKER_DEFAULT_CAPS) -> dict[str, Any]:
    """Docker's default profile as dockerd puts it in config.json for an amd64 container with
    `caps`: the archMap entry gives `architectures`, includes/excludes filter the rules."""
    docker = json.loads(PROFILE.read_text())
    out: dict[str, Any] = {"defaultAction": docker["defaultAction"], "syscalls": []}
    if "defaultErrnoRet" in docker:
        out["defaultErrnoRet"] = docker["defaultErrnoRet"]
    (entry,) = (m for m in docker["archMap"] if m["architecture"] == X86_64)
    out["architectures"] = [X86_64, *(entry["subArchitectures"] or [])]
    for r in docker["syscalls"]:
        inc, exc = r.get("includes", {}), r.get("excludes", {})
        if "arches" in inc and "amd64" not in inc["arches"]:
            continue
        if not set(inc.get("caps", [])) <= caps or "amd64" in exc.get("arches", []):
            continue
        if set(exc.get("caps", [])) & caps:
            continue
        out["syscalls"].append({k: r[k] for k in ("names", "action", "errnoRet", "args") if k in r})
    return out


def docker_profile() -> Seccomp:
    spec = parse_spec({"ociVersion": "1.0.2", "linux": {"seccomp": docker_profile_json()}},
                      create=False)  # fmt: skip
    assert spec.linux.seccomp is not None
    return spec.linux.seccomp


# --- Docker's default profile ---------------------------------------------------------------------


def test_docker_default_profile_compiles_small_and_fast() -> None:
    seccomp = docker_profile()
    assert sum(len(r.names) for r in seccomp.syscalls) > 300
    out = compile_seccomp(seccomp, arch="x86_64")
    bpf.check(out.program)
    assert out.arches == (X86_64, X86, X32)
    assert 0 < out.instructions < 600  # 389 today; libseccomp 2.5.4 exports 1001
    assert {"chown32", "riscv_hwprobe"} <= {u.name for u in out.unknown if u.arch == X86_64}
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        compile_seccomp(seccomp, arch="x86_64")
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.020, timings  # refrun compiles once per container


def test_docker_default_profile_decisions() -> None:
    program = compile_seccomp(docker_profile(), arch="x86_64").program
    for name in ("read", "openat", "execve", "getpid", "arch_prctl", "chroot", "statx"):
        assert decide(program, name) == ALLOW, name
    for name in ("mount", "umount2", "unshare", "setns", "bpf", "reboot", "kexec_load"):
        assert decide(program, name) == EPERM, name
    enosys = errno_ret(errno.ENOSYS)
    assert decide(program, "clone3") == enosys  # the profile's own rule: glibc falls back
    assert decide(program, "listns") == enosys  # newer than the profile: runc's stub
    assert decide(program, "socket", 1) == decide(program, "socket", 41) == ALLOW
    assert decide(program, "socket", 38) == decide(program, "socket", 40) == EPERM  # ALG, VSOCK
    assert decide(program, "personality", 0xFFFFFFFF) == ALLOW
    assert decide(program, "personality", 1) == EPERM
    assert decide(program, "clone", 0x01200011) == ALLOW  # fork()'s flags
    assert decide(program, "clone", sc.CLONE_NEWNS | 0x11) == EPERM
    assert decide(program, "chown32", abi=X86) == decide(program, "getpid", abi=X32) == ALLOW
    assert decide(program, "mount", abi=X86) == EPERM
