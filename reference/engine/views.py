"""Read-only views of containers in the Engine API's shapes: inspect (ContainerJSON), list
(GET /containers/json with its filters), top, and changes (docker diff)."""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reference.engine.store import Container
from reference.errors import ConfigError, ConflictError, RefError

if TYPE_CHECKING:
    from reference.engine.lifecycle import Engine

KINDS = {"C": 0, "A": 1, "D": 2}  # docker diff: Modified, Added, Deleted


def graph_driver(engine: Engine, c: Container) -> dict[str, Any]:
    data: dict[str, str] | None = None
    with contextlib.suppress(RefError, OSError):
        upper = engine.snapshots.upperdir(c.id)
        lowers = [str(p) for p in reversed(engine.images.layer_dirs(engine.image_of(c)))]
        data = {
            "LowerDir": ":".join(lowers),
            "MergedDir": str(upper.parent / "merged"),
            "UpperDir": str(upper),
            "WorkDir": str(upper.parent / "work"),
        }
    return {"Name": "overlay2", "Data": data}


def mounts_view(c: Container) -> list[dict[str, Any]]:
    return [
        {k: m[k] for k in ("Type", "Source", "Destination", "Mode", "RW", "Propagation")}
        for m in c.mounts
    ]


def inspect(engine: Engine, c: Container) -> dict[str, Any]:
    directory = engine.containers.dir(c.id)
    return {
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": c.state.to_api(),
        "Image": c.image_id,
        "ResolvConfPath": str(directory / "resolv.conf"),
        "HostnamePath": str(directory / "hostname"),
        "HostsPath": str(directory / "hosts"),
        "LogPath": str(engine.log_path(c)),
        "Name": c.name,
        "RestartCount": c.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": c.exec_ids or None,
        "HostConfig": c.host_config,
        "GraphDriver": graph_driver(engine, c),
        "Mounts": mounts_view(c),
        "Config": c.config,
        "NetworkSettings": engine.network.settings(c),
    }


def _status_text(c: Container) -> str:
    """`docker ps` STATUS column: "Up 5 seconds", "Exited (0) 2 minutes ago", "Created"."""
    state = c.state
    if state.status in ("running", "paused"):
        text = f"Up {_ago(state.started_at)}"
        return text + (" (Paused)" if state.status == "paused" else "")
    if state.status == "exited":
        return f"Exited ({state.exit_code}) {_ago(state.finished_at)} ago"
    return {"created": "Created", "removing": "Removal In Progress", "dead": "Dead"}.get(
        state.status, state.status
    )


def _epoch(stamp: str) -> float:
    with contextlib.suppress(ValueError):
        return time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    return time.time()


def _ago(stamp: str) -> str:
    seconds = max(0, int(time.time() - _epoch(stamp)))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n > 1 else ''}"
    if seconds < 1:
        return "Less than a second"
    return f"{seconds} second{'s' if seconds > 1 else ''}"


def summary(engine: Engine, c: Container) -> dict[str, Any]:
    from reference.network.views import list_ports

    command = " ".join([c.path, *c.args])
    return {
        "Id": c.id,
        "Names": [c.name],
        "Image": c.config.get("Image", ""),
        "ImageID": c.image_id,
        "Command": command,
        "Created": int(_epoch(c.created)),
        "Ports": list_ports(engine.network, c) if c.state.running else [],
        "Labels": c.config.get("Labels") or {},
        "State": c.state.status,
        "Status": _status_text(c),
        "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode", "default")},
        "NetworkSettings": {"Networks": engine.network.settings(c)["Networks"]},
        "Mounts": mounts_view(c),
    }


def _match(key: str, value: str, c: Container) -> bool:
    if key == "name":
        return bool(re.search(value, c.name) or re.search(value, c.name.lstrip("/")))
    if key == "id":
        return c.id.startswith(value)
    if key == "status":
        return c.state.status == value
    if key == "label":
        name, sep, wanted = value.partition("=")
        labels = c.config.get("Labels") or {}
        return name in labels and (not sep or labels[name] == wanted)
    if key == "exited":
        return c.state.status == "exited" and str(c.state.exit_code) == value
    if key == "ancestor":
        return value in (c.config.get("Image"), c.image_id)
    raise ConfigError(f"invalid filter '{key}'")


def listing(
    engine: Engine, all_: bool, filters: Mapping[str, list[str]], limit: int
) -> list[dict[str, Any]]:
    found = []
    for c in sorted(engine.containers, key=lambda c: c.created, reverse=True):
        if not all_ and not c.state.running and "status" not in filters:
            continue
        if all(any(_match(k, v, c) for v in values) for k, values in filters.items() if values):
            found.append(summary(engine, c))
    return found[:limit] if limit > 0 else found


def top(engine: Engine, c: Container, ps_args: str) -> dict[str, Any]:
    """`docker top`: the host's `ps` output, restricted to the container's processes."""
    from reference.cgroups.manager import new_manager

    if not c.state.running:
        raise ConflictError(f"Container {c.id} is not running")
    pids = set(new_manager(c.cgroups_path).pids())
    done = subprocess.run(["ps", *ps_args.split()], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise ConfigError(f"ps: {done.stderr.strip()}")
    lines = done.stdout.splitlines()
    titles = lines[0].split()
    if "PID" not in titles:
        raise ConfigError("Couldn't find PID field in ps output")
    column = titles.index("PID")
    processes = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in pids:
            processes.append(fields)
    return {"Titles": titles, "Processes": processes}


def changes(engine: Engine, c: Container) -> list[dict[str, Any]]:
    return [{"Path": path, "Kind": KINDS[kind]} for kind, path in engine.snapshots.diff(c.id)]


def upperdir(engine: Engine, c: Container) -> Path:
    return engine.snapshots.upperdir(c.id)
