"""The container lifecycle: start, exit, stop, kill, pause, update, wait, remove.

Start: the rootfs snapshot is mounted, the OCI spec written to the bundle
(exec-root/containers/<id>/config.json), and the runtime's `create` runs with the write ends
of two pipes as its stdout/stderr, which the container's init inherits (logs.LogHub drains the
read ends). The init is then refd's child (see monitor.py), watched by pidfd, and `start`
releases it. Exit: the output is drained, the OOM count read, the runtime's state and cgroup
deleted and the rootfs unmounted before the new state is saved and "die" is emitted.

Remove undoes everything a container owns, each step tried even if an earlier one failed, so
that a retry has less to do: runtime state, cgroup, /dev/shm mount, snapshot, bundle,
container directory. A container whose removal failed is left "dead", as Docker does.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reference.engine import etcfiles, ocispec, runtime, teardown
from reference.engine.events import EventBus
from reference.engine.hostconfig import SysInfo, check_resources
from reference.engine.monitor import Monitor
from reference.engine.outputs import Follower, Outputs
from reference.engine.store import Container, ContainerStore, now_rfc3339
from reference.errors import ConfigError, ConflictError, NotFoundError, RefError, StateError

if TYPE_CHECKING:
    from reference.engine.config import DaemonConfig
    from reference.image.snapshot import Snapshots
    from reference.image.store import Image, ImageStore

ETC_EXCLUDE = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")
STOP_TIMEOUT = 10
KILL_WAIT = 30.0


class NotModified(RefError):
    """HTTP 304: the container is already in the state asked for."""


def signal_number(name: str | int) -> int:
    if isinstance(name, int) or str(name).isdigit():
        return int(name)
    text = str(name).upper()
    text = text if text.startswith("SIG") else f"SIG{text}"
    try:
        return int(signal.Signals[text])
    except KeyError:
        raise ConfigError(f"Invalid signal: {name}") from None


class Engine:
    def __init__(
        self, config: DaemonConfig, images: ImageStore, snapshots: Snapshots, events: EventBus
    ) -> None:
        from reference.cgroups.manager import CgroupMode, detect

        self.config = config
        self.images = images
        images.in_use = self.image_in_use
        self.snapshots = snapshots
        self.events = events
        self.containers = ContainerStore(config.data_root / "containers")
        self.sysinfo = SysInfo.probe()
        self.monitor = Monitor()
        self.outputs = Outputs()
        self._runtimes: dict[str, runtime.OciRuntime] = {}
        self._seccomp: dict[str, bool] = {}
        self.cgroupns_default = "private" if detect() == CgroupMode.UNIFIED else "host"
        self.cgroup_v1 = detect() != CgroupMode.UNIFIED
        from reference.network.controller import Controller

        self.network = Controller(config, events.emit, self.save)
        self.network.dns_setup = self.embedded_dns

    # -- helpers ------------------------------------------------------------------------
    def runtime_for(self, c: Container) -> runtime.OciRuntime:
        name = c.runtime or self.config.default_runtime
        if name not in self._runtimes:
            root = self.config.exec_root / "runtime" / name
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._runtimes[name] = runtime.OciRuntime(name, self.config.runtime(name), root)
        return self._runtimes[name]

    def seccomp_supported(self, rt: runtime.OciRuntime) -> bool:
        if rt.name not in self._seccomp:
            features = rt.features()
            enabled = features.get("linux", {}).get("seccomp", {}).get("enabled")
            # runc before `features` existed (< 1.1) supports seccomp: assume it does.
            self._seccomp[rt.name] = bool(enabled) if features else True
        return self._seccomp[rt.name]

    def bundle(self, cid: str) -> Path:
        return self.config.exec_root / "containers" / cid

    def log_path(self, c: Container) -> Path:
        return self.containers.dir(c.id) / f"{c.id}-json.log"

    def shm_path(self, c: Container) -> Path:
        return self.containers.dir(c.id) / "mounts" / "shm"

    def init_files(self) -> dict[str, str]:
        return {}  # the snapshot's defaults are Docker's init layer

    def emit(self, c: Container, action: str, **extra: str) -> None:
        attributes = {"image": str(c.config.get("Image", "")), "name": c.name.lstrip("/")}
        attributes.update({k: str(v) for k, v in extra.items()})
        self.events.emit("container", action, c.id, attributes)

    def image_in_use(self, image_id: str) -> tuple[str, bool] | None:
        users = [c for c in self.containers if c.image_id == image_id]
        running = [c for c in users if c.state.running]
        chosen = running or users
        return (chosen[0].id, chosen[0].state.running) if chosen else None

    def save(self, c: Container) -> None:
        if not c.removed:
            self.containers.save(c)

    def discard_snapshot(self, key: str) -> None:
        with contextlib.suppress(RefError, OSError):
            self.snapshots.remove(key)

    def joined_namespace(self, kind: str, mode: str) -> tuple[int, dict[str, Any]]:
        """'container:<ref>' → (init pid, host config) of a running donor (Docker's checks)."""
        ref = mode.split(":", 1)[1]
        donor = self.containers.get(ref)
        noun = {"ipc": "IPC", "pid": "PID", "network": "network"}.get(kind, kind)
        if not donor.state.running:
            raise ConflictError(f"cannot join {noun} of a non running container: {ref}")
        if kind == "ipc" and donor.host_config.get("IpcMode") not in ("shareable", "host"):
            raise ConfigError(
                "non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
            )
        return donor.state.pid, donor.host_config

    def attach(self, c: Container) -> Follower:
        with c.lock:
            return self.outputs.attach(c.id, c.state.running)

    def detach(self, c: Container, follower: Follower) -> None:
        self.outputs.detach(c.id, follower)

    # -- start --------------------------------------------------------------------------
    def start(self, c: Container) -> None:
        with c.lock:
            if c.removed:
                raise NotFoundError(f"No such container: {c.id}")
            if c.state.running:
                raise NotModified("container already started")
            if c.state.status == "removing":
                raise ConflictError(f"removal of container {c.short_id} is already in progress")
            try:
                self._start(c)
            except RefError as e:
                self.outputs.release(c.id)
                c.state.error = str(e)
                c.state.exit_code = 127 if "not found" in str(e) else 128
                self.save(c)
                failed = e
            else:
                return
        if c.host_config.get("AutoRemove"):  # dockerd removes an AutoRemove container whose
            with contextlib.suppress(RefError):  # start failed, as it never ran
                self.remove(c, force=True)
        raise failed

    def _shm(self, c: Container) -> Path | None:
        mode = c.host_config.get("IpcMode") or "private"
        if mode == "shareable":
            path = self.shm_path(c)
            path.mkdir(parents=True, exist_ok=True)
            if os.stat(path).st_dev == os.stat(path.parent).st_dev:
                size = c.host_config.get("ShmSize") or self.config.default_shm_size
                subprocess.run(
                    [
                        "mount",
                        "-t",
                        "tmpfs",
                        "-o",
                        f"nosuid,nodev,noexec,mode=1777,size={size}",
                        "shm",
                        str(path),
                    ],
                    check=True,
                    capture_output=True,
                )
            return path
        if mode.startswith("container:"):
            _, donor = self.joined_namespace("ipc", mode)
            if donor.get("IpcMode") == "host":
                return Path("/dev/shm")
            return self.shm_path(self.containers.get(mode.split(":", 1)[1]))
        return None

    def _start(self, c: Container) -> None:
        rt = self.runtime_for(c)
        image = self.images.resolve(c.image_id)
        rootfs = self.snapshots.prepare(c.id, image, self.init_files())
        bundle = self.bundle(c.id)
        shutil.rmtree(bundle, ignore_errors=True)
        bundle.mkdir(parents=True, mode=0o700)
        directory = self.containers.dir(c.id)
        try:
            netns_path = self.network.attach(c)
            if netns_path is not None:
                etcfiles.set_address(directory / "hosts", c, self.network.endpoints_of(c))
                self.embedded_dns(c)
        except RefError:
            self._cleanup(c, rt)
            raise
        spec = ocispec.build(
            ocispec.SpecInputs(
                cid=c.id,
                config=c.config,
                host_config=c.host_config,
                mounts=c.mounts,
                rootfs=rootfs,
                shm_path=self._shm(c),
                cgroups_path=c.cgroups_path,
                etc_files={n: directory / n for n in ("hostname", "hosts", "resolv.conf")},
                seccomp_supported=self.seccomp_supported(rt),
                cgroupns_default=self.cgroupns_default,
                netns_path=netns_path,
            ),
            self.joined_namespace,
        )
        (bundle / "config.json").write_text(json.dumps(spec))
        (out_r, out_w), (err_r, err_w) = runtime.stdio_fifos(bundle)
        try:
            rt.create(c.id, bundle, bundle / "pid", out_w, err_w)
        except RefError as e:
            said = runtime.drain(err_r)  # the runtime's own stderr went to the container's
            for fd in (out_r, err_r):
                os.close(fd)
            self._cleanup(c, rt)
            message = str(e)
            if said and message.endswith("exit status 1"):
                message = f"{rt.name} create failed: {said}"
            raise RefError(f"OCI runtime create failed: {message}") from e
        finally:
            os.close(out_w)
            os.close(err_w)
        self.outputs.begin(c.id, self.log_path(c), {"stdout": out_r, "stderr": err_r})
        pid = runtime.read_pid(bundle / "pid")
        c.oom_seen = False
        self.monitor.watch(pid, lambda code: self._on_exit(c, pid, code))
        if self.cgroup_v1:
            memory_dir = self._memory_dir(c)
            if memory_dir is not None:
                self.monitor.watch_oom(pid, memory_dir, lambda: self._on_oom(c))
        c.state.status, c.state.pid = "running", pid
        c.state.pid_start = runtime.proc_start_time(pid)
        c.state.exit_code, c.state.error, c.state.oom_killed = 0, "", False
        c.state.started_at = now_rfc3339()
        try:
            rt.start(c.id, bundle)
        except RefError as e:
            # Never started: the container stays "created" (as in Docker). The pid no longer
            # matches, so the exit handler of the killed init leaves the state alone.
            c.state.status, c.state.pid, c.state.pid_start = "created", 0, 0
            self._cleanup(c, rt)
            raise RefError(f"OCI runtime start failed: {e}") from e
        self.save(c)
        self.emit(c, "start")

    def embedded_dns(self, c: Container, rewrite: bool = True) -> None:
        """A container with an endpoint on a user-defined network gets the embedded DNS server
        in its sandbox and a resolv.conf naming it (made from what its DNS flags and the host
        say, as at create, so each start makes it anew). As in Docker a failure is logged and
        the container runs without it. `rewrite=False` keeps the file (live-restore)."""
        from reference.network.attachments import sandbox_key

        key = sandbox_key(self.network, c)
        if not self.network.wants_dns(c) or self.network.dns.serving(key):
            return
        hc = c.host_config
        spec = etcfiles.EtcSpec(
            hostname="",
            dns=hc.get("Dns") or (),
            dns_search=hc.get("DnsSearch") or (),
            dns_options=hc.get("DnsOptions") or (),
            daemon_dns=self.config.dns,
            daemon_dns_search=self.config.dns_search,
            daemon_dns_options=self.config.dns_opts,
        )
        try:
            conf = etcfiles.embedded_resolv_conf(spec)
            self.network.dns.serve(key, c.id, conf.upstreams, conf.ndots_set)
            if rewrite:
                (self.containers.dir(c.id) / "resolv.conf").write_text(conf.text)
        except (RefError, OSError) as e:
            import sys

            self.network.stop_dns(key)
            sys.stderr.write(f'level=error msg="embedded DNS of {c.short_id}: {e}"\n')

    def _memory_dir(self, c: Container) -> Path | None:
        from reference.cgroups.manager import new_manager

        with contextlib.suppress(RefError, OSError):
            dirs: dict[str, Path] = getattr(new_manager(c.cgroups_path), "dirs", {})
            return dirs.get("memory")
        return None

    def reopen_output(self, c: Container) -> None:
        self.outputs.reopen(c.id, self.log_path(c), self.bundle(c.id))

    # -- exit ---------------------------------------------------------------------------
    def _on_oom(self, c: Container) -> None:
        with c.lock:
            if not c.oom_seen:
                c.oom_seen = True
                self.emit(c, "oom")

    def _oom_kills(self, c: Container) -> int:
        from reference.cgroups.manager import new_manager

        with contextlib.suppress(RefError, OSError):
            return new_manager(c.cgroups_path).oom_kill_count()
        return 0

    def _cleanup(self, c: Container, rt: runtime.OciRuntime) -> list[str]:
        return teardown.cleanup(self, c, rt)

    def _on_exit(self, c: Container, pid: int, code: int) -> None:
        writer = self.outputs.end(c.id)
        if writer is not None:
            # The output is complete once every process holding the pipes is gone; with the
            # host's PID namespace others may hold them, hence the bound.
            writer.done.wait(2.0)
        with c.lock:
            if c.state.pid != pid:
                return
            oom = c.oom_seen or self._oom_kills(c) > 0
            errors = self._cleanup(c, self.runtime_for(c))
            c.state.status = "exited"
            c.state.pid, c.state.pid_start = 0, 0
            c.state.exit_code = code
            c.state.oom_killed = oom
            c.state.finished_at = now_rfc3339()
            c.state.error = "; ".join(errors)
            self.save(c)
            if oom and not c.oom_seen:
                c.oom_seen = True  # the eventfd's thread must not emit it again
                self.emit(c, "oom")
            self.emit(c, "die", exitCode=str(code))
            c.exits += 1
            c.changed.notify_all()
            auto = bool(c.host_config.get("AutoRemove"))
        if auto:
            with contextlib.suppress(RefError):
                self.remove(c, force=True)

    # -- signals ------------------------------------------------------------------------
    def kill(self, c: Container, sig: str | int = "KILL") -> None:
        number = signal_number(sig)
        with c.lock:
            if not c.state.running:
                raise ConflictError(f"Container {c.id} is not running")
            pid = c.state.pid
            if runtime.proc_start_time(pid) != c.state.pid_start:
                return  # already gone: the exit handler is on its way
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, number)
            if number == signal.SIGKILL and c.state.status == "paused":
                # A frozen task dies only once thawed (cgroup v1 freezer).
                with contextlib.suppress(RefError):
                    self.runtime_for(c).resume(c.id)
            self.emit(c, "kill", signal=str(number))

    def wait_exit(self, c: Container, timeout: float | None, since: int | None = None) -> bool:
        """Until the container has exited (after exit number `since`, if given)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with c.lock:
            while (c.state.running if since is None else c.exits <= since) and not c.removed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                c.changed.wait(left)
            return True

    def stop(self, c: Container, timeout: int | None = None) -> None:
        with c.lock:
            if not c.state.running:
                raise NotModified("container already stopped")
            if timeout is None:
                stop_timeout = c.config.get("StopTimeout")
                timeout = STOP_TIMEOUT if stop_timeout is None else int(stop_timeout)
            stop_signal = c.config.get("StopSignal") or "SIGTERM"
            with contextlib.suppress(ConflictError):
                self.kill(c, stop_signal)
            if timeout >= 0 and self.wait_exit(c, timeout):
                return
            with contextlib.suppress(ConflictError):
                self.kill(c, "KILL")
            if not self.wait_exit(c, KILL_WAIT):
                raise StateError(f"container {c.short_id} did not exit after SIGKILL")

    # -- pause, update ------------------------------------------------------------------
    def pause(self, c: Container) -> None:
        with c.lock:
            if not c.state.running:
                raise ConflictError(f"Container {c.id} is not running")
            if c.state.status == "paused":
                raise ConflictError(f"Container {c.id} is already paused")
            self.runtime_for(c).pause(c.id)
            c.state.status = "paused"
            self.save(c)
            self.emit(c, "pause")

    def unpause(self, c: Container) -> None:
        with c.lock:
            if c.state.status != "paused":
                raise ConflictError(f"Container {c.id} is not paused")
            self.runtime_for(c).resume(c.id)
            c.state.status = "running"
            self.save(c)
            self.emit(c, "unpause")

    def update(self, c: Container, body: dict[str, Any]) -> list[str]:
        keys = (
            "Memory",
            "MemorySwap",
            "MemoryReservation",
            "NanoCpus",
            "CpuShares",
            "CpuPeriod",
            "CpuQuota",
            "CpusetCpus",
            "CpusetMems",
            "PidsLimit",
            "BlkioWeight",
        )
        wanted = {k: body[k] for k in keys if body.get(k)}
        with c.lock:
            merged = {**c.host_config, **wanted}
            warnings = check_resources(merged, self.sysinfo, update=True)
            if c.state.running and wanted:
                resources = ocispec.build_resources(merged)
                resources.pop("devices", None)
                self.runtime_for(c).update(c.id, resources)
            c.host_config = merged
            self.save(c)
            self.emit(c, "update")
        return warnings

    # -- remove -------------------------------------------------------------------------
    def remove(self, c: Container, *, force: bool = False) -> None:
        teardown.remove(self, c, force=force)

    def release_attachers(self, c: Container) -> None:
        self.outputs.release(c.id)

    @staticmethod
    def gone(c: Container) -> bool:
        """Removed meanwhile (a method, so that type narrowing does not outlive a wait)."""
        return c.removed

    def image_of(self, c: Container) -> Image:
        return self.images.resolve(c.image_id)
