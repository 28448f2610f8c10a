"""`LinuxSyscall`: the `Syscall` protocol implemented on the C library through ctypes.

Python 3.11 has no os.unshare/os.setns (3.12 adds them) and no mount, pivot_root, capset or
seccomp at all, so those go through ctypes. Where the os module already wraps a call (chroot,
mknod, setgroups, setres[ug]id, pidfd_open) it is used: same kernel call, fewer moving parts.

The C library is loaded on the first call, not at import, and through `_ctypes`, the C half
of ctypes, rather than the `ctypes` package: the package's Python half (type zoo, struct and
endian helpers, loaders for every platform) costs ~6 ms to import where the handful of types and
functions below cost ~1.5 ms, and `create`, `run` and `exec` pay it on their critical path. Most
runtime CLI invocations (state, kill, delete) never make these calls.

Several of these calls act on the calling thread only (unshare of some namespaces, setns,
capset, seccomp without TSYNC); the runtime makes them in a single-threaded forked child.
"""

from __future__ import annotations

import os

from reference.errors import ConfigError, KernelError, UnsupportedError
from reference.linux.syscall import (
    PR_CAP_AMBIENT,
    PR_CAP_AMBIENT_CLEAR_ALL,
    PR_CAP_AMBIENT_RAISE,
    PR_CAPBSET_DROP,
    PR_SET_NO_NEW_PRIVS,
    RLIM_INFINITY,
    SECCOMP_SET_MODE_FILTER,
    bpf_instruction_count,
    cap_name,
    mount_object,
    namespace_names,
    rlimit_name,
)

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see syscall.py for why
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from reference.linux.syscall import StrPath

# Calls made through syscall(2) by number: glibc has no seccomp wrapper, and its pivot_root symbol
# is declared in no header (not API). The numbers are per architecture; only the one this runtime
# is tested on is listed, and any other machine is refused by name rather than making a wrong call.
_SYSCALL_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": {"pivot_root": 155, "seccomp": 317},
}

# capget/capset header version for 64-bit capability sets (two 32-bit data structs).
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _C:
    """The C library's functions used here, with ctypes' C types built on `_ctypes` directly
    (what ctypes.CDLL(None, use_errno=True) and ctypes.c_int & co. are, minus the package)."""

    def __init__(self) -> None:
        import _ctypes

        class c_int(_ctypes._SimpleCData):  # type: ignore[type-arg]
            _type_ = "i"

        class c_long(_ctypes._SimpleCData):  # type: ignore[type-arg]
            _type_ = "l"

        class c_ulong(_ctypes._SimpleCData):  # type: ignore[type-arg]
            _type_ = "L"  # also size_t on Linux (LP64 and ILP32 alike)

        class c_uint32(_ctypes._SimpleCData):  # type: ignore[type-arg]
            _type_ = "I"

        class c_uint64(_ctypes._SimpleCData):  # type: ignore[type-arg]
            _type_ = "Q"

        class c_char(_ctypes._SimpleCData):  # type: ignore[type-arg]
            _type_ = "c"

        class c_char_p(_ctypes._SimpleCData):  # type: ignore[type-arg]
            _type_ = "z"

        class Function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = c_int

        # The program's own symbols, libc's among them (_ctypes adds RTLD_NOW to the mode).
        handle = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]  # NULL: dlopen(3) allows it

        def function(name: str, argtypes: list[Any] | None, restype: Any = None) -> Any:
            f = Function(_ctypes.dlsym(handle, name))
            if argtypes is not None:
                f.argtypes = argtypes
            if restype is not None:
                f.restype = restype
            return f

        self.c_int, self.c_long, self.c_ulong, self.c_char_p = c_int, c_long, c_ulong, c_char_p
        self.c_uint32, self.c_uint64, self.c_char = c_uint32, c_uint64, c_char
        self.addressof = _ctypes.addressof
        self.get_errno = _ctypes.get_errno
        c_str = c_char_p
        self.mount = function("mount", [c_str, c_str, c_str, c_ulong, c_str])
        self.umount2 = function("umount2", [c_str, c_int])
        self.unshare = function("unshare", [c_int])
        self.setns = function("setns", [c_int, c_int])
        self.sethostname = function("sethostname", [c_str, c_ulong])
        self.setdomainname = function("setdomainname", [c_str, c_ulong])
        # prctl is variadic; passing plain ints would leave the upper halves of the 64-bit
        # argument registers undefined, and the kernel rejects non-zero unused arguments.
        self.prctl = function("prctl", [c_int, c_ulong, c_ulong, c_ulong, c_ulong])
        self.personality = function("personality", [c_ulong])
        self.syscall = function("syscall", None, c_long)
        self.setrlimit64 = function("setrlimit64", None)
        self.capget = function("capget", None)
        self.capset = function("capset", None)
        self.socket = function("socket", [c_int, c_int, c_int])
        self.ioctl = function("ioctl", None)
        self.close = function("close", [c_int])

    def string_buffer(self, data: bytes) -> Any:
        """ctypes.create_string_buffer(data, len(data)): the bytes, NULs included."""
        buf: Any = (self.c_char * len(data))()
        buf.raw = data
        return buf


