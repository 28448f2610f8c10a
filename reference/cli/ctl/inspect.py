"""inspect (containers, then images, as docker does without --type), image inspect, and
stats --no-stream with the docker CLI's arithmetic (CPU % from two samples, memory usage
without inactive file pages)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from reference.cli.ctl import output, template
from reference.cli.ctl.client import ApiError
from reference.cli.ctl.common import Ctx, err, print_json
from reference.cli.ctl.flags import UsageError, flag, parse
from reference.engine.units import bytes_size, human_size

SPEC = [flag("--format,-f"), flag("--type"), flag("--size,-s", "bool", False)]


def _lookup(ctx: Ctx, name: str, kind: str | None) -> Any:
    kinds = [kind] if kind else ["container", "image"]
    for k in kinds:
        path = f"/containers/{name}/json" if k == "container" else f"/images/{name}/json"
        try:
            return ctx.client.get(path)
        except ApiError as e:
            if e.status != 404:
                raise
    return None


def inspect(ctx: Ctx, argv: Sequence[str], kind: str | None = None) -> int:
    values, names = parse(ctx.verb, argv, SPEC)
    kind = kind or values["type"]
    if kind not in (None, "container", "image"):
        raise UsageError(ctx.verb, f'"{kind}" is not a valid value for --type')
    if not names:
        raise UsageError(ctx.verb, f'"refctl {ctx.verb}" requires at least 1 argument.')
    found, missing = [], False
    for name in names:
        document = _lookup(ctx, name, kind)
        if document is None:
            missing = True
            noun = {"container": "container", "image": "image"}.get(kind or "", "object")
            err(f"Error: No such {noun}: {name}")
            continue
        found.append(document)
    return 1 if emit_documents(found, values["format"]) or missing else 0


def emit_documents(found: list[Any], fmt: str | None) -> int:
    """`inspect`'s output: each document through the --format template, or all as a JSON
    array; 1 after a template error (reported), else 0."""
    if fmt:
        try:
            output.emit("".join(template.render(fmt, d) + "\n" for d in found))
        except template.TemplateError as e:
            err(f"template parsing error: {e}")
            return 1
    else:
        print_json(found)
    return 0


def image_inspect(ctx: Ctx, argv: Sequence[str]) -> int:
    return inspect(ctx, argv, "image")


def _cpu_percent(stats: dict[str, Any]) -> float:
    cpu, pre = stats["cpu_stats"], stats["precpu_stats"]
    delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
    system = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or len(cpu["cpu_usage"].get("percpu_usage") or []) or 1
    return delta / system * cpus * 100.0 if system > 0 and delta > 0 else 0.0


def _memory(stats: dict[str, Any]) -> tuple[float, float]:
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage", 0)
    details = memory.get("stats") or {}
    # docker CLI (stats_helpers.go): v1 subtracts total_inactive_file, v2 inactive_file
    inactive = details.get("total_inactive_file", details.get("inactive_file", 0))
    return max(0, usage - inactive), memory.get("limit", 0)


def stats(ctx: Ctx, argv: Sequence[str]) -> int:
    spec = [
        flag("--no-stream", "bool", False),
        flag("--all,-a", "bool", False),
        flag("--format"),
        flag("--no-trunc", "bool", False),
    ]
    values, names = parse(ctx.verb, argv, spec)
    if not values["no_stream"]:
        raise UsageError(ctx.verb, "only --no-stream is supported by refctl")
    if not names:
        listed = ctx.client.get("/containers/json", {"all": values["all"]})
        names = [c["Id"] for c in listed]
    rows, failed = [], False
    for name in names:
        try:
            s = ctx.client.get(f"/containers/{name}/stats", {"stream": 0})
        except ApiError as e:
            err(f"Error response from daemon: {e}")
            failed = True
            continue
        used, limit = _memory(s)
        blkio = (s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
        read = sum(e.get("value", 0) for e in blkio if e.get("op", "").lower() == "read")
        write = sum(e.get("value", 0) for e in blkio if e.get("op", "").lower() == "write")
        nets = s.get("networks") or {}
        rx = sum(n.get("rx_bytes", 0) for n in nets.values())
        tx = sum(n.get("tx_bytes", 0) for n in nets.values())
        rows.append(
            {
                "Container": name,
                "ID": s["id"][:12] if not values["no_trunc"] else s["id"],
                "Name": s.get("name", "").lstrip("/"),
                "CPUPerc": f"{_cpu_percent(s):.2f}%",
                "MemUsage": f"{bytes_size(used)} / {bytes_size(limit)}",
                "MemPerc": f"{(used / limit * 100 if limit else 0):.2f}%",
                "NetIO": f"{human_size(rx)} / {human_size(tx)}",
                "BlockIO": f"{human_size(read)} / {human_size(write)}",
                "PIDs": str((s.get("pids_stats") or {}).get("current", 0)),
            }
        )
    headers = {
        "Container": "CONTAINER",
        "ID": "CONTAINER ID",
        "Name": "NAME",
        "CPUPerc": "CPU %",
        "MemUsage": "MEM USAGE / LIMIT",
        "MemPerc": "MEM %",
        "NetIO": "NET I/O",
        "BlockIO": "BLOCK I/O",
        "PIDs": "PIDS",
    }
    if values["format"]:
        output.emit(output.formatted(values["format"], rows, headers))
    else:
        cols = ["ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs"]
        output.emit(output.table([headers[c] for c in cols], [[r[c] for c in cols] for r in rows]))
    sys.stdout.flush()
    return 1 if failed else 0
