"""Resource usage of one cgroup, in the same units on v1 and v2 (bytes, nanoseconds, counts).

A field is None when the host does not expose it (no memsw, no memory.peak, no pids controller),
and a limit is None when it is unlimited, so callers never see v1's 2**63-4096 "no limit" value.
"""

from __future__ import annotations

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see reference/records.py
if TYPE_CHECKING:
    from dataclasses import dataclass, field
else:
    from reference.records import dataclass, field

# v1 reports "no limit" as PAGE_COUNTER_MAX pages in bytes (2**63 - page size), give or take
# the page size; anything this large is not a limit anyone set.
V1_UNLIMITED_FLOOR = 2**62


def limit_or_none(value: int | None) -> int | None:
    return None if value is None or value >= V1_UNLIMITED_FLOOR else value


@dataclass(frozen=True)
class MemoryStats:
    usage: int | None = None
    limit: int | None = None
    max_usage: int | None = None  # high-water mark (v1 max_usage_in_bytes, v2 memory.peak)
    failcnt: int | None = None  # times the limit was hit (v2: memory.events "max")
    oom_kill: int | None = None
    under_oom: bool = False  # v1 only: the group is paused in OOM (oom_kill_disable=1)


@dataclass(frozen=True)
class CpuStats:
    usage_ns: int | None = None
    nr_periods: int | None = None
    nr_throttled: int | None = None
    throttled_ns: int | None = None


@dataclass(frozen=True)
class PidsStats:
    current: int | None = None
    limit: int | None = None


@dataclass(frozen=True)
class Stats:
    memory: MemoryStats = field(default_factory=MemoryStats)
    cpu: CpuStats = field(default_factory=CpuStats)
    pids: PidsStats = field(default_factory=PidsStats)
