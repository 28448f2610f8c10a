"""OCI hooks (config.md "POSIX-platform Hooks"): run a stage's hooks with the state on stdin.

Each hook is {path, args, env, timeout}; `args[0]` is argv[0] as in execve (the path is what
runs). A hook that fails or outlives its timeout is an error naming the stage and the path;
for poststart and poststop the spec says to warn and go on, which the caller chooses.
Hooks are kept as raw JSON dicts: that is how they are stored in the container's state, so
`start` and `delete` need not load the spec machinery to run them.
"""

from __future__ import annotations

import os
import time

from reference.errors import RefError
from reference.oci import fastjson

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see reference/records.py

# Spec stage names, in lifecycle order, with the JSON key of each.
STAGES = (
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
)


def run_hooks(stage: str, hooks: list[dict[str, object]], state: dict[str, object]) -> None:
    """Run `hooks` in order; the first failure raises RefError (obj = the hook's path)."""
    if not hooks:
        return
    data = fastjson.dumps(state).encode()
    for i, hook in enumerate(hooks):
        path = str(hook.get("path", ""))
        argv = [str(a) for a in hook.get("args") or []] or [path]  # type: ignore[attr-defined]
        env = [str(e) for e in hook.get("env") or []]  # type: ignore[attr-defined]
        timeout = hook.get("timeout")
        where = f"hooks.{stage}[{i}]"
        try:
            returncode, out, err = spawn(
                path,
                argv,
                dict(e.split("=", 1) for e in env if "=" in e),
                data,
                timeout if isinstance(timeout, int) and timeout > 0 else None,
            )
        except TimeoutError:
            raise RefError(f"{where} timed out after {timeout}s", obj=path) from None
        except OSError as e:
            raise RefError(f"{where} cannot run ({os.strerror(e.errno or 0)})", obj=path) from None
        if returncode != 0:
            detail = (err or out).decode(errors="replace").strip()
            how = (
                f"was killed by signal {-returncode}"
                if returncode < 0
                else f"exited with status {returncode}"
            )
            raise RefError(f"{where} {how}" + (f" ({detail})" if detail else ""), obj=path)


def spawn(
    path: str, argv: list[str], env: dict[str, str], data: bytes, timeout: float | None
) -> tuple[int, bytes, bytes]:
    """subprocess.run(argv, executable=path, env=env, input=data, capture_output=True,
    timeout=timeout) without `subprocess`, whose import costs ~12 ms and would be paid on every
    `create` under dockerd (its containers have a prestart hook): fork, execve and pipes.

    As with subprocess, the program gets only stdin/stdout/stderr (every other descriptor is
    closed) and SIGPIPE and SIGXFSZ back at their defaults; a failed execve is an OSError here;
    output is read until both pipes are at EOF and the program has exited; on timeout it is
    killed (SIGKILL) and reaped, and TimeoutError raised. Returns the exit status (minus the
    signal number if it was killed), stdout and stderr."""
    import select

    if TYPE_CHECKING:
        import signal as _signal
    else:
        import _signal

    (in_r, in_w), (out_r, out_w), (err_r, err_w), (x_r, x_w) = (
        _pipe_above_stdio()
        for _ in range(4)  # stdin, stdout, stderr, execve's errno
    )
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            for fd, target in ((in_r, 0), (out_w, 1), (err_w, 2)):
                os.dup2(fd, target)  # the copy is inheritable; the pipes are not (PEP 446)
            os.closerange(3, x_w)
            os.closerange(x_w + 1, 1 << 20)  # x_w is close-on-exec: its EOF says exec worked
            for sig in (_signal.SIGPIPE, _signal.SIGXFSZ):  # ignored by Python, kept by exec
                _signal.signal(sig, _signal.SIG_DFL)
            os.execve(path, argv, env)
        except OSError as e:
            os.write(x_w, str(e.errno or 0).encode())
        finally:
            os._exit(255)
    for fd in (in_r, out_w, err_w, x_w):
        os.close(fd)
    with open(x_r, "rb") as f:
        failed = f.read()
    if failed:
        os.waitpid(pid, 0)
        for fd in (in_w, out_r, err_r):
            os.close(fd)
        raise OSError(int(failed), os.strerror(int(failed)), path)
    deadline = None if timeout is None else time.monotonic() + timeout
    pidfd = os.pidfd_open(pid)  # readable once the program has exited
    outputs: dict[int, list[bytes]] = {out_r: [], err_r: []}
    poller = select.poll()
    for fd in (out_r, err_r, pidfd):
        poller.register(fd, select.POLLIN)
    if data:
        poller.register(in_w, select.POLLOUT)
    else:
        os.close(in_w)
        in_w = -1
    reading, exited = {out_r, err_r}, False
    try:
        while reading or not exited:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                os.kill(pid, _signal.SIGKILL)
                os.waitpid(pid, 0)
                raise TimeoutError(path)
            for fd, _ in poller.poll(None if left is None else left * 1000):
                if fd == pidfd:
                    exited = True
                    poller.unregister(pidfd)
                elif fd == in_w:
                    try:
                        data = data[os.write(in_w, data[:65536]) :]
                    except BrokenPipeError:
                        data = b""  # the program does not read its stdin: not an error
                    if not data:
                        poller.unregister(in_w)
                        os.close(in_w)
                        in_w = -1
                elif chunk := os.read(fd, 65536):
                    outputs[fd].append(chunk)
                else:
                    poller.unregister(fd)
                    reading.discard(fd)
        _, status = os.waitpid(pid, 0)
    finally:
        for fd in (in_w, out_r, err_r, pidfd):
            if fd >= 0:
                os.close(fd)
    return os.waitstatus_to_exitcode(status), b"".join(outputs[out_r]), b"".join(outputs[err_r])


def _pipe_above_stdio() -> tuple[int, int]:
    """os.pipe(), both ends above fd 2 even when stdio is closed: the child dup2s onto 0-2."""
    ends = list(os.pipe())
    for i, fd in enumerate(ends):
        if fd <= 2:
            import fcntl

            ends[i] = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
            os.close(fd)
    return ends[0], ends[1]


def hook_state(
    oci_version: str,
    cid: str,
    status: str,
    pid: int,
    bundle: str,
    annotations: dict[str, str],
) -> dict[str, object]:
    """The state object hooks get on stdin (runtime.md "State")."""
    state: dict[str, object] = {
        "ociVersion": oci_version,
        "id": cid,
        "status": status,
        "pid": pid,
        "bundle": bundle,
    }
    if annotations:
        state["annotations"] = annotations
    return state
