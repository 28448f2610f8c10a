"""`RecordingSyscall`: a fake kernel that records calls, so runtime logic is testable without root.

Each call appends `(method name, arguments with defaults filled in)` to `.calls`, then either
succeeds or, if `fail()` armed it, raises a KernelError like the real one (same errno, same
`obj`; its `op` is the method name), so error handling can be tested too. Failed calls are
recorded as well: tests can assert that the runtime tried a call and then stopped.
"""

from __future__ import annotations

from collections.abc import Sequence

from reference.errors import KernelError
from reference.linux.syscall import (
    CAP_LAST_KNOWN,
    PERSONALITY_QUERY,
    SECCOMP_FILTER_FLAG_NEW_LISTENER,
    bpf_instruction_count,
    cap_name,
    mount_object,
    namespace_names,
    rlimit_name,
)

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see syscall.py for why
if TYPE_CHECKING:
    from reference.linux.syscall import StrPath

Call = tuple[str, tuple[object, ...]]

_ALL_CAPS = (1 << (CAP_LAST_KNOWN + 1)) - 1


class RecordingSyscall:
    """Implements `reference.linux.syscall.Syscall`; nothing reaches the kernel."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._failures: dict[str, list[int]] = {}
        # The little state the fake keeps, so that reads reflect earlier writes.
        self.capabilities: tuple[int, int, int] = (_ALL_CAPS, _ALL_CAPS, 0)
        self.persona = 0
        self._next_fd = 1000  # fds the fake hands out; high so they never alias real ones

    # --- test-side API ---------------------------------------------------------------------
    def fail(self, name: str, errno: int, *, times: int = 1) -> None:
        """Make the next `times` calls of method `name` raise KernelError with `errno`."""
        if not callable(getattr(self, name, None)) or name.startswith("_"):
            raise AttributeError(f"RecordingSyscall has no call {name!r}")
        self._failures.setdefault(name, []).extend([errno] * times)

    def names(self) -> list[str]:
        """The method names called, in order."""
        return [name for name, _ in self.calls]

    def args_of(self, name: str) -> list[tuple[object, ...]]:
        """The arguments of every call of `name`, in order."""
        return [args for called, args in self.calls if called == name]

    def _record(self, name: str, args: tuple[object, ...], obj: str) -> None:
        self.calls.append((name, args))
        pending = self._failures.get(name)
        if pending:
            raise KernelError(name, pending.pop(0), obj=obj)

    def _new_fd(self) -> int:
        self._next_fd += 1
        return self._next_fd

    # --- the Syscall protocol ------------------------------------------------------------------
    def unshare(self, flags: int) -> None:
        self._record("unshare", (flags,), namespace_names(flags))

    def setns(self, fd: int, nstype: int = 0) -> None:
        self._record("setns", (fd, nstype), f"fd {fd}")

    def mount(
        self,
        source: StrPath | None,
        target: StrPath,
        fstype: str | None,
        flags: int = 0,
        data: str | None = None,
    ) -> None:
        args = (source, target, fstype, flags, data)
        self._record("mount", args, mount_object(source, target))

    def umount2(self, target: StrPath, flags: int = 0) -> None:
        self._record("umount2", (target, flags), str(target))

    def pivot_root(self, new_root: StrPath, put_old: StrPath) -> None:
        self._record("pivot_root", (new_root, put_old), f"{new_root} (put_old {put_old})")

    def chroot(self, path: StrPath) -> None:
        self._record("chroot", (path,), str(path))

    def mknod(self, path: StrPath, mode: int, dev: int = 0) -> None:
        self._record("mknod", (path, mode, dev), str(path))

    def sethostname(self, name: str) -> None:
        self._record("sethostname", (name,), name)

    def setdomainname(self, name: str) -> None:
        self._record("setdomainname", (name,), name)

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        self._record("prctl", (option, arg2, arg3, arg4, arg5), f"option {option}")
        return 0

    def personality(self, persona: int) -> int:
        self._record("personality", (persona,), hex(persona))
        previous = self.persona
        if persona != PERSONALITY_QUERY:
            self.persona = persona
        return previous

    def setrlimit(self, resource: int, soft: int, hard: int) -> None:
        self._record("setrlimit", (resource, soft, hard), rlimit_name(resource))

    def set_no_new_privs(self) -> None:
        self._record("set_no_new_privs", (), "PR_SET_NO_NEW_PRIVS")

    def get_capabilities(self, pid: int = 0) -> tuple[int, int, int]:
        self._record("get_capabilities", (pid,), f"pid {pid}")
        return self.capabilities

    def set_capabilities(self, effective: int, permitted: int, inheritable: int) -> None:
        obj = f"effective {effective:#x}, permitted {permitted:#x}, inheritable {inheritable:#x}"
        self._record("set_capabilities", (effective, permitted, inheritable), obj)
        self.capabilities = (effective, permitted, inheritable)

    def set_ambient(self, cap: int) -> None:
        self._record("set_ambient", (cap,), cap_name(cap))

    def clear_ambient(self) -> None:
        self._record("clear_ambient", (), "PR_CAP_AMBIENT_CLEAR_ALL")

    def drop_bounding(self, cap: int) -> None:
        self._record("drop_bounding", (cap,), cap_name(cap))

    def setgroups(self, gids: Sequence[int]) -> None:
        self._record("setgroups", (tuple(gids),), "groups " + ",".join(map(str, gids)))

    def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        self._record("setresuid", (ruid, euid, suid), f"uid {ruid}/{euid}/{suid}")

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        self._record("setresgid", (rgid, egid, sgid), f"gid {rgid}/{egid}/{sgid}")

    def seccomp_set_mode_filter(self, program: bytes, flags: int = 0) -> int:
        count = bpf_instruction_count(program)  # malformed programs fail here as for real
        self._record("seccomp_set_mode_filter", (program, flags), f"{count} instructions")
        return self._new_fd() if flags & SECCOMP_FILTER_FLAG_NEW_LISTENER else 0

    def pidfd_open(self, pid: int, flags: int = 0) -> int:
        self._record("pidfd_open", (pid, flags), f"pid {pid}")
        return self._new_fd()
