"""Fakes shared by the refrun unit tests: a kernel with a host-like bounding set, and host IO
that records into the same call list, so one list shows the whole init sequence in order."""

from __future__ import annotations

from reference.linux.fake import RecordingSyscall
from reference.linux.syscall import CAPS, PR_CAPBSET_READ

CAP_SYS_RESOURCE = CAPS["CAP_SYS_RESOURCE"]


class HostLikeSyscall(RecordingSyscall):
    """PR_CAPBSET_READ answers like this machine: every capability but CAP_SYS_RESOURCE."""

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        super().prctl(option, arg2, arg3, arg4, arg5)
        if option == PR_CAPBSET_READ:
            return 0 if arg2 == CAP_SYS_RESOURCE else 1
        return 0


class RecordingIO:
    """reference.oci.init.hostio.InitIO that records `("io.<name>", args)` into `calls`."""

    def __init__(self, calls: list[tuple[str, tuple[object, ...]]]) -> None:
        self.calls = calls
        self.files: dict[str, str] = {}

    def _rec(self, name: str, *args: object) -> None:
        self.calls.append((f"io.{name}", args))

    def write_file(self, path: str, data: str) -> None:
        self._rec("write_file", path, data)
        self.files[path] = data

    def chdir(self, path: str) -> None:
        self._rec("chdir", path)

    def fchdir(self, fd: int) -> None:
        self._rec("fchdir", fd)

    def umask(self, mask: int) -> int:
        self._rec("umask", mask)
        return 0o022

    def setsid(self) -> None:
        self._rec("setsid")

    def chown(self, path: str, uid: int, gid: int) -> None:
        self._rec("chown", path, uid, gid)

    def loopback_up(self) -> None:
        self._rec("loopback_up")

    def exec_fifo(self, dir_fd: int) -> None:
        self._rec("exec_fifo", dir_fd)

    def close_fds(self, first: int) -> None:
        self._rec("close_fds", first)

    def execve(self, path: str, argv: list[str], env: list[str]) -> None:
        self._rec("execve", path, argv, env)


def names(calls: list[tuple[str, tuple[object, ...]]]) -> list[str]:
    return [name for name, _ in calls]
