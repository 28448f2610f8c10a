"""GET /containers/{id}/stats: Docker's StatsJSON from the container's cgroups.

Usage comes from reference.cgroups (`new_manager(path).stats()`); what that summary does not
carry but the docker CLI uses (memory.stat's inactive file pages, which it subtracts from
usage; per-CPU usage; the host's total CPU time from /proc/stat) is read here. memory_stats
.usage is the raw memory.usage_in_bytes (v1) / memory.current (v2), as Docker 20.10 reports it;
an unlimited container's limit is the host's RAM, as Docker shows it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reference.engine.store import now_rfc3339

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def system_cpu_ns() -> int:
    """The `cpu` line of /proc/stat (user..steal) in nanoseconds, as Docker computes it."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu "):
            ticks = sum(int(v) for v in line.split()[1:8])
            return ticks * 10**9 // CLOCK_TICKS
    return 0


def host_memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _keyed(path: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if value.strip().lstrip("-").isdigit():
                found[key] = int(value)
    except OSError:
        pass
    return found


def _empty() -> dict[str, Any]:
    return {
        "read": "0001-01-01T00:00:00Z",
        "preread": "0001-01-01T00:00:00Z",
        "pids_stats": {},
        "blkio_stats": {
            "io_service_bytes_recursive": None,
            "io_serviced_recursive": None,
            "io_queue_recursive": None,
            "io_service_time_recursive": None,
            "io_wait_time_recursive": None,
            "io_merged_recursive": None,
            "io_time_recursive": None,
            "sectors_recursive": None,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": {
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "precpu_stats": {
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "memory_stats": {},
    }


def sample(cgroups_path: str) -> dict[str, Any]:
    """One reading: the cpu_stats/memory_stats/pids_stats/blkio_stats parts of StatsJSON."""
    from reference.cgroups.manager import new_manager

    manager = new_manager(cgroups_path)
    stats = manager.stats()
    dirs: dict[str, Path] = getattr(manager, "dirs", {}) or {}
    v2_dir: Path | None = getattr(manager, "dir", None)
    memory_dir = dirs.get("memory") or v2_dir
    memory_stat = _keyed(memory_dir / "memory.stat") if memory_dir else {}
    cpuacct = dirs.get("cpuacct")
    percpu: list[int] = []
    if cpuacct is not None:
        try:
            percpu = [int(v) for v in (cpuacct / "cpuacct.usage_percpu").read_text().split()]
        except OSError:
            percpu = []
    usage = stats.memory.usage or 0
    memory: dict[str, Any] = {
        "usage": usage,
        "max_usage": stats.memory.max_usage or 0,
        "stats": memory_stat,
        "failcnt": stats.memory.failcnt or 0,
        "limit": stats.memory.limit or host_memory(),
    }
    cpu_total = stats.cpu.usage_ns or 0
    cpu_stat = _keyed(cpuacct / "cpuacct.stat") if cpuacct is not None else {}
    return {
        "cpu_stats": {
            "cpu_usage": {
                "total_usage": cpu_total,
                **({"percpu_usage": percpu} if percpu else {}),
                "usage_in_kernelmode": cpu_stat.get("system", 0) * 10**9 // CLOCK_TICKS,
                "usage_in_usermode": cpu_stat.get("user", 0) * 10**9 // CLOCK_TICKS,
            },
            "system_cpu_usage": system_cpu_ns(),
            "online_cpus": os.cpu_count() or 1,
            "throttling_data": {
                "periods": stats.cpu.nr_periods or 0,
                "throttled_periods": stats.cpu.nr_throttled or 0,
                "throttled_time": stats.cpu.throttled_ns or 0,
            },
        },
        "memory_stats": memory,
        "pids_stats": {
            "current": stats.pids.current or 0,
            **({"limit": stats.pids.limit} if stats.pids.limit else {}),
        },
    }


def document(
    cid: str, name: str, cgroups_path: str | None, previous: dict[str, Any] | None
) -> dict[str, Any]:
    """The whole StatsJSON; `previous` is an earlier sample (precpu_stats), or None."""
    out = _empty()
    out.update(id=cid, name=name)
    if cgroups_path is None:
        return out  # not running: Docker answers zeros
    current = sample(cgroups_path)
    out.update(current)
    out["read"] = now_rfc3339()
    out["num_procs"] = 0
    if previous is not None:
        out["precpu_stats"] = previous["cpu_stats"]
        out["preread"] = previous.get("read", out["preread"])
    return out
