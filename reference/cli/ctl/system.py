"""info, version, events."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from reference.cli.ctl import output, template
from reference.cli.ctl.client import ApiError
from reference.cli.ctl.common import Ctx, err
from reference.cli.ctl.flags import flag, parse
from reference.engine.units import bytes_size

CLIENT_VERSION = "0.1.0"


def version(ctx: Ctx, argv: Sequence[str]) -> int:
    values, _ = parse(ctx.verb, argv, [flag("--format,-f")])
    client = {
        "Version": CLIENT_VERSION,
        "ApiVersion": "1.41",
        "Os": "linux",
        "Arch": "amd64",
        "Platform": {"Name": "refctl"},
    }
    try:
        server: Any = ctx.client.get("/version")
    except ApiError as e:
        err(f"Error response from daemon: {e}")
        server = None
    document = {"Client": client, "Server": server}
    if values["format"]:
        output.emit(template.render(values["format"], document) + "\n")
        return 0 if server is not None else 1
    lines = [f"Client: refctl\n Version:\t{CLIENT_VERSION}\n API version:\t1.41\n"]
    if server is not None:
        lines.append(
            f"\nServer: {server.get('Platform', {}).get('Name', '')}\n"
            f" Engine:\n  Version:\t{server.get('Version')}\n"
            f"  API version:\t{server.get('ApiVersion')} (minimum version "
            f"{server.get('MinAPIVersion')})\n  OS/Arch:\t{server.get('Os')}/"
            f"{server.get('Arch')}\n"
        )
    output.emit("".join(lines).expandtabs(16))
    return 0 if server is not None else 1


def info(ctx: Ctx, argv: Sequence[str]) -> int:
    values, _ = parse(ctx.verb, argv, [flag("--format,-f")])
    data = ctx.client.get("/info")
    if values["format"]:
        output.emit(template.render(values["format"], data) + "\n")
        return 0
    registry = data.get("RegistryConfig") or {}
    lines = [
        "Server:",
        f" Containers: {data['Containers']}",
        f"  Running: {data['ContainersRunning']}",
        f"  Paused: {data['ContainersPaused']}",
        f"  Stopped: {data['ContainersStopped']}",
        f" Images: {data['Images']}",
        f" Server Version: {data['ServerVersion']}",
        f" Storage Driver: {data['Driver']}",
        f" Logging Driver: {data['LoggingDriver']}",
        f" Cgroup Driver: {data['CgroupDriver']}",
        f" Cgroup Version: {data['CgroupVersion']}",
        f" Runtimes: {' '.join(sorted(data['Runtimes']))}",
        f" Default Runtime: {data['DefaultRuntime']}",
        f" Security Options:\n  {chr(10).join(data.get('SecurityOptions') or [])}",
        f" Kernel Version: {data['KernelVersion']}",
        f" Operating System: {data['OperatingSystem']}",
        f" OSType: {data['OSType']}",
        f" Architecture: {data['Architecture']}",
        f" CPUs: {data['NCPU']}",
        f" Total Memory: {bytes_size(data['MemTotal'])}",
        f" Name: {data['Name']}",
        f" ID: {data['ID']}",
        f" Docker Root Dir: {data['DockerRootDir']}",
        f" Debug Mode: {str(data['Debug']).lower()}",
        " Insecure Registries:",
        *(f"  {r}" for r in registry.get("InsecureRegistryCIDRs") or []),
        f" Live Restore Enabled: {str(data['LiveRestoreEnabled']).lower()}",
    ]
    output.emit("\n".join(lines) + "\n")
    for warning in data.get("Warnings") or []:
        err(f"WARNING: {warning}")
    return 0


def events(ctx: Ctx, argv: Sequence[str]) -> int:
    spec = [flag("--since"), flag("--until"), flag("--filter,-f", "list"), flag("--format")]
    values, _ = parse(ctx.verb, argv, spec)
    filters: dict[str, dict[str, bool]] = {}
    for item in values["filter"]:
        key, _, value = item.partition("=")
        filters.setdefault(key, {})[value] = True
    query = {
        "since": values["since"],
        "until": values["until"],
        "filters": json.dumps(filters) if filters else None,
    }
    try:
        for event in ctx.client.request("GET", "/events", query).lines():
            if values["format"] == "{{json .}}":
                output.emit(json.dumps(event) + "\n")
            elif values["format"]:
                output.emit(template.render(values["format"], event) + "\n")
            else:
                attrs = ", ".join(
                    f"{k}={v}" for k, v in sorted(event["Actor"]["Attributes"].items())
                )
                output.emit(
                    f"{event['timeNano']} {event['Type']} {event['Action']} "
                    f"{event['Actor']['ID']} ({attrs})\n"
                )
    except KeyboardInterrupt:
        pass
    sys.stdout.flush()
    return 0
