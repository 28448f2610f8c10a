"""The kernel calls the runtime needs, as one protocol, and the constants that go with them.

Runtime logic takes a `Syscall` and never calls the kernel itself: production code passes
`reference.linux.libc.LinuxSyscall`, unit tests pass `reference.linux.fake.RecordingSyscall`.
Every method raises `reference.errors.KernelError` (carrying the errno and naming the path or name
involved) when the kernel refuses.

Importing this module is cheap on purpose (the runtime CLI runs many times per container): it
imports neither ctypes nor, at run time, typing (`typing` alone costs ~6 ms on 3.11).
"""

from __future__ import annotations

# mypy treats any name TYPE_CHECKING as typing.TYPE_CHECKING; at run time this avoids importing
# typing. Without typing, `Syscall` is a plain class at run time, which is all callers need: the
# protocol is checked statically, nothing calls isinstance() on it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    # collections.abc only for annotations: importing it loads all of `collections` (~3 ms).
    from collections.abc import Iterable, Sequence
    from os import PathLike
    from typing import Protocol, TypeAlias

    StrPath: TypeAlias = str | PathLike[str]
else:
    Protocol = object

# --- namespaces: clone(2) / unshare(2) / setns(2) flags -------------------------------------
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# OCI runtime-spec `linux.namespaces[].type` -> flag.
NAMESPACE_FLAGS: dict[str, int] = {
    "pid": CLONE_NEWPID,
    "network": CLONE_NEWNET,
    "mount": CLONE_NEWNS,
    "ipc": CLONE_NEWIPC,
    "uts": CLONE_NEWUTS,
    "user": CLONE_NEWUSER,
    "cgroup": CLONE_NEWCGROUP,
    "time": CLONE_NEWTIME,
}

# --- mount(2) flags ---------------------------------------------------------------------------
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_POSIXACL = 1 << 16
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
# The propagation-type flags: mount(2) must get exactly one of them (optionally with MS_REC).
MS_PROPAGATION = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE

# --- umount2(2) flags -------------------------------------------------------------------------
MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

# --- prctl(2) options the runtime uses ---------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_GET_KEEPCAPS = 7
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_LOWER = 3
PR_CAP_AMBIENT_CLEAR_ALL = 4

# --- personality(2) -----------------------------------------------------------------------------
PER_LINUX = 0x0000
PER_LINUX32 = 0x0008
PERSONALITY_QUERY = 0xFFFFFFFF  # returns the current persona without changing it
# OCI runtime-spec `linux.personality.domain` -> persona.
PERSONALITY_DOMAINS: dict[str, int] = {"LINUX": PER_LINUX, "LINUX32": PER_LINUX32}

# --- seccomp(2) ---------------------------------------------------------------------------------
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
SECCOMP_FILTER_FLAG_LOG = 2
SECCOMP_FILTER_FLAG_SPEC_ALLOW = 4
SECCOMP_FILTER_FLAG_NEW_LISTENER = 8
SECCOMP_FILTER_FLAG_TSYNC_ESRCH = 16
SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 32
BPF_INSN_SIZE = 8  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k
BPF_MAXINSNS = 4096

# --- setrlimit(2) -------------------------------------------------------------------------------
RLIM_INFINITY = (1 << 64) - 1
# OCI runtime-spec `process.rlimits[].type` -> resource. These are the asm-generic numbers shared
# by x86_64, arm64, riscv and most others; only alpha, mips and sparc differ (not supported here).
RLIMITS: dict[str, int] = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}

# --- capabilities(7): names as OCI spells them -> bit number ------------------------------------
CAPS: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}
CAP_LAST_KNOWN = max(CAPS.values())  # the running kernel's is /proc/sys/kernel/cap_last_cap


def cap_mask(names: Iterable[str]) -> int:
    """Turn OCI capability names into a bitmask; an unknown name is a ConfigError naming it."""
    mask = 0
    for name in names:
        bit = CAPS.get(name)
        if bit is None:
            from reference.errors import ConfigError

            raise ConfigError("unknown capability", obj=name)
        mask |= 1 << bit
    return mask


