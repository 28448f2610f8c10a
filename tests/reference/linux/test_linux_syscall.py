"""Constants and helpers of the Syscall protocol module; the implementations satisfy it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reference.errors import ConfigError
from reference.linux import syscall as sc
from reference.linux.fake import RecordingSyscall
from reference.linux.libc import LinuxSyscall


def test_implementations_satisfy_the_protocol() -> None:
    # Checked by mypy: an assignment that fails if either class drifts from the protocol.
    real: sc.Syscall = LinuxSyscall()
    fake: sc.Syscall = RecordingSyscall()
    protocol_methods = {n for n in vars(sc.Syscall) if not n.startswith("_")}
    assert protocol_methods <= set(dir(real))
    assert protocol_methods <= set(dir(fake))
    assert protocol_methods == {
        "unshare",
        "setns",
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "mknod",
        "sethostname",
        "setdomainname",
        "prctl",
        "personality",
        "setrlimit",
        "set_no_new_privs",
        "get_capabilities",
        "set_capabilities",
        "set_ambient",
        "clear_ambient",
        "drop_bounding",
        "setgroups",
        "setresuid",
        "setresgid",
        "seccomp_set_mode_filter",
        "pidfd_open",
    }


def test_capabilities_table() -> None:
    assert sc.CAPS["CAP_CHOWN"] == 0
    assert sc.CAPS["CAP_SYS_ADMIN"] == 21
    assert sc.CAPS["CAP_SETFCAP"] == 31
    assert sc.CAPS["CAP_MAC_OVERRIDE"] == 32
    assert sc.CAPS["CAP_CHECKPOINT_RESTORE"] == 40
    assert sorted(sc.CAPS.values()) == list(range(41))
    assert sc.CAP_LAST_KNOWN == 40


def test_cap_mask_and_name() -> None:
    assert sc.cap_mask([]) == 0
    assert sc.cap_mask(["CAP_CHOWN", "CAP_KILL", "CAP_BPF"]) == 1 | 1 << 5 | 1 << 39
    assert sc.cap_name(21) == "CAP_SYS_ADMIN"
    assert sc.cap_name(63) == "capability 63"
    with pytest.raises(ConfigError, match="unknown capability: CAP_NOPE"):
        sc.cap_mask(["CAP_CHOWN", "CAP_NOPE"])


def test_namespace_flags_follow_the_oci_names() -> None:
    assert set(sc.NAMESPACE_FLAGS) == {
        "pid",
        "network",
        "mount",
        "ipc",
        "uts",
        "user",
        "cgroup",
        "time",
    }
    flags = list(sc.NAMESPACE_FLAGS.values())
    assert len(set(flags)) == len(flags)
    assert all(f & (f - 1) == 0 for f in flags)  # one bit each
    assert sc.NAMESPACE_FLAGS["mount"] == 0x20000
    assert sc.namespace_names(sc.CLONE_NEWNS | sc.CLONE_NEWUTS) == "mount,uts"
    assert sc.namespace_names(0) == "0x0"


def test_mount_flags() -> None:
    assert (sc.MS_BIND, sc.MS_REC, sc.MS_PRIVATE, sc.MS_SLAVE) == (4096, 16384, 262144, 524288)
    assert sc.MS_REC | sc.MS_PRIVATE == 0x44000
    assert sc.MS_PROPAGATION == sc.MS_SHARED | sc.MS_SLAVE | sc.MS_PRIVATE | sc.MS_UNBINDABLE
    assert sc.MNT_DETACH == 2


def test_rlimits_and_bpf_length() -> None:
    assert sc.RLIMITS["RLIMIT_NOFILE"] == 7
    assert sc.rlimit_name(7) == "RLIMIT_NOFILE"
    assert sc.rlimit_name(99) == "resource 99"
    assert sc.bpf_instruction_count(bytes(16)) == 2
    for bad in (b"", bytes(7), bytes(8 * 4097)):
        with pytest.raises(ConfigError, match="bad BPF program"):
            sc.bpf_instruction_count(bad)


def test_mount_object() -> None:
    assert sc.mount_object(None, "/x") == "/x"
    assert sc.mount_object("tmpfs", "/x") == "tmpfs on /x"


def test_importing_is_cheap() -> None:
    # The runtime CLI imports these on every invocation: no ctypes (loaded on first kernel call)
    # and no typing/dataclasses from these modules themselves (the packages above them are
    # imported first, so that this test does not depend on what they import).
    code = (
        "import sys, reference, reference.errors; before = set(sys.modules);"
        "import reference.linux.libc, reference.linux.procfs, reference.linux.fake;"
        "print(sorted({'ctypes', 'typing', 'dataclasses'} & (set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