_lib: _C | None = None


def _libc() -> _C:
    """The C library, loaded once, with argument types for the non-trivial signatures."""
    global _lib
    if _lib is None:
        _lib = _C()
    return _lib


def _check(ret: int, op: str, obj: str) -> int:
    if ret < 0:
        raise KernelError(op, _libc().get_errno(), obj=obj)
    return ret


_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_AF_INET, _SOCK_DGRAM, _SOCK_CLOEXEC = 2, 2, 0o2000000


def link_up(name: str) -> None:
    """`ip link set NAME up` in the caller's network namespace (SIOCGIFFLAGS/SIOCSIFFLAGS on
    a datagram socket), through the C library: the container init needs it for lo, and
    `_socket` plus `fcntl` would cost it two extension-module loads on its critical path."""
    c = _libc()
    raw = os.fsencode(name)
    if len(raw) >= 16:  # IFNAMSIZ
        raise ConfigError("interface name too long", obj=name)
    # struct ifreq: char ifr_name[16], then a union whose first member here is short flags.
    req = c.string_buffer(raw.ljust(16, b"\0") + bytes(24))
    fd = _check(c.socket(_AF_INET, _SOCK_DGRAM | _SOCK_CLOEXEC, 0), "socket", name)
    try:
        _check(c.ioctl(c.c_int(fd), c.c_ulong(_SIOCGIFFLAGS), req), "ioctl(SIOCGIFFLAGS)", name)
        flags = int.from_bytes(req.raw[16:18], "little") | _IFF_UP
        req.raw = raw.ljust(16, b"\0") + flags.to_bytes(2, "little") + bytes(22)
        _check(c.ioctl(c.c_int(fd), c.c_ulong(_SIOCSIFFLAGS), req), "ioctl(SIOCSIFFLAGS)", name)
    finally:
        c.close(fd)


def _os_error(op: str, err: OSError, obj: str) -> KernelError:
    return KernelError(op, err.errno or 0, obj=obj)


