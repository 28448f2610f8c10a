"""Containers in memory and on disk: data-root/containers/<id>/{config.v2.json,hostconfig.json}.

Each write goes to a temporary file that is renamed over the old one (atomic on one file
system), so a crash leaves the previous version or the new one, never half of either. Names are
unique (Docker's 409 wording); ids are 64 hex digits; lookup accepts the full id, a unique id
prefix, or the name with or without its leading "/", as Docker's GetContainer does.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reference.errors import ConfigError, ConflictError, NotFoundError

ZERO_TIME = "0001-01-01T00:00:00Z"
NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def now_rfc3339() -> str:
    """Go's RFC3339Nano in UTC, as Docker stamps Created/StartedAt/FinishedAt."""
    ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


class State:
    """Docker's ContainerState. Status is one of created, running, paused, restarting,
    removing, exited, dead."""

    def __init__(self, doc: dict[str, Any] | None = None) -> None:
        doc = doc or {}
        self.status: str = doc.get("Status", "created")
        self.pid: int = doc.get("Pid", 0)
        self.exit_code: int = doc.get("ExitCode", 0)
        self.error: str = doc.get("Error", "")
        self.oom_killed: bool = doc.get("OOMKilled", False)
        self.started_at: str = doc.get("StartedAt", ZERO_TIME)
        self.finished_at: str = doc.get("FinishedAt", ZERO_TIME)
        # Not in Docker's document: the init's start time (/proc/PID/stat field 22), so that
        # a restarted refd can tell the container's init from a process that reused its PID.
        self.pid_start: int = doc.get("PidStartTime", 0)

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused")

    def to_api(self) -> dict[str, Any]:
        return {
            "Status": self.status,
            "Running": self.running,
            "Paused": self.status == "paused",
            "Restarting": self.status == "restarting",
            "OOMKilled": self.oom_killed,
            "Dead": self.status == "dead",
            "Pid": self.pid,
            "ExitCode": self.exit_code,
            "Error": self.error,
            "StartedAt": self.started_at,
            "FinishedAt": self.finished_at,
        }

    def to_disk(self) -> dict[str, Any]:
        return {**self.to_api(), "PidStartTime": self.pid_start}


class Container:
    """One container: what Docker keeps in config.v2.json and hostconfig.json, plus the
    engine's own bookkeeping (runtime, cgroups path) under keys Docker does not use."""

    def __init__(self, doc: dict[str, Any], host_config: dict[str, Any]) -> None:
        self.id: str = doc["ID"]
        self.name: str = doc["Name"]  # with the leading "/"
        self.created: str = doc.get("Created", ZERO_TIME)
        self.path: str = doc.get("Path", "")
        self.args: list[str] = doc.get("Args", [])
        self.config: dict[str, Any] = doc.get("Config", {})
        self.image_id: str = doc.get("Image", "")
        self.state = State(doc.get("State"))
        self.restart_count: int = doc.get("RestartCount", 0)
        self.runtime: str = doc.get("Runtime", "")
        self.cgroups_path: str = doc.get("CgroupsPath", "")
        self.exec_ids: list[str] = doc.get("ExecIDs") or []
        self.mounts: list[dict[str, Any]] = doc.get("MountPoints") or []
        # network name → EndpointSettings (reference.network.attachments keeps it current)
        self.networks: dict[str, dict[str, Any]] = (doc.get("NetworkSettings") or {}).get(
            "Networks"
        ) or {}
        self.host_config = host_config
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # notified on every state change
        self.exits = 0  # how many exits this refd has seen (wait condition=next-exit)
        self.removed = False
        self.oom_seen = False  # an OOM event arrived during the current run

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def to_disk(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Name": self.name,
            "Created": self.created,
            "Path": self.path,
            "Args": self.args,
            "Config": self.config,
            "Image": self.image_id,
            "State": self.state.to_disk(),
            "RestartCount": self.restart_count,
            "Runtime": self.runtime,
            "CgroupsPath": self.cgroups_path,
            "ExecIDs": self.exec_ids,
            "MountPoints": self.mounts,
            "NetworkSettings": {"Networks": self.networks},
            "Driver": "overlay2",
        }


