"""RecordingSyscall: records calls in order and fails on demand like the real kernel path."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import pytest

from reference.errors import ConfigError, KernelError
from reference.linux import syscall as sc
from reference.linux.fake import RecordingSyscall


def _setup_uts_and_rootfs(s: sc.Syscall, rootfs: str, hostname: str) -> None:
    """A slice of what container setup does, written against the protocol."""
    s.unshare(sc.CLONE_NEWNS | sc.CLONE_NEWUTS)
    s.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    s.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)
    s.sethostname(hostname)
    s.pivot_root(rootfs, rootfs)
    s.umount2("/", sc.MNT_DETACH)


def test_records_calls_in_order_with_defaults() -> None:
    fake = RecordingSyscall()
    _setup_uts_and_rootfs(fake, "/run/c1/rootfs", "c1")
    assert fake.names() == ["unshare", "mount", "mount", "sethostname", "pivot_root", "umount2"]
    assert fake.calls[0] == ("unshare", (sc.CLONE_NEWNS | sc.CLONE_NEWUTS,))
    assert fake.args_of("mount") == [
        (None, "/", None, sc.MS_REC | sc.MS_PRIVATE, None),
        ("/run/c1/rootfs", "/run/c1/rootfs", None, sc.MS_BIND | sc.MS_REC, None),
    ]
    assert fake.args_of("umount2") == [("/", sc.MNT_DETACH)]


def test_fail_raises_kernel_error_naming_the_object_and_records_the_attempt() -> None:
    fake = RecordingSyscall()
    fake.fail("mount", errno.ENOENT)
    with pytest.raises(KernelError) as exc:
        _setup_uts_and_rootfs(fake, "/run/c1/rootfs", "c1")
    assert exc.value.errno == errno.ENOENT
    assert exc.value.op == "mount"
    assert exc.value.obj == "/"
    assert "No such file or directory" in str(exc.value)
    assert fake.names() == ["unshare", "mount"]  # setup stopped at the failure


def test_fail_counts_down_per_call_name() -> None:
    fake = RecordingSyscall()
    fake.fail("mount", errno.EBUSY, times=2)
    for _ in range(2):
        with pytest.raises(KernelError, match=r"Device or resource busy.*: tmpfs on /t"):
            fake.mount("tmpfs", "/t", "tmpfs")
    fake.mount("tmpfs", "/t", "tmpfs")  # third call succeeds
    fake.sethostname("h")  # other names are unaffected
    assert len(fake.args_of("mount")) == 3


def test_fail_rejects_unknown_call_names() -> None:
    with pytest.raises(AttributeError, match="mout"):
        RecordingSyscall().fail("mout", errno.EPERM)
    with pytest.raises(AttributeError):
        RecordingSyscall().fail("_record", errno.EPERM)


def test_error_objects_match_the_real_implementation() -> None:
    fake = RecordingSyscall()
    cases: list[tuple[str, Callable[[], object], str]] = [
        ("drop_bounding", lambda: fake.drop_bounding(21), "CAP_SYS_ADMIN"),
        ("set_ambient", lambda: fake.set_ambient(0), "CAP_CHOWN"),
        ("unshare", lambda: fake.unshare(sc.CLONE_NEWUSER | sc.CLONE_NEWPID), "pid,user"),
        ("setrlimit", lambda: fake.setrlimit(7, 1, 2), "RLIMIT_NOFILE"),
        ("chroot", lambda: fake.chroot(Path("/r")), "/r"),
        ("setgroups", lambda: fake.setgroups([1, 2]), "groups 1,2"),
    ]
    for name, call, obj in cases:
        fake.fail(name, errno.EPERM)
        with pytest.raises(KernelError) as exc:
            call()
        assert exc.value.obj == obj


def test_capability_state_reads_back() -> None:
    fake = RecordingSyscall()
    assert fake.get_capabilities() == (sc.cap_mask(sc.CAPS), sc.cap_mask(sc.CAPS), 0)
    fake.set_capabilities(1, 3, 0)
    assert fake.get_capabilities() == (1, 3, 0)


def test_personality_and_fds() -> None:
    fake = RecordingSyscall()
    assert fake.personality(sc.PER_LINUX32) == sc.PER_LINUX
    assert fake.personality(sc.PERSONALITY_QUERY) == sc.PER_LINUX32
    fd1, fd2 = fake.pidfd_open(10), fake.pidfd_open(11)
    assert fd1 != fd2
    assert fd1 > 2
    assert fake.seccomp_set_mode_filter(bytes(8)) == 0
    assert fake.seccomp_set_mode_filter(bytes(8), sc.SECCOMP_FILTER_FLAG_NEW_LISTENER) > 2


def test_seccomp_rejects_malformed_program_before_recording() -> None:
    fake = RecordingSyscall()
    with pytest.raises(ConfigError):
        fake.seccomp_set_mode_filter(b"\x06\x00")
    assert fake.calls == []


def test_every_protocol_method_records() -> None:
    fake = RecordingSyscall()
    fake.setns(5, sc.CLONE_NEWNET)
    fake.mknod("/dev/null", 0o20666, 0x103)
    fake.setdomainname("d")
    fake.prctl(sc.PR_SET_KEEPCAPS, 1)
    fake.set_no_new_privs()
    fake.clear_ambient()
    fake.setresuid(1, 2, 3)
    fake.setresgid(4, 5, 6)
    assert fake.calls == [
        ("setns", (5, sc.CLONE_NEWNET)),
        ("mknod", ("/dev/null", 0o20666, 0x103)),
        ("setdomainname", ("d",)),
        ("prctl", (sc.PR_SET_KEEPCAPS, 1, 0, 0, 0)),
        ("set_no_new_privs", ()),
        ("clear_ambient", ()),
        ("setresuid", (1, 2, 3)),
        ("setresgid", (4, 5, 6)),
    ]
