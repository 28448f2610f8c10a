"""refd as a process: wiring, restore at start-up, serving, and shutdown.

Start-up takes an exclusive lock on exec-root/refd.lock (two daemons on one state would
corrupt it), becomes a child subreaper, opens the stores and then restores containers from
disk:
* an unreadable container directory (a create that crashed before its first save) is removed
  with its snapshot;
* a container recorded as running whose init still lives (same PID and start time) is adopted
  with live-restore: its exit is watched by pidfd (exit code unknown, see monitor.py) and its
  output FIFOs are opened again; without live-restore it is killed and cleaned up;
* a container recorded as running whose init is gone is cleaned up and marked exited (255).
Shutdown (SIGTERM/SIGINT) stops the API, then, without live-restore, stops every running
container (in parallel, shutdown-timeout each) so that no mount, cgroup or process outlives
refd; with live-restore they are left running for the next refd.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any

from reference.engine import runtime
from reference.engine.config import DaemonConfig
from reference.engine.events import EventBus
from reference.engine.execs import Execs
from reference.engine.images import Images
from reference.engine.lifecycle import Engine
from reference.engine.monitor import UNKNOWN_EXIT, become_subreaper
from reference.engine.store import now_rfc3339
from reference.errors import ConfigError, RefError


def log(level: str, message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    sys.stderr.write(f'time="{stamp}Z" level={level} msg="{message}"\n')
    sys.stderr.flush()


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        from reference.image.snapshot import Snapshots
        from reference.image.store import ImageStore

        self.config = config
        for path in (config.data_root, config.exec_root):
            path.mkdir(parents=True, exist_ok=True, mode=0o710)
        self._lock_fd = os.open(
            config.exec_root / "refd.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                "another refd is running with this exec-root", obj=str(config.exec_root)
            ) from None
        become_subreaper()
        self.events = EventBus()
        (config.data_root / "image").mkdir(exist_ok=True)
        store = ImageStore(config.data_root / "image")
        snapshots = Snapshots(config.data_root / "overlay", store)
        self.engine = Engine(config, store, snapshots, self.events)
        self.images = Images(self.engine)
        self.execs = Execs(self.engine)
        self.daemon_id = self._daemon_id()
        self.warnings: list[str] = []
        self._servers: list[Any] = []
        self._stop = threading.Event()
        self._reload = threading.Event()

    def _daemon_id(self) -> str:
        path = self.config.data_root / "engine-id"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            value = secrets.token_hex(16)
            path.write_text(value)
            return value

    # -- restore ------------------------------------------------------------------------
    def restore(self) -> None:
        engine = self.engine
        engine.network.start()
        for container, directory in engine.containers.load_all():
            if container is None:
                log("warning", f"removing unreadable container directory {directory}")
                engine.discard_snapshot(directory.name)
                shutil.rmtree(directory, ignore_errors=True)
                continue
            engine.containers.add(container)
            state = container.state
            if not state.running:
                with contextlib.suppress(RefError, OSError):
                    if state.status != "created":
                        engine.snapshots.unmount(container.id)
                continue
            alive = state.pid_start != 0 and runtime.proc_start_time(state.pid) == state.pid_start
            if alive and self.config.live_restore:
                self._adopt(container)
                continue
            if alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(state.pid, signal.SIGKILL)
                deadline = time.monotonic() + 10
                while (
                    runtime.proc_start_time(state.pid) == state.pid_start
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.05)
            errors = engine._cleanup(container, engine.runtime_for(container))
            state.status = "exited"
            state.exit_code = 137 if alive else UNKNOWN_EXIT
            state.pid, state.pid_start = 0, 0
            state.finished_at = now_rfc3339()
            state.error = "; ".join(errors)
            engine.save(container)
            log(
                "info",
                f"container {container.short_id} was running at the last shutdown: "
                f"{'killed' if alive else 'found exited'} (live-restore is off)",
            )
        engine.network.forget_stale({c.id for c in engine.containers if c.state.running})

    def _adopt(self, c: Any) -> None:
        engine = self.engine
        pid = c.state.pid
        try:
            engine.monitor.watch(pid, lambda code: engine._on_exit(c, pid, code), adopted=True)
        except ProcessLookupError:
            engine._on_exit(c, pid, UNKNOWN_EXIT)
            return
        engine.reopen_output(c)
        engine.embedded_dns(c, rewrite=False)  # its sandbox is served again
        if engine.cgroup_v1:
            memory_dir = engine._memory_dir(c)
            if memory_dir is not None:
                engine.monitor.watch_oom(pid, memory_dir, lambda: engine._on_oom(c))
        log("info", f"live-restore: adopted running container {c.short_id} (pid {pid})")

    def purge(self) -> None:
        """Remove every container (killing running ones): a test driver's last word."""
        for container in self.engine.containers.all():
            try:
                self.engine.remove(container, force=True)
            except RefError as e:
                log("error", f"purge: {e}")
        try:
            self.engine.network.purge()
        except RefError as e:
            log("error", f"purge: networks: {e}")
        self._remove_cgroup_parent()

    # -- serving ------------------------------------------------------------------------
    def _tls(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        assert self.config.tlscert is not None
        assert self.config.tlskey is not None
        context.load_cert_chain(self.config.tlscert, self.config.tlskey)
        if self.config.tlsverify and self.config.tlscacert:
            context.load_verify_locations(self.config.tlscacert)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def serve(self) -> None:
        from reference.engine.api.routes import Router
        from reference.engine.api.server import Server, TCPServer

        router = Router(self)
        for host in self.config.hosts:
            scheme, _, rest = host.partition("://")
            if scheme == "unix":
                Path(rest).parent.mkdir(parents=True, exist_ok=True)
                self._servers.append(Server(rest, router, self.config.debug))
            else:
                address, _, port = rest.rpartition(":")
                self._servers.append(
                    TCPServer(
                        (address or "0.0.0.0", int(port)), router, self._tls(), self.config.debug
                    )
                )
        if self.config.pidfile is not None:
            self.config.pidfile.write_text(f"{os.getpid()}\n")
        for server in self._servers:
            threading.Thread(target=server.serve_forever, name="api", daemon=True).start()
        log("info", f"API listening on {', '.join(self.config.hosts)}")
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stop.set())
        signal.signal(signal.SIGHUP, self._on_sighup)
        while True:
            self._stop.wait(1.0)
            if self._reload.is_set():
                self._reload.clear()
                self._stop.clear()
                self.reload()
            elif self._stop.is_set():
                break
        self.shutdown()

    def _on_sighup(self, *_: object) -> None:
        self._reload.set()
        self._stop.set()  # wakes the serving loop, which sees the reload

    def reload(self) -> None:
        """SIGHUP, as dockerd: the reloadable keys of the configuration file take effect."""
        from reference.engine.config import reload

        try:
            applied = reload(self.config)
        except (RefError, OSError) as e:
            log("error", f"Error reloading the configuration: {e}")
            return
        import json

        log("info", f"Reloaded configuration: {json.dumps(applied)}")

    def shutdown(self) -> None:
        log("info", "shutting down")
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for host in self.config.hosts:
            if host.startswith("unix://"):
                with contextlib.suppress(OSError):
                    os.unlink(host[len("unix://") :])
        if not self.config.live_restore:
            self.stop_all()
        self.engine.network.close()
        if self.config.pidfile is not None:
            with contextlib.suppress(OSError):
                self.config.pidfile.unlink()
        self._remove_cgroup_parent()

    def stop_all(self) -> None:
        running = [c for c in self.engine.containers if c.state.running]
        threads = []
        for c in running:
            t = threading.Thread(target=self._stop_one, args=(c,), daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join(self.config.shutdown_timeout + 35)

    def _stop_one(self, c: Any) -> None:
        with contextlib.suppress(RefError):
            self.engine.stop(c, self.config.shutdown_timeout)

    def _remove_cgroup_parent(self) -> None:
        """The parent cgroup (/refd) goes when empty, in every hierarchy the runtime may have
        made it in (the name=systemd one too); other daemons may still use it."""
        from reference.linux.procfs import parse_mountinfo, read

        relative = self.config.cgroup_parent.strip("/")
        for mount in parse_mountinfo(read("self", "mountinfo")):
            if mount.fstype in ("cgroup", "cgroup2"):
                with contextlib.suppress(OSError):
                    (Path(mount.mount_point) / relative).rmdir()