class ContainerStore:
    def __init__(self, root: Path) -> None:
        self.root = root  # data-root/containers
        self.root.mkdir(parents=True, exist_ok=True, mode=0o710)
        self._lock = threading.Lock()
        self._by_id: dict[str, Container] = {}
        self._names: dict[str, str] = {}  # "/name" → id

    def dir(self, cid: str) -> Path:
        return self.root / cid

    # -- naming ------------------------------------------------------------------------
    @staticmethod
    def new_id() -> str:
        while True:
            cid = secrets.token_hex(32)
            if not cid[:12].isdigit():  # Docker avoids all-digit short ids (they read as PIDs)
                return cid

    def reserve(self, name: str | None, cid: str) -> str:
        """Claim `name` (or a generated one) for `cid`; the stored form has a leading '/'."""
        if name:
            if not NAME.match(name):
                raise ConfigError(
                    f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )
            full = name if name.startswith("/") else f"/{name}"
        else:
            full = f"/{_generated_name()}"
        with self._lock:
            holder = self._names.get(full)
            if holder is not None:
                raise ConflictError(
                    f'Conflict. The container name "{full}" is already in use by container '
                    f'"{holder}". You have to remove (or rename) that container to be able to '
                    "reuse that name."
                )
            self._names[full] = cid
        return full

    def release(self, name: str, cid: str) -> None:
        with self._lock:
            if self._names.get(name) == cid:
                del self._names[name]

    # -- membership --------------------------------------------------------------------
    def add(self, container: Container) -> None:
        with self._lock:
            self._by_id[container.id] = container
            self._names[container.name] = container.id

    def discard(self, container: Container) -> None:
        with self._lock:
            self._by_id.pop(container.id, None)
            if self._names.get(container.name) == container.id:
                del self._names[container.name]

    def all(self) -> list[Container]:
        with self._lock:
            return list(self._by_id.values())

    def __iter__(self) -> Iterator[Container]:
        return iter(self.all())

    def get(self, ref: str) -> Container:
        """By full id, name (with or without '/'), or unique id prefix (Docker's order)."""
        with self._lock:
            if ref in self._by_id:
                return self._by_id[ref]
            cid = self._names.get(ref if ref.startswith("/") else f"/{ref}")
            if cid is not None:
                return self._by_id[cid]
            if ref and re.fullmatch(r"[0-9a-f]+", ref):
                found = [c for i, c in self._by_id.items() if i.startswith(ref)]
                if len(found) == 1:
                    return found[0]
                if len(found) > 1:
                    raise ConflictError(f"Multiple IDs found with provided prefix: {ref}")
        raise NotFoundError(f"No such container: {ref}")

    # -- disk --------------------------------------------------------------------------
    def save(self, container: Container) -> None:
        directory = self.dir(container.id)
        directory.mkdir(exist_ok=True, mode=0o710)
        write_atomic(directory / "config.v2.json", json.dumps(container.to_disk()).encode())
        write_atomic(directory / "hostconfig.json", json.dumps(container.host_config).encode())

    def load_all(self) -> list[tuple[Container | None, Path]]:
        """Every container directory: (container, dir), or (None, dir) for one that cannot be
        read (a create that crashed before its first save): the caller removes those."""
        found: list[tuple[Container | None, Path]] = []
        for directory in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            if not directory.is_dir():
                continue
            try:
                doc = json.loads((directory / "config.v2.json").read_text())
                host_config = json.loads((directory / "hostconfig.json").read_text())
                container = Container(doc, host_config)
            except (OSError, ValueError, KeyError):
                found.append((None, directory))
                continue
            found.append((container, directory))
        return found


_LEFT = (
    "admiring",
    "bold",
    "brave",
    "clever",
    "eager",
    "gallant",
    "happy",
    "jolly",
    "keen",
    "lucid",
    "modest",
    "nifty",
    "quirky",
    "serene",
    "stoic",
    "vibrant",
    "wizardly",
    "zen",
)
_RIGHT = (
    "babbage",
    "curie",
    "darwin",
    "euler",
    "fermi",
    "galois",
    "hopper",
    "knuth",
    "lovelace",
    "noether",
    "pasteur",
    "ritchie",
    "shannon",
    "thompson",
    "turing",
    "wozniak",
)


def _generated_name() -> str:
    """Docker's adjective_surname names, with a random suffix so that they never collide."""
    return f"{secrets.choice(_LEFT)}_{secrets.choice(_RIGHT)}{secrets.randbelow(10000)}"
