"""System endpoints: /_ping, /version, /info and the /events stream."""

from __future__ import annotations

import json
import os
import platform
import queue
import re
import socket
import time
from typing import TYPE_CHECKING, Any

from reference.engine.api.server import API_VERSION, MIN_API_VERSION, Request, Response
from reference.engine.events import matches
from reference.errors import ConfigError

if TYPE_CHECKING:
    from reference.engine.daemon import Daemon

VERSION = "0.1.0"  # refd's own release; the API it serves is Docker 20.10's (1.41)


def _timestamp(text: str) -> int | None:
    """since/until: unix seconds (with an optional fraction) → nanoseconds."""
    if not text:
        return None
    try:
        return int(float(text) * 1_000_000_000)
    except ValueError:
        raise ConfigError(f"invalid timestamp: {text!r}") from None


class SystemRoutes:
    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", r"/_ping", self.ping),
            ("GET", r"/version", self.version),
            ("GET", r"/info", self.info),
            ("GET", r"/events", self.events),
        ]

    def ping(self, r: Request, m: re.Match[str]) -> Any:
        return Response(200, b"OK", "text/plain; charset=utf-8")

    def version(self, r: Request, m: re.Match[str]) -> Any:
        uname = os.uname()
        return {
            "Platform": {"Name": "refd (reference engine)"},
            "Components": [
                {
                    "Name": "Engine",
                    "Version": VERSION,
                    "Details": {
                        "ApiVersion": API_VERSION,
                        "MinAPIVersion": MIN_API_VERSION,
                        "Os": "linux",
                        "Arch": _arch(),
                        "KernelVersion": uname.release,
                    },
                },
            ],
            "Version": VERSION,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": f"python{platform.python_version()}",
            "Os": "linux",
            "Arch": _arch(),
            "KernelVersion": uname.release,
            "BuildTime": "",
        }

    def info(self, r: Request, m: re.Match[str]) -> Any:
        d = self.d
        config = d.config
        containers = d.engine.containers.all()
        states = [c.state.status for c in containers]
        sysinfo = d.engine.sysinfo
        insecure = [*list(config.insecure_registries), "127.0.0.0/8"]
        return {
            "ID": d.daemon_id,
            "Containers": len(containers),
            "ContainersRunning": states.count("running"),
            "ContainersPaused": states.count("paused"),
            "ContainersStopped": len(states) - states.count("running") - states.count("paused"),
            "Images": len(d.engine.images.list()),
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
            "ClusterStore": d.config.cluster_store or "",
            "ClusterAdvertise": d.config.cluster_advertise or "",
            "Plugins": {
                "Volume": [],
                "Network": ["bridge", "host", "null"]
                + (["overlay"] if d.config.cluster_store else []),
                "Authorization": None,
                "Log": ["json-file"],
            },
            "MemoryLimit": True,
            "SwapLimit": sysinfo.swap_limit,
            "KernelMemory": False,
            "KernelMemoryTCP": False,
            "CpuCfsPeriod": True,
            "CpuCfsQuota": True,
            "CPUShares": True,
            "CPUSet": True,
            "PidsLimit": True,
            "OomKillDisable": sysinfo.oom_kill_disable,
            "IPv4Forwarding": True,
            "BridgeNfIptables": False,
            "BridgeNfIp6tables": False,
            "Debug": config.debug,
            "NFd": len(os.listdir("/proc/self/fd")),
            "NGoroutines": 0,
            "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": "1" if d.engine.cgroup_v1 else "2",
            "NEventsListener": d.events.listeners,
            "KernelVersion": os.uname().release,
            "OperatingSystem": _os_name(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": os.uname().machine,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {
                "AllowNondistributableArtifactsCIDRs": [],
                "AllowNondistributableArtifactsHostnames": [],
                "InsecureRegistryCIDRs": [i for i in insecure if "/" in i],
                "IndexConfigs": {},
                "Mirrors": [],
            },
            "NCPU": os.cpu_count() or 1,
            "MemTotal": _mem_total(),
            "GenericResources": None,
            "DockerRootDir": str(config.data_root),
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Name": socket.gethostname(),
            "Labels": [],
            "ExperimentalBuild": False,
            "ServerVersion": VERSION,
            "Runtimes": {name: {"path": rt.path} for name, rt in config.runtimes.items()},
            "DefaultRuntime": config.default_runtime,
            "Swarm": {
                "NodeID": "",
                "NodeAddr": "",
                "LocalNodeState": "inactive",
                "ControlAvailable": False,
                "Error": "",
                "RemoteManagers": None,
            },
            "LiveRestoreEnabled": config.live_restore,
            "Isolation": "",
            "InitBinary": "",
            "ContainerdCommit": {"ID": "", "Expected": ""},
            "RuncCommit": {"ID": "", "Expected": ""},
            "InitCommit": {"ID": "", "Expected": ""},
            "SecurityOptions": ["name=seccomp,profile=default"],
            "Warnings": d.warnings,
        }

    def events(self, r: Request, m: re.Match[str]) -> Any:
        since, until = _timestamp(r.arg("since")), _timestamp(r.arg("until"))
        filters = r.filters()
        past, subscriber = self.d.events.subscribe(since)
        out = r.start(200, "application/json")
        assert out is not None
        try:
            for event in past:
                if until is not None and event["timeNano"] > until:
                    break
                if matches(event, filters):
                    out.write(json.dumps(event).encode() + b"\n")
            while until is None or time.time_ns() < until:
                try:
                    event = subscriber.get(timeout=0.5)
                except queue.Empty:
                    if r.client_gone():
                        return None
                    continue
                if until is not None and event["timeNano"] > until:
                    break
                if matches(event, filters):
                    out.write(json.dumps(event).encode() + b"\n")
        finally:
            self.d.events.unsubscribe(subscriber)
        out.close()
        return None


def _arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _mem_total() -> int:
    from reference.engine.stats import host_memory

    return host_memory()


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"
