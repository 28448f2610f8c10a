"""LinuxSyscall against the real kernel.

Every kernel call runs in a forked child (never in the pytest process): the child unshares what it
changes, reports through a pipe as JSON and leaves with os._exit, and the parent checks that the
host (its hostname, its mounts) saw nothing. The tests need root; without it they skip.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reference.errors import ConfigError, RefError, UnsupportedError
from reference.linux import syscall as sc
from reference.linux.libc import LinuxSyscall, link_up
from reference.linux.procfs import mount_at, ns_inode, parse_mountinfo, parse_status, read

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
x86_64_only = pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers: x86_64")


def in_child(body: Callable[[], object]) -> Any:
    """Run `body` in a forked child; return what it returned, or re-raise its RefError's text."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        try:
            os.close(r)
            try:
                report: dict[str, object] = {"ok": body()}
            except RefError as e:
                report = {"error": f"{type(e).__name__}: {e}", "errno": getattr(e, "errno", None)}
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
    assert os.waitstatus_to_exitcode(status) == 0
    result = json.loads(raw)
    if result.get("errno") == errno.EPERM and "unshare" in result["error"]:
        pytest.skip(f"namespaces not permitted here: {result['error']}")
    assert "ok" in result, result
    return result["ok"]


def capture(call: Callable[[], object]) -> list[object]:
    """In a child: what a failing call raised, as [class, op, errno, message]."""
    try:
        call()
    except RefError as e:
        return [type(e).__name__, getattr(e, "op", None), getattr(e, "errno", None), str(e)]
    return ["no error"]


@needs_root
def test_uts_and_mount_namespace_stay_in_the_child(tmp_path: Path) -> None:
    target = str(tmp_path)
    host_name = socket.gethostname()
    before = parse_mountinfo(read("self", "mountinfo"))

    def child() -> object:
        s = LinuxSyscall()
        s.unshare(sc.CLONE_NEWUTS | sc.CLONE_NEWNS)
        s.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
        s.sethostname("cts-unit")
        s.setdomainname("cts-domain")
        s.mount("cts-tmp", target, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "size=1m,mode=0700")
        Path(target, "only-in-child").write_text("x")
        mounts = parse_mountinfo(read("self", "mountinfo"))
        m = mount_at(mounts, target)
        assert m is not None
        seen = {
            "hostname": socket.gethostname(),
            "domainname": Path("/proc/sys/kernel/domainname").read_text(),
            "uts": ns_inode("self", "uts"),
            "mnt": ns_inode("self", "mount"),
            "mount": [m.fstype, m.source, m.mount_point, list(m.options), list(m.super_options)],
            "root_propagation": mount_at(mounts, "/").propagation,  # type: ignore[union-attr]
        }
        s.umount2(target, sc.MNT_DETACH)
        seen["after_umount"] = mount_at(parse_mountinfo(read("self", "mountinfo")), target) == m
        return seen

    seen = in_child(child)
    assert seen["hostname"] == "cts-unit"
    assert seen["domainname"].strip() == "cts-domain"
    assert seen["uts"] != ns_inode("self", "uts")
    assert seen["mnt"] != ns_inode("self", "mount")
    fstype, source, point, options, super_options = seen["mount"]
    assert (fstype, source, point) == ("tmpfs", "cts-tmp", target)
    assert {"nosuid", "nodev"} <= set(options)
    assert "size=1024k" in super_options
    assert seen["root_propagation"] == "private"
    assert seen["after_umount"] is False

    # The host saw none of it.
    assert socket.gethostname() == host_name
    after = parse_mountinfo(read("self", "mountinfo"))
    assert mount_at(after, target) == mount_at(before, target)
    assert mount_at(after, "/") == mount_at(before, "/")  # propagation of / unchanged
    assert not any(m.mount_point == target for m in after)
    assert not (tmp_path / "only-in-child").exists()


@needs_root
def test_link_up_brings_lo_up_in_a_new_network_namespace() -> None:
    def child() -> object:
        LinuxSyscall().unshare(sc.CLONE_NEWNET)
        before = _lo_flags()
        link_up("lo")
        return {"before": before, "after": _lo_flags(), "missing": capture(lambda: link_up("nx0"))}

    seen = in_child(child)
    up, running = 0x1, 0x40  # IFF_UP; IFF_RUNNING follows it on lo
    assert seen["before"] & up == 0  # a new namespace's lo starts down
    assert seen["after"] & up == up
    assert seen["after"] & ~(up | running) == seen["before"] & ~(up | running)  # nothing else
    cls, op, err, _ = seen["missing"]
    assert (cls, op, err) == ("KernelError", "ioctl(SIOCGIFFLAGS)", errno.ENODEV)