def cap_name(cap: int) -> str:
    """`CAP_SYS_ADMIN` for 21; errors name capabilities this way."""
    return next((name for name, bit in CAPS.items() if bit == cap), f"capability {cap}")


def namespace_names(flags: int) -> str:
    """`mount,uts` for CLONE_NEWNS|CLONE_NEWUTS; errors name namespace sets this way."""
    return ",".join(name for name, flag in NAMESPACE_FLAGS.items() if flags & flag) or hex(flags)


def rlimit_name(resource: int) -> str:
    return next((name for name, r in RLIMITS.items() if r == resource), f"resource {resource}")


def bpf_instruction_count(program: bytes) -> int:
    """Number of sock_filter instructions in `program`; a malformed length is a ConfigError."""
    count, rest = divmod(len(program), BPF_INSN_SIZE)
    if rest or not 0 < count <= BPF_MAXINSNS:
        from reference.errors import ConfigError

        raise ConfigError(f"bad BPF program of {len(program)} bytes", obj="seccomp")
    return count


def mount_object(source: StrPath | None, target: StrPath) -> str:
    """What a failed mount names in its error: `SOURCE on TARGET`, as mount(8) prints it."""
    return f"{source} on {target}" if source is not None else str(target)


class Syscall(Protocol):
    """Every kernel call the runtime makes. Methods raise KernelError(op, errno, obj=...)."""

    # Namespaces. Python 3.12 has os.unshare/os.setns; 3.11 does not, hence this protocol.
    def unshare(self, flags: int) -> None: ...
    def setns(self, fd: int, nstype: int = 0) -> None: ...

    # Mounts and the root.
    def mount(
        self,
        source: StrPath | None,
        target: StrPath,
        fstype: str | None,
        flags: int = 0,
        data: str | None = None,
    ) -> None: ...
    def umount2(self, target: StrPath, flags: int = 0) -> None: ...
    def pivot_root(self, new_root: StrPath, put_old: StrPath) -> None: ...
    def chroot(self, path: StrPath) -> None: ...
    def mknod(self, path: StrPath, mode: int, dev: int = 0) -> None: ...

    # UTS.
    def sethostname(self, name: str) -> None: ...
    def setdomainname(self, name: str) -> None: ...

    # Process attributes.
    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        """Returns prctl's non-negative result (e.g. PR_CAPBSET_READ's 0 or 1)."""
        ...

    def personality(self, persona: int) -> int:
        """Sets the persona and returns the previous one (PERSONALITY_QUERY only reads it)."""
        ...

    def setrlimit(self, resource: int, soft: int, hard: int) -> None: ...
    def set_no_new_privs(self) -> None: ...

    # Capabilities: bitmasks (bit n = capability number n, see CAPS and cap_mask).
    def get_capabilities(self, pid: int = 0) -> tuple[int, int, int]:
        """(effective, permitted, inheritable) of `pid` (0: the calling thread)."""
        ...

    def set_capabilities(self, effective: int, permitted: int, inheritable: int) -> None: ...
    def set_ambient(self, cap: int) -> None: ...
    def clear_ambient(self) -> None: ...
    def drop_bounding(self, cap: int) -> None: ...

    # Credentials.
    def setgroups(self, gids: Sequence[int]) -> None: ...
    def setresuid(self, ruid: int, euid: int, suid: int) -> None: ...
    def setresgid(self, rgid: int, egid: int, sgid: int) -> None: ...

    # Seccomp and process handles.
    def seccomp_set_mode_filter(self, program: bytes, flags: int = 0) -> int:
        """Loads a classic-BPF program (sock_filter array as bytes); returns the listener fd
        with SECCOMP_FILTER_FLAG_NEW_LISTENER, else 0."""
        ...

    def pidfd_open(self, pid: int, flags: int = 0) -> int: ...
