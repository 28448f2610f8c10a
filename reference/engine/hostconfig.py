"""HostConfig checks and defaults, as dockerd's verifyPlatformContainerSettings and
adaptContainerSettings make them (daemon/daemon_unix.go, Docker 20.10), with its messages.

`check(host_config, sysinfo)` returns warnings for what the kernel cannot do (Docker discards
those settings with a warning rather than failing) and raises ConfigError for what is wrong.
It changes `host_config` in place: the values it fills in (MemorySwap = 2 x Memory, ...) are
what inspect shows and what goes into the OCI spec.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference.errors import ConfigError

MIN_MEMORY = 6 * 1024 * 1024
NAMESPACE_MODES = {
    "IpcMode": ("", "private", "shareable", "host", "none"),
    "PidMode": ("", "host"),
    "UTSMode": ("", "host"),
    "CgroupnsMode": ("", "host", "private"),
}
RESTART_POLICIES = ("", "no")  # others are refused rather than ignored


@dataclass(frozen=True)
class SysInfo:
    """What the host's cgroups offer (moby pkg/sysinfo), read once at daemon start."""

    swap_limit: bool
    oom_kill_disable: bool
    blkio_weight: bool
    cpus: str  # the daemon's cpuset, e.g. "0-1"
    ncpu: int

    @classmethod
    def probe(cls, root: Path = Path("/sys/fs/cgroup")) -> SysInfo:
        memory = root / "memory"
        cpus = ""
        for candidate in (
            root / "cpuset" / "cpuset.effective_cpus",
            root / "cpuset" / "cpuset.cpus",
        ):
            try:
                cpus = candidate.read_text().strip()
                break
            except OSError:
                continue
        return cls(
            swap_limit=(memory / "memory.memsw.limit_in_bytes").exists(),
            oom_kill_disable=(memory / "memory.oom_control").exists(),
            blkio_weight=(root / "blkio" / "blkio.weight").exists(),
            cpus=cpus or f"0-{(os.cpu_count() or 1) - 1}",
            ncpu=os.cpu_count() or 1,
        )


def parse_cpuset(text: str) -> set[int]:
    """'0-2,4' → {0, 1, 2, 4}; ConfigError with Docker's wording if malformed."""
    found: set[int] = set()
    if not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", text):
        raise ConfigError(f"Invalid value {text} for cpuset cpus")
    for part in text.split(","):
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if last < first:
            raise ConfigError(f"Invalid value {text} for cpuset cpus")
        found.update(range(first, last + 1))
    return found


def _int(host_config: dict[str, Any], key: str) -> int:
    value = host_config.get(key) or 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"invalid value for {key}: expected an integer, got {value!r}", obj=key)
    return value