def _lo_flags() -> int:
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh22x", b"lo", 0)
        flags: int = struct.unpack("16sh22x", fcntl.ioctl(s.fileno(), 0x8913, req))[1]
    return flags


@needs_root
def test_failures_raise_kernel_error_with_errno_and_object(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing" / "dir")

    def child() -> object:
        s = LinuxSyscall()
        s.unshare(sc.CLONE_NEWUTS | sc.CLONE_NEWNS)  # in case a call unexpectedly succeeds
        s.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
        return {
            "mount": capture(lambda: s.mount("tmpfs", missing, "tmpfs")),
            "bind": capture(lambda: s.mount(missing, str(tmp_path), None, sc.MS_BIND)),
            "umount2": capture(lambda: s.umount2(str(tmp_path))),
            "pivot_root": capture(lambda: s.pivot_root(missing, missing)),
            "chroot": capture(lambda: s.chroot(missing)),
            "mknod": capture(lambda: s.mknod(missing, 0o20666, os.makedev(1, 3))),
            "setns": capture(lambda: s.setns(9999, 0)),
            "sethostname": capture(lambda: s.sethostname("h" * 65)),
            "setrlimit": capture(lambda: s.setrlimit(sc.RLIMITS["RLIMIT_NOFILE"], 10, 5)),
            "rlimit_range": capture(lambda: s.setrlimit(7, -1, 5)),
            "drop_bounding": capture(lambda: s.drop_bounding(63)),
            "seccomp_len": capture(lambda: s.seccomp_set_mode_filter(bytes(7))),
        }

    got = in_child(child)
    enoent = os.strerror(errno.ENOENT)
    assert got["mount"] == [
        "KernelError",
        "mount",
        errno.ENOENT,
        f"mount failed: {enoent} (errno 2): tmpfs on {missing}",
    ]
    assert got["bind"][2] == errno.ENOENT
    assert f"{missing} on {tmp_path}" in got["bind"][3]
    assert got["umount2"][1:3] == ["umount2", errno.EINVAL]
    assert got["umount2"][3].endswith(f": {tmp_path}")
    assert got["pivot_root"][1:3] == ["pivot_root", errno.ENOENT]
    assert missing in got["pivot_root"][3]
    assert got["chroot"][1:] == [
        "chroot",
        errno.ENOENT,
        f"chroot failed: {enoent} (errno 2): {missing}",
    ]
    assert got["mknod"][1:3] == ["mknod", errno.ENOENT]
    assert got["setns"][1:3] == ["setns", errno.EBADF]
    assert got["setns"][3].endswith("fd 9999")
    assert got["sethostname"][1:3] == ["sethostname", errno.EINVAL]
    assert got["setrlimit"][1:3] == ["setrlimit", errno.EINVAL]
    assert got["setrlimit"][3].endswith(": RLIMIT_NOFILE")
    assert got["rlimit_range"][0] == "ConfigError"
    assert got["drop_bounding"][1:3] == ["prctl(PR_CAPBSET_DROP)", errno.EINVAL]
    assert got["drop_bounding"][3].endswith("capability 63")
    assert got["seccomp_len"][0] == "ConfigError"


@needs_root
def test_capabilities_credentials_and_process_attributes() -> None:
    def child() -> object:
        s = LinuxSyscall()
        out: dict[str, object] = {}
        eff, perm, _ = s.get_capabilities()
        out["initial_has_sys_admin"] = bool(eff & 1 << sc.CAPS["CAP_SYS_ADMIN"])

        boot = sc.CAPS["CAP_SYS_BOOT"]
        out["bound_before"] = s.prctl(sc.PR_CAPBSET_READ, boot)
        s.drop_bounding(boot)
        out["bound_after"] = s.prctl(sc.PR_CAPBSET_READ, boot)

        raw, chown = 1 << sc.CAPS["CAP_NET_RAW"], sc.CAPS["CAP_CHOWN"]
        s.set_capabilities(eff & ~raw, perm & ~raw, 1 << chown)
        out["caps"] = list(s.get_capabilities())
        out["status_capeff"] = int(parse_status(read("self", "status"))["CapEff"], 16)
        out["expected"] = [eff & ~raw, perm & ~raw, 1 << chown]
        s.set_ambient(chown)
        out["ambient_set"] = s.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_IS_SET, chown)
        s.clear_ambient()
        out["ambient_cleared"] = s.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_IS_SET, chown)

        s.set_no_new_privs()
        out["nnp"] = [
            s.prctl(sc.PR_GET_NO_NEW_PRIVS),
            parse_status(read("self", "status"))["NoNewPrivs"],
        ]

        s.setrlimit(sc.RLIMITS["RLIMIT_NOFILE"], 512, 1024)
        s.setrlimit(sc.RLIMITS["RLIMIT_CORE"], sc.RLIM_INFINITY, sc.RLIM_INFINITY)
        out["nofile"] = list(resource.getrlimit(resource.RLIMIT_NOFILE))
        out["core"] = list(resource.getrlimit(resource.RLIMIT_CORE))

        out["persona"] = s.personality(sc.PERSONALITY_QUERY)
        s.personality(sc.PER_LINUX)

        fd = s.pidfd_open(os.getpid())
        out["pidfd"] = os.readlink(f"/proc/self/fd/{fd}")
        os.close(fd)

        s.setgroups([5, 6])
        s.setresgid(1234, 1234, 1234)
        s.setresuid(1234, 1234, 1234)
        out["ids"] = [sorted(os.getgroups()), list(os.getresgid()), list(os.getresuid())]
        out["caps_as_user"] = list(s.get_capabilities())  # leaving uid 0 clears all but inh
        return out

    got = in_child(child)
    assert got["initial_has_sys_admin"] is True
    assert (got["bound_before"], got["bound_after"]) == (1, 0)
    assert got["caps"] == got["expected"]
    assert got["status_capeff"] == got["expected"][0]
    assert (got["ambient_set"], got["ambient_cleared"]) == (1, 0)
    assert got["nnp"] == [1, "1"]
    assert got["nofile"] == [512, 1024]
    assert got["core"] == [resource.RLIM_INFINITY] * 2
    assert got["persona"] == sc.PER_LINUX
    assert got["pidfd"] == "anon_inode:[pidfd]"
    assert got["ids"] == [[5, 6], [1234] * 3, [1234] * 3]
    assert got["caps_as_user"] == [0, 0, 1 << sc.CAPS["CAP_CHOWN"]]


