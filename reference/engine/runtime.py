"""The OCI runtime as refd drives it: a runc-compatible CLI (refrun by default, runc, or any
`runtimes` entry), with a private --root per runtime under the exec-root and --log in the
bundle, whose last error line becomes the error refd reports (as containerd does with runc).

Every child refd spawns goes through `spawn`, which records its PID: refd is a child
subreaper, so the monitor's sweep reaps orphans that get reparented to it, and it must never
reap a child whose exit status a `Popen.wait()` is still waiting for.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from reference.engine.config import Runtime
from reference.errors import NotFoundError, RefError

CALL_TIMEOUT = 60.0
_children_lock = threading.Lock()
_children: set[int] = set()


def spawn(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Popen, with the child's PID registered until `reap` (see module doc)."""
    with _children_lock:
        proc = subprocess.Popen(list(argv), **kwargs)
        _children.add(proc.pid)
    return proc


def reap(proc: subprocess.Popen[bytes], timeout: float | None = None) -> int:
    try:
        return proc.wait(timeout)
    finally:
        if proc.returncode is not None:
            with _children_lock:
                _children.discard(proc.pid)


def spawned() -> tuple[threading.Lock, set[int]]:
    """The lock and the live set, for the orphan sweep (it holds the lock while it reaps)."""
    return _children_lock, _children


class RuntimeFailure(RefError):
    """A runtime call failed; the message is the runtime's own last error."""


class OciRuntime:
    def __init__(self, name: str, runtime: Runtime, state_root: Path) -> None:
        self.name = name
        self.path = runtime.path
        self.extra = list(runtime.args)
        self.root = state_root

    def _argv(self, log: Path | None, *args: str) -> list[str]:
        argv = [self.path, *self.extra, "--root", str(self.root)]
        if log is not None:
            argv += ["--log", str(log), "--log-format", "json"]
        return [*argv, *args]

    def call(
        self,
        *args: str,
        log: Path | None = None,
        stdout: int | IO[bytes] | None = None,
        stderr: int | IO[bytes] | None = None,
        input_data: bytes | None = None,
        timeout: float = CALL_TIMEOUT,
    ) -> bytes:
        """Run one verb; RuntimeFailure with the runtime's message when it fails."""
        capture_out = stdout is None
        capture_err = stderr is None
        proc = spawn(
            self._argv(log, *args),
            stdin=subprocess.PIPE if input_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_out else stdout,
            stderr=subprocess.PIPE if capture_err else stderr,
            close_fds=True,
        )
        try:
            out, err = proc.communicate(input_data, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            reap(proc)
            raise RuntimeFailure(f"{self.name} {args[0]} timed out after {timeout:.0f}s") from None
        code = reap(proc)
        if code != 0:
            message = last_error(log) or (err or b"").decode(errors="replace").strip()
            message = message or f"exit status {code}"
            if "does not exist" in message or "not found" in message.lower():
                raise NotFoundError(f"{self.name} {args[0]}: {message}")
            raise RuntimeFailure(f"{self.name} {args[0]} failed: {message}")
        return out or b""

    # -- verbs ----------------------------------------------------------------------------
    def create(self, cid: str, bundle: Path, pid_file: Path, stdout: int, stderr: int) -> None:
        self.call(
            "create",
            "--bundle",
            str(bundle),
            "--pid-file",
            str(pid_file),
            cid,
            log=bundle / "log.json",
            stdout=stdout,
            stderr=stderr,
        )

    def start(self, cid: str, bundle: Path) -> None:
        self.call("start", cid, log=bundle / "log.json")

    def kill(self, cid: str, signal: str = "KILL", *, all_processes: bool = False) -> None:
        self.call("kill", *(["--all"] if all_processes else []), cid, signal)

    def delete(self, cid: str) -> None:
        """`delete --force`: kills what is left and removes state and cgroup; a container the
        runtime does not know is already deleted. runc, crun and refrun keep a container's
        state in <root>/<id>: without that directory there is nothing to delete, and no
        runtime process is started for it (`rm` after an exit whose cleanup deleted it)."""
        if not (self.root / cid).exists():
            return
        with contextlib.suppress(NotFoundError):
            self.call("delete", "--force", cid)

    def pause(self, cid: str) -> None:
        self.call("pause", cid)

    def resume(self, cid: str) -> None:
        self.call("resume", cid)

    def update(self, cid: str, resources: dict[str, Any]) -> None:
        self.call("update", "-r", "-", cid, input_data=json.dumps(resources).encode())

    def state(self, cid: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.call("state", cid))
        return document

    def exec_argv(self, cid: str, process_file: Path, pid_file: Path | None = None) -> list[str]:
        extra = ["--pid-file", str(pid_file)] if pid_file else []
        return self._argv(None, "exec", "--process", str(process_file), *extra, cid)

    def features(self) -> dict[str, Any]:
        try:
            document: dict[str, Any] = json.loads(self.call("features", timeout=15))
        except (RefError, ValueError):
            return {}
        return document


def last_error(log: Path | None) -> str:
    """The msg of the last error-level line of a runtime's JSON log."""
    if log is None:
        return ""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") in ("error", "fatal"):
            return str(record.get("msg", ""))
    return ""


def read_pid(pid_file: Path) -> int:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError) as e:
        raise RuntimeFailure(f"the runtime wrote no usable pid file: {e}", obj=str(pid_file)) from e


def proc_start_time(pid: int) -> int:
    """Field 22 of /proc/PID/stat (0 if gone): with the PID, it names one process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(text[text.rfind(")") + 2 :].split()[19])


def stdio_fifos(bundle: Path) -> tuple[tuple[int, int], tuple[int, int]]:
    """(read, write) fds for the container's stdout and stderr, on FIFOs in the bundle.

    FIFOs rather than pipes, for live-restore: the container's end is opened read-write, so
    the container itself always holds a reader and its writes never fail with EPIPE while no
    refd is reading; a restarted refd opens the FIFOs again and goes on reading. The end of
    output is still seen: the read end reports EOF once every process holding the
    container's end has exited."""
    fds = []
    for name in ("stdout", "stderr"):
        path = bundle / name
        os.mkfifo(path, 0o600)
        write_end = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        read_end = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        fds.append((read_end, write_end))
    return fds[0], fds[1]


def drain(fd: int) -> str:
    """What is waiting in a non-blocking pipe or FIFO now (for error messages)."""
    chunks = []
    try:
        while data := os.read(fd, 65536):
            chunks.append(data)
    except BlockingIOError:
        pass
    return b"".join(chunks).decode(errors="replace").strip()


def reopen_fifo(bundle: Path, name: str) -> int | None:
    try:
        return os.open(bundle / name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