def check_resources(
    host_config: dict[str, Any], sysinfo: SysInfo, *, update: bool = False
) -> list[str]:
    """Memory, CPU, pids and blkio settings; also used by `update` (update=True)."""
    warnings: list[str] = []
    memory, swap = _int(host_config, "Memory"), _int(host_config, "MemorySwap")
    if memory and memory < MIN_MEMORY:
        raise ConfigError("Minimum memory limit allowed is 6MB")
    if swap > 0 and memory == 0 and not update:
        raise ConfigError(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    if memory > 0 and swap > 0 and swap < memory:
        raise ConfigError("Minimum memoryswap limit should be larger than memory limit, see usage")
    if memory > 0 and swap == 0 and not update:
        host_config["MemorySwap"] = 2 * memory if sysinfo.swap_limit else -1
    if (memory or swap) and not sysinfo.swap_limit and swap != 0:
        warnings.append(
            "Your kernel does not support swap limit capabilities or the cgroup is not "
            "mounted. Memory limited without swap."
        )
        host_config["MemorySwap"] = -1
    swappiness = host_config.get("MemorySwappiness")
    if swappiness is not None and swappiness != -1 and not 0 <= swappiness <= 100:
        raise ConfigError(f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
    if host_config.get("OomKillDisable"):
        if not sysinfo.oom_kill_disable:
            warnings.append(
                "Your kernel does not support OomKillDisable. OomKillDisable discarded."
            )
            host_config["OomKillDisable"] = False
        elif memory == 0 and not update:
            warnings.append(
                "OOM killer is disabled for the container, but no memory limit is set, this "
                "can result in the system running out of resources."
            )
    nano, period, quota = (_int(host_config, k) for k in ("NanoCpus", "CpuPeriod", "CpuQuota"))
    if nano and period:
        raise ConfigError("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano and quota:
        raise ConfigError("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano < 0 or nano > sysinfo.ncpu * 10**9:
        raise ConfigError(
            f"Range of CPUs is from 0.01 to {sysinfo.ncpu}.00, as there are only "
            f"{sysinfo.ncpu} CPUs available"
        )
    if period and not 1000 <= period <= 1_000_000:
        raise ConfigError(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        )
    if quota > 0 and quota < 1000:
        raise ConfigError("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    shares = _int(host_config, "CpuShares")
    if shares < 0:
        raise ConfigError("CPU shares can not be negative")
    cpuset = host_config.get("CpusetCpus") or ""
    if cpuset:
        wanted = parse_cpuset(cpuset)
        available = parse_cpuset(sysinfo.cpus) if sysinfo.cpus else wanted
        if not wanted <= available:
            raise ConfigError(
                f"Requested CPUs are not available - requested {cpuset}, available: {sysinfo.cpus}"
            )
    weight = _int(host_config, "BlkioWeight")
    if weight and not 10 <= weight <= 1000:
        raise ConfigError("Range of blkio weight is from 10 to 1000")
    if weight and not sysinfo.blkio_weight:
        warnings.append(
            "Your kernel does not support Block I/O weight or the cgroup is not mounted. "
            "Weight discarded."
        )
        host_config["BlkioWeight"] = 0
    pids = host_config.get("PidsLimit")
    if pids is not None and not isinstance(pids, int):
        raise ConfigError(f"invalid value for PidsLimit: {pids!r}", obj="PidsLimit")
    return warnings


def check_modes(host_config: dict[str, Any], config: dict[str, Any]) -> None:
    for key, allowed in NAMESPACE_MODES.items():
        mode = host_config.get(key) or ""
        if mode in allowed or (key in ("IpcMode", "PidMode") and mode.startswith("container:")):
            continue
        noun = {
            "IpcMode": "IPC",
            "PidMode": "PID",
            "UTSMode": "UTS",
            "CgroupnsMode": "cgroup namespace",
        }[key]
        raise ConfigError(f"invalid {noun} mode: {mode}")
    network = host_config.get("NetworkMode") or "default"
    if network.startswith("container:"):
        raise ConfigError("--network container:<name> is not supported by refd yet")
    if host_config.get("Init"):
        raise ConfigError("--init is not supported by refd (it ships no init binary)")
    if host_config.get("UTSMode") == "host" and config.get("Hostname"):
        raise ConfigError("conflicting options: hostname and the UTS mode")
    if host_config.get("UTSMode") == "host" and config.get("Domainname"):
        raise ConfigError("conflicting options: domainname and the UTS mode")
    hostname = config.get("Hostname") or ""
    if len(hostname.encode()) > 64:
        raise ConfigError(f'hostname "{hostname}" is too long (maximum 64 bytes)')
    shm = _int(host_config, "ShmSize")
    if shm < 0:
        raise ConfigError("SHM size can not be less than 0")
    score = _int(host_config, "OomScoreAdj")
    if not -1000 <= score <= 1000:
        raise ConfigError(f"Invalid value {score}, range for oom score adj is [-1000, 1000]")
    policy = (host_config.get("RestartPolicy") or {}).get("Name", "")
    if policy not in RESTART_POLICIES:
        raise ConfigError(f'restart policy {policy!r} is not supported by refd (only "no")')