def _bpf(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


@needs_root
@x86_64_only
def test_seccomp_filter_is_enforced() -> None:
    ld_w_abs, jeq_k, ret_k = 0x20, 0x15, 0x06
    allow, errno_ret = 0x7FFF0000, 0x00050000
    audit_arch_x86_64, nr_chdir = 0xC000003E, 80
    program = b"".join(
        [
            _bpf(ld_w_abs, 0, 0, 4),  # seccomp_data.arch
            _bpf(jeq_k, 1, 0, audit_arch_x86_64),
            _bpf(ret_k, 0, 0, allow),
            _bpf(ld_w_abs, 0, 0, 0),  # seccomp_data.nr
            _bpf(jeq_k, 0, 1, nr_chdir),
            _bpf(ret_k, 0, 0, errno_ret | errno.EOPNOTSUPP),
            _bpf(ret_k, 0, 0, allow),
        ]
    )

    def child() -> object:
        s = LinuxSyscall()
        invalid = capture(lambda: s.seccomp_set_mode_filter(_bpf(ld_w_abs, 0, 0, 0)))  # no ret
        s.set_no_new_privs()
        listener = s.seccomp_set_mode_filter(program)
        try:
            os.chdir("/")
            chdir = 0
        except OSError as e:
            chdir = e.errno or -1
        return {
            "invalid": invalid,
            "listener": listener,
            "chdir": chdir,
            "mode": parse_status(read("self", "status"))["Seccomp"],
        }

    got = in_child(child)
    assert got["invalid"][1:3] == ["seccomp(SECCOMP_SET_MODE_FILTER)", errno.EINVAL]
    assert got["listener"] == 0
    assert got["chdir"] == errno.EOPNOTSUPP
    assert got["mode"] == "2"
    os.chdir(os.getcwd())  # and the pytest process is unfiltered


def test_other_machines_are_refused_by_name() -> None:
    # Refused before any kernel call, so this is safe in the pytest process.
    s = LinuxSyscall(machine="riscv64")
    with pytest.raises(UnsupportedError, match=r"pivot_root.*riscv64"):
        s.pivot_root("/a", "/b")
    with pytest.raises(UnsupportedError, match=r"seccomp.*riscv64"):
        s.seccomp_set_mode_filter(bytes(8))
    with pytest.raises(ConfigError):  # a malformed program is refused first, on any machine
        s.seccomp_set_mode_filter(bytes(3))