class LinuxSyscall:
    """The real kernel. `machine` overrides os.uname().machine (for tests of the refusal)."""

    def __init__(self, machine: str | None = None) -> None:
        self.machine = machine or os.uname().machine

    def _nr(self, name: str) -> int:
        numbers = _SYSCALL_NUMBERS.get(self.machine)
        if numbers is None:
            raise UnsupportedError(f"{name}: no syscall number known for machine", obj=self.machine)
        return numbers[name]

    def unshare(self, flags: int) -> None:
        _check(_libc().unshare(flags), "unshare", namespace_names(flags))

    def setns(self, fd: int, nstype: int = 0) -> None:
        if _libc().setns(fd, nstype) < 0:
            try:  # name the namespace, e.g. "fd 5 (net:[4026531840])"
                obj = f"fd {fd} ({os.readlink(f'/proc/self/fd/{fd}')})"
            except OSError:
                obj = f"fd {fd}"
            _check(-1, "setns", obj)

    def mount(
        self,
        source: StrPath | None,
        target: StrPath,
        fstype: str | None,
        flags: int = 0,
        data: str | None = None,
    ) -> None:
        ret = _libc().mount(
            None if source is None else os.fsencode(source),
            os.fsencode(target),
            None if fstype is None else fstype.encode(),
            flags,
            None if data is None else data.encode(),
        )
        _check(ret, "mount", mount_object(source, target))

    def umount2(self, target: StrPath, flags: int = 0) -> None:
        _check(_libc().umount2(os.fsencode(target), flags), "umount2", str(target))

    def pivot_root(self, new_root: StrPath, put_old: StrPath) -> None:
        c = _libc()
        nr = self._nr("pivot_root")
        new, old = c.c_char_p(os.fsencode(new_root)), c.c_char_p(os.fsencode(put_old))
        ret = c.syscall(c.c_long(nr), new, old)
        _check(ret, "pivot_root", f"{new_root} (put_old {put_old})")

    def chroot(self, path: StrPath) -> None:
        try:
            os.chroot(path)
        except OSError as e:
            raise _os_error("chroot", e, str(path)) from None

    def mknod(self, path: StrPath, mode: int, dev: int = 0) -> None:
        try:
            os.mknod(path, mode, dev)
        except OSError as e:
            raise _os_error("mknod", e, str(path)) from None

    def sethostname(self, name: str) -> None:
        raw = name.encode()
        _check(_libc().sethostname(raw, len(raw)), "sethostname", name)

    def setdomainname(self, name: str) -> None:
        raw = name.encode()
        _check(_libc().setdomainname(raw, len(raw)), "setdomainname", name)

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        ret: int = _libc().prctl(option, arg2, arg3, arg4, arg5)
        return _check(ret, "prctl", f"option {option}")

    def personality(self, persona: int) -> int:
        ret: int = _libc().personality(persona)
        return _check(ret, "personality", hex(persona))

    def setrlimit(self, resource: int, soft: int, hard: int) -> None:
        c = _libc()
        name = rlimit_name(resource)
        if not (0 <= soft <= RLIM_INFINITY and 0 <= hard <= RLIM_INFINITY):
            raise ConfigError(f"rlimit out of range (soft {soft}, hard {hard})", obj=name)
        limits = (c.c_uint64 * 2)(soft, hard)
        # setrlimit64 takes 64-bit limits on every architecture, unlike setrlimit's rlim_t.
        _check(c.setrlimit64(c.c_int(resource), limits), "setrlimit", name)

    def set_no_new_privs(self) -> None:
        _check(_libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl", "PR_SET_NO_NEW_PRIVS")

    def get_capabilities(self, pid: int = 0) -> tuple[int, int, int]:
        c = _libc()
        header = (c.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, pid)
        data = (c.c_uint32 * 6)()  # {effective, permitted, inheritable} x {low, high} word
        _check(c.capget(header, data), "capget", f"pid {pid}")
        effective, permitted, inheritable = (data[i] | data[i + 3] << 32 for i in range(3))
        return effective, permitted, inheritable

    def set_capabilities(self, effective: int, permitted: int, inheritable: int) -> None:
        c = _libc()
        low, high = 0xFFFFFFFF, 32
        header = (c.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
        sets = (effective, permitted, inheritable)
        data = (c.c_uint32 * 6)(*(s & low for s in sets), *((s >> high) & low for s in sets))
        obj = f"effective {effective:#x}, permitted {permitted:#x}, inheritable {inheritable:#x}"
        _check(c.capset(header, data), "capset", obj)

    def set_ambient(self, cap: int) -> None:
        ret = _libc().prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0)
        _check(ret, "prctl(PR_CAP_AMBIENT_RAISE)", cap_name(cap))

    def clear_ambient(self) -> None:
        ret = _libc().prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        _check(ret, "prctl", "PR_CAP_AMBIENT_CLEAR_ALL")

    def drop_bounding(self, cap: int) -> None:
        _check(
            _libc().prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "prctl(PR_CAPBSET_DROP)", cap_name(cap)
        )

    def setgroups(self, gids: Sequence[int]) -> None:
        try:
            os.setgroups(list(gids))
        except OSError as e:
            raise _os_error("setgroups", e, "groups " + ",".join(map(str, gids))) from None

    def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        try:
            os.setresuid(ruid, euid, suid)
        except OSError as e:
            raise _os_error("setresuid", e, f"uid {ruid}/{euid}/{suid}") from None

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        try:
            os.setresgid(rgid, egid, sgid)
        except OSError as e:
            raise _os_error("setresgid", e, f"gid {rgid}/{egid}/{sgid}") from None

    def seccomp_set_mode_filter(self, program: bytes, flags: int = 0) -> int:
        import struct

        c = _libc()
        count = bpf_instruction_count(program)
        nr = self._nr("seccomp")
        insns = c.string_buffer(program)
        # struct sock_fprog { unsigned short len; struct sock_filter *filter; } (native layout)
        fprog = c.string_buffer(struct.pack("@HP", count, c.addressof(insns)))
        op = c.c_long(SECCOMP_SET_MODE_FILTER)
        ret: int = c.syscall(c.c_long(nr), op, c.c_long(flags), fprog)
        return _check(ret, "seccomp(SECCOMP_SET_MODE_FILTER)", f"{count} instructions")

    def pidfd_open(self, pid: int, flags: int = 0) -> int:
        # os.pidfd_open (3.9+) makes the same syscall and needs no per-architecture number.
        try:
            return os.pidfd_open(pid, flags)
        except OSError as e:
            raise _os_error("pidfd_open", e, f"pid {pid}") from None
