"""The pipes between refrun and the processes it forks to build a container.

Messages are one JSON object per line, `{"t": TYPE, ...}`. Both pipes are close-on-exec, so the
container's execve closes the child's ends: the parent reading EOF after "ready" (or, for exec,
after the child's pid) knows the process is running the user's program. Errors cross as
`{"t": "error", "type": class name, "msg": ..., "obj": ...}` and are raised again in the parent
as the same RefError class, so `refrun create` prints the child's message naming the field.
"""

from __future__ import annotations

import os

from reference import errors
from reference.oci import fastjson


class Channel:
    """One end of a pipe pair: reads from `rfd`, writes to `wfd`."""

    __slots__ = ("_buf", "rfd", "wfd")

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self._buf = b""

    def send(self, kind: str, **fields: object) -> None:
        data = (fastjson.dumps({"t": kind, **fields}) + "\n").encode()
        while data:
            data = data[os.write(self.wfd, data) :]

    def recv(self) -> dict[str, object] | None:
        """The next message, or None at EOF (every writer closed or exec'ed)."""
        while b"\n" not in self._buf:
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        msg = fastjson.loads(line.decode())
        if not isinstance(msg, dict):
            raise errors.RefError("malformed message from the container process", obj=repr(line))
        return msg

    def expect(self, kind: str) -> dict[str, object]:
        """The next message, which must be `kind`; an error message is raised as itself."""
        msg = self.recv()
        if msg is None:
            raise errors.RefError(f"container process exited while refrun waited for {kind!r}")
        if msg.get("t") == "error":
            raise decode_error(msg)
        if msg.get("t") != kind:
            raise errors.RefError(f"expected {kind!r} from the container process, got {msg!r}")
        return msg

    def close(self) -> None:
        for fd in (self.rfd, self.wfd):
            try:
                os.close(fd)
            except OSError:
                continue


def pipe_pair() -> tuple[Channel, Channel]:
    """(parent end, child end). Both ends exist in both processes after fork; each side closes
    the other's with `close_other`."""
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    return Channel(to_parent_r, to_child_w), Channel(to_child_r, to_parent_w)


def encode_error(e: BaseException) -> dict[str, object]:
    if isinstance(e, errors.KernelError):
        return {"type": "KernelError", "op": e.op, "errno": e.errno, "obj": e.obj}
    if isinstance(e, errors.RefError):
        text = str(e)
        suffix = f": {e.obj}" if e.obj else ""
        msg = text[: len(text) - len(suffix)] if suffix and text.endswith(suffix) else text
        return {"type": type(e).__name__, "msg": msg, "obj": e.obj, "exit": e.exit_code}
    # A bug in refrun: keep the Python exception's name so it can be found.
    return {"type": "RefError", "msg": f"internal error: {type(e).__name__}: {e}", "obj": None}


def decode_error(msg: dict[str, object]) -> errors.RefError:
    obj = msg.get("obj")
    obj = str(obj) if obj is not None else None
    if msg.get("type") == "KernelError":
        errno = msg.get("errno")
        return errors.KernelError(
            str(msg.get("op")), errno if isinstance(errno, int) else 0, obj=obj
        )
    cls = getattr(errors, str(msg.get("type")), errors.RefError)
    if not (isinstance(cls, type) and issubclass(cls, errors.RefError)):
        cls = errors.RefError
    err: errors.RefError = cls(str(msg.get("msg", "")), obj=obj)
    code = msg.get("exit")
    if isinstance(code, int) and code != err.exit_code:
        err.exit_code = code  # e.g. 127 for an executable that is not there
    return err
