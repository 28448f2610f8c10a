"""The one exception tree of the reference runtime.

Every error names what failed and the object it failed on (a path, a name, an id, a field), so
that a CLI can print it as-is and exit non-zero. CLIs catch `RefError` only; anything else is a bug.
"""

from __future__ import annotations


class RefError(Exception):
    """Base of every error the reference runtime raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, obj: str | None = None) -> None:
        self.obj = obj
        super().__init__(f"{message}: {obj}" if obj else message)


class ConfigError(RefError):
    """Invalid user input: a config file, a spec field, a flag. `obj` names the field."""


class NotFoundError(RefError):
    """A named object (container, image, network, cgroup, file) does not exist."""


class ConflictError(RefError):
    """An object with that name or id already exists."""


class StateError(RefError):
    """The object is in the wrong state for the operation (e.g. `start` on a running container)."""


class KernelError(RefError):
    """A syscall or kernel interface failed; carries the errno and the operation."""

    def __init__(self, op: str, errno: int, *, obj: str | None = None) -> None:
        import os

        self.op = op
        self.errno = errno
        super().__init__(f"{op} failed: {os.strerror(errno)} (errno {errno})", obj=obj)


class CgroupError(RefError):
    """A cgroup could not be created, configured, joined or removed. `obj` is the path."""


class UnsupportedError(RefError):
    """A feature the spec allows but this runtime or host does not support."""
