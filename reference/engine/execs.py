"""Exec instances (POST /containers/{id}/exec, /exec/{id}/start, /exec/{id}/json).

A start runs the runtime's `exec --process FILE <id>`, with a process spec derived from the
container's own (its env, capabilities and no_new_privs, as Docker's exec inherits them) plus
the exec's command, env, user and working directory. The runtime's stdout/stderr are the
exec's; the exit status of `runtime exec` is the command's (runc's contract).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import selectors
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reference.engine import ocispec, runtime
from reference.engine.store import Container
from reference.errors import ConfigError, ConflictError, NotFoundError

if TYPE_CHECKING:
    from reference.engine.lifecycle import Engine

Sink = Callable[[str, bytes], None]


class Exec:
    def __init__(self, container: Container, body: dict[str, Any]) -> None:
        self.id = secrets.token_hex(32)
        self.container = container
        self.cmd: list[str] = list(body.get("Cmd") or [])
        self.env: list[str] = list(body.get("Env") or [])
        self.user: str = body.get("User") or ""
        self.workdir: str = body.get("WorkingDir") or ""
        self.tty = bool(body.get("Tty"))
        self.privileged = bool(body.get("Privileged"))
        self.attach = {k: bool(body.get(f"Attach{k}")) for k in ("Stdin", "Stdout", "Stderr")}
        self.running = False
        self.started = False
        self.exit_code: int | None = None
        self.pid = 0
        self.done = threading.Event()

    def inspect(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {
                "tty": self.tty,
                "entrypoint": self.cmd[0] if self.cmd else "",
                "arguments": self.cmd[1:],
                "privileged": self.privileged,
                **({"user": self.user} if self.user else {}),
            },
            "OpenStdin": self.attach["Stdin"],
            "OpenStderr": self.attach["Stderr"],
            "OpenStdout": self.attach["Stdout"],
            "CanRemove": False,
            "ContainerID": self.container.id,
            "DetachKeys": "",
            "Pid": self.pid,
        }


class Execs:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._by_id: dict[str, Exec] = {}

    def create(self, c: Container, body: dict[str, Any]) -> Exec:
        if not isinstance(body, dict):
            raise ConfigError("invalid JSON: the exec config must be an object")
        if not body.get("Cmd"):
            raise ConfigError("No exec command specified")
        if not c.state.running:
            raise ConflictError(f"Container {c.id} is not running")
        if c.state.status == "paused":
            raise ConflictError(f"Container {c.id} is paused, unpause the container before exec")
        instance = Exec(c, body)
        with self._lock:
            self._by_id[instance.id] = instance
            c.exec_ids.append(instance.id)
        self.engine.emit(c, f"exec_create: {' '.join(instance.cmd)}", execID=instance.id)
        return instance

    def get(self, exec_id: str) -> Exec:
        with self._lock:
            found = self._by_id.get(exec_id)
        if found is None:
            raise NotFoundError(f"No such exec instance: {exec_id}")
        return found

    def _process(self, instance: Exec) -> dict[str, Any]:
        c = instance.container
        spec = json.loads((self.engine.bundle(c.id) / "config.json").read_text())
        process: dict[str, Any] = spec["process"]
        env = {e.split("=", 1)[0]: e for e in process.get("env", [])}
        env.update({e.split("=", 1)[0]: e for e in instance.env})
        process.update(args=instance.cmd, env=list(env.values()), terminal=False)
        if instance.workdir:
            process["cwd"] = instance.workdir
        if instance.user:
            process["user"] = ocispec.resolve_user(Path(spec["root"]["path"]), instance.user)
        if instance.privileged:
            from reference.engine.security import capabilities

            caps = capabilities([], [], privileged=True)
            process["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
        return process

    def start(self, instance: Exec, sink: Sink | None) -> int:
        """Run to completion, feeding output to `sink` (None: discard); the exit code."""
        c = instance.container
        with c.lock:
            if instance.started:
                raise ConflictError(f"Error: Exec command {instance.id} has already run")
            if not c.state.running:
                raise ConflictError(f"Container {c.id} is not running")
            instance.started = instance.running = True
            process_file = self.engine.bundle(c.id) / f"exec-{instance.id[:16]}.json"
            process_file.write_text(json.dumps(self._process(instance)))
        rt = self.engine.runtime_for(c)
        self.engine.emit(c, f"exec_start: {' '.join(instance.cmd)}", execID=instance.id)
        try:
            proc = runtime.spawn(
                rt.exec_argv(c.id, process_file),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert proc.stdout is not None
            assert proc.stderr is not None
            pump({"stdout": proc.stdout.fileno(), "stderr": proc.stderr.fileno()}, sink)
            code = runtime.reap(proc)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(process_file)
        instance.exit_code = code
        instance.running = False
        instance.done.set()
        self.engine.emit(c, "exec_die", execID=instance.id, exitCode=str(code))
        return code

    def forget(self, c: Container) -> None:
        with self._lock:
            for exec_id in c.exec_ids:
                self._by_id.pop(exec_id, None)


def pump(fds: dict[str, int], sink: Sink | None) -> None:
    """Copy both pipes to `sink` until both reach EOF."""
    selector = selectors.DefaultSelector()
    for stream, fd in fds.items():
        selector.register(fd, selectors.EVENT_READ, stream)
    open_count = len(fds)
    broken = False
    while open_count:
        for key, _ in selector.select():
            data = os.read(key.fd, 65536)
            if not data:
                selector.unregister(key.fd)
                open_count -= 1
                continue
            if sink is not None and not broken:
                try:
                    sink(key.data, data)
                except OSError:
                    broken = True  # the client went away: keep draining so the process ends
    selector.close()
