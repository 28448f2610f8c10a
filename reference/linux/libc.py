"""`LinuxSyscall`: the `Syscall` protocol implemented on the C library through ctypes.

Python 3.11 has no os.unshare/os.setns (3.12 adds them) and no mount, pivot_root, capset or
seccomp at all, so those go through ctypes. Where the os module already wraps a call (chroot,
mknod, setgroups, setres[ug]id, pidfd_open) it is used: same kernel call, fewer moving parts.

ctypes is imported and libc loaded on the first call, not at import: importing ctypes costs
~4 ms, and most runtime CLI invocations (state, kill, delete) never make these calls.

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
    import ctypes
    from collections.abc import Sequence

    from reference.linux.syscall import StrPath

# Calls made through syscall(2) by number: glibc has no seccomp wrapper, and its pivot_root symbol
# is declared in no header (not API). The numbers are per architecture; only the one this runtime
# is tested on is listed, and any other machine is refused by name rather than making a wrong call.
_SYSCALL_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": {"pivot_root": 155, "seccomp": 317},
}

# capget/capset header version for 64-bit capability sets (two 32-bit data structs).
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_lib: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    """The C library, loaded once, with argument types for the non-trivial signatures."""
    global _lib
    if _lib is None:
        import ctypes

        lib = ctypes.CDLL(None, use_errno=True)
        c_str, c_int, c_ulong = ctypes.c_char_p, ctypes.c_int, ctypes.c_ulong
        lib.mount.argtypes = [c_str, c_str, c_str, c_ulong, c_str]
        lib.umount2.argtypes = [c_str, c_int]
        lib.unshare.argtypes = [c_int]
        lib.setns.argtypes = [c_int, c_int]
        lib.sethostname.argtypes = [c_str, ctypes.c_size_t]
        lib.setdomainname.argtypes = [c_str, ctypes.c_size_t]
        # prctl is variadic; passing plain ints would leave the upper halves of the 64-bit
        # argument registers undefined, and the kernel rejects non-zero unused arguments.
        lib.prctl.argtypes = [c_int, c_ulong, c_ulong, c_ulong, c_ulong]
        lib.personality.argtypes = [c_ulong]
        lib.syscall.restype = ctypes.c_long
        _lib = lib
    return _lib


def _check(ret: int, op: str, obj: str) -> int:
    if ret < 0:
        import ctypes

        raise KernelError(op, ctypes.get_errno(), obj=obj)
    return ret


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
        import ctypes

        nr = self._nr("pivot_root")
        new, old = ctypes.c_char_p(os.fsencode(new_root)), ctypes.c_char_p(os.fsencode(put_old))
        ret = _libc().syscall(ctypes.c_long(nr), new, old)
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
        import ctypes

        name = rlimit_name(resource)
        if not (0 <= soft <= RLIM_INFINITY and 0 <= hard <= RLIM_INFINITY):
            raise ConfigError(f"rlimit out of range (soft {soft}, hard {hard})", obj=name)
        limits = (ctypes.c_uint64 * 2)(soft, hard)
        # setrlimit64 takes 64-bit limits on every architecture, unlike setrlimit's rlim_t.
        _check(_libc().setrlimit64(ctypes.c_int(resource), limits), "setrlimit", name)

    def set_no_new_privs(self) -> None:
        _check(_libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl", "PR_SET_NO_NEW_PRIVS")

    def get_capabilities(self, pid: int = 0) -> tuple[int, int, int]:
        import ctypes

        header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, pid)
        data = (ctypes.c_uint32 * 6)()  # {effective, permitted, inheritable} x {low, high} word
        _check(_libc().capget(header, data), "capget", f"pid {pid}")
        effective, permitted, inheritable = (data[i] | data[i + 3] << 32 for i in range(3))
        return effective, permitted, inheritable

    def set_capabilities(self, effective: int, permitted: int, inheritable: int) -> None:
        import ctypes

        low, high = 0xFFFFFFFF, 32
        header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
        sets = (effective, permitted, inheritable)
        data = (ctypes.c_uint32 * 6)(*(s & low for s in sets), *((s >> high) & low for s in sets))
        obj = f"effective {effective:#x}, permitted {permitted:#x}, inheritable {inheritable:#x}"
        _check(_libc().capset(header, data), "capset", obj)

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
        import ctypes
        import struct

        count = bpf_instruction_count(program)
        nr = self._nr("seccomp")
        insns = ctypes.create_string_buffer(program, len(program))
        # struct sock_fprog { unsigned short len; struct sock_filter *filter; } (native layout)
        fprog = ctypes.create_string_buffer(struct.pack("@HP", count, ctypes.addressof(insns)))
        op = ctypes.c_long(SECCOMP_SET_MODE_FILTER)
        ret: int = _libc().syscall(ctypes.c_long(nr), op, ctypes.c_long(flags), fprog)
        return _check(ret, "seccomp(SECCOMP_SET_MODE_FILTER)", f"{count} instructions")

    def pidfd_open(self, pid: int, flags: int = 0) -> int:
        # os.pidfd_open (3.9+) makes the same syscall and needs no per-architecture number.
        try:
            return os.pidfd_open(pid, flags)
        except OSError as e:
            raise _os_error("pidfd_open", e, f"pid {pid}") from None
