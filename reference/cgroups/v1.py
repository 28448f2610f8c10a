"""cgroup v1 driver: one directory per controller, like runc's cgroupfs (`libcontainer/cgroups/fs`).

Controllers that are not mounted are skipped at create/join time; asking for a resource of one
of them raises `UnsupportedError`, so a limit is never silently dropped.

Directories are kept as strings (`dirs` hands out pathlib.Paths, importing pathlib only then):
`refrun create` and `delete` build a manager on every call and pathlib costs ~10 ms to import.
"""

from __future__ import annotations

import errno
import os

from reference.cgroups import _fs
from reference.cgroups.mounts import Mount, cgroup_path, v1_mounts
from reference.errors import CgroupError, UnsupportedError

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see reference/records.py
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Literal

    from reference.cgroups.resources import BlockIO, Cpu, Memory, Resources
    from reference.cgroups.stats import Stats
    from reference.linux.syscall import StrPath

# The directory whose cgroup.procs answers pids(): any would do once joined; devices is runc's pick.
_PIDS_FROM = ("devices", "freezer", "memory", "pids", "cpu", "cpuacct", "cpuset", "blkio")


class V1Manager:
    def __init__(
        self,
        cgroups_path: str,
        dirs: Mapping[str, StrPath],
        *,
        mount_dirs: Mapping[str, StrPath],
        root: StrPath = "/",
        timeout: float = 5.0,
    ) -> None:
        self._path = cgroups_path
        self._dirs = {c: os.path.normpath(d) for c, d in dirs.items()}
        self._mount_dirs = {c: os.path.normpath(d) for c, d in mount_dirs.items()}
        self._fake = os.path.normpath(root) != "/"
        self._timeout = timeout

    @classmethod
    def from_mounts(
        cls,
        cgroups_path: str,
        mounts: list[Mount],
        *,
        own: Mapping[str, str] | None,
        root: StrPath = "/",
        timeout: float = 5.0,
    ) -> V1Manager:
        found = v1_mounts(mounts)
        dirs = {c: cgroup_path(m, cgroups_path, own, c, root) for c, m in found.items()}
        mount_dirs = {c: m.host_dir(root) for c, m in found.items()}
        return cls(cgroups_path, dirs, mount_dirs=mount_dirs, root=root, timeout=timeout)

    @property
    def path(self) -> str:
        return self._path

    @property
    def dirs(self) -> dict[str, Path]:
        """Controller → directory of this cgroup (co-mounted controllers share one)."""
        from pathlib import Path

        return {c: Path(d) for c, d in self._dirs.items()}

    def describe(self) -> dict[str, object]:
        """What `reference.cgroups.factory.from_description` rebuilds this manager from."""
        return {
            "driver": "v1",
            "path": self._path,
            "dirs": dict(self._dirs),
            "mount_dirs": dict(self._mount_dirs),
        }

    def _dir(self, controller: str) -> str:
        try:
            return self._dirs[controller]
        except KeyError:
            raise UnsupportedError(
                f"the v1 {controller} controller is not mounted", obj=self._path
            ) from None

    def _unique_dirs(self) -> list[str]:
        return list(dict.fromkeys(self._dirs.values()))

    def create(self) -> None:
        for d in self._unique_dirs():
            _fs.mkdir(d, fake=self._fake)
        if "cpuset" in self._dirs:
            self._fill_cpuset()

    def _fill_cpuset(self) -> None:
        # A new v1 cpuset starts with empty cpus/mems and then refuses every task (ENOSPC), so each
        # level between the mount and our cgroup gets its parent's lists unless it has its own.
        target, top = self._dirs["cpuset"], self._mount_dirs["cpuset"]
        chain = _fs.ancestry(target)
        for d in reversed(chain[: chain.index(top)] if top in chain else [target]):
            for name in ("cpuset.cpus", "cpuset.mems"):
                f = os.path.join(d, name)
                if os.path.exists(f) and not _fs.read(f).strip():
                    _fs.write(f, _fs.read(os.path.join(os.path.dirname(d), name)).strip())

    def apply(self, pid: int) -> None:
        self.create()
        for d in self._unique_dirs():
            _fs.write(os.path.join(d, "cgroup.procs"), pid)

    def set(self, resources: Resources) -> None:
        # runc's subsystem order: cpuset, devices, memory, cpu, pids, blkio.
        cpu = resources.cpu
        if cpu is not None and (cpu.cpus is not None or cpu.mems is not None):
            d = self._dir("cpuset")
            if cpu.cpus is not None:
                _fs.write(os.path.join(d, "cpuset.cpus"), cpu.cpus)
            if cpu.mems is not None:
                _fs.write(os.path.join(d, "cpuset.mems"), cpu.mems)
        if resources.devices:
            d = self._dir("devices")
            for rule in resources.devices:
                _fs.write(
                    os.path.join(d, "devices.allow" if rule.allow else "devices.deny"),
                    rule.v1_line(),
                )
        if resources.memory is not None:
            self._set_memory(self._dir("memory"), resources.memory)
        if cpu is not None:
            self._set_cpu(cpu)
        if resources.pids is not None:
            limit = resources.pids.limit
            _fs.write(
                os.path.join(self._dir("pids"), "pids.max"), "max" if limit is None else limit
            )
        if resources.block_io is not None:
            self._set_blkio(self._dir("blkio"), resources.block_io)

    def _set_memory(self, d: str, mem: Memory) -> None:
        limit, swap = mem.limit, mem.swap
        memsw = os.path.join(d, "memory.memsw.limit_in_bytes")
        has_memsw = os.path.exists(memsw)  # absent when the kernel runs without swap accounting
        if limit == -1 and swap is None and has_memsw:
            # "Unlimited memory" must lift memsw too, or the old memsw keeps capping the group.
            swap = -1
        if swap is not None and not has_memsw:
            _fs.warn(__name__, "swap limit ignored: no memory.memsw.limit_in_bytes in %s", d)
            swap = None
        mem_file = os.path.join(d, "memory.limit_in_bytes")
        if limit is not None and swap is not None:
            # The kernel insists on limit <= memsw after each write: when raising, memsw goes
            # first; when lowering, limit goes first (runc's setMemoryAndSwap).
            current = _fs.read_int(mem_file)
            if swap == -1 or (current is not None and current < swap):
                _fs.write(memsw, swap)
                _fs.write(mem_file, limit)
            else:
                _fs.write(mem_file, limit)
                _fs.write(memsw, swap)
        elif limit is not None:
            _fs.write(mem_file, limit)
        elif swap is not None:
            _fs.write(memsw, swap)
        if mem.reservation is not None:
            _fs.write(os.path.join(d, "memory.soft_limit_in_bytes"), mem.reservation)
        if mem.swappiness is not None:
            _fs.write(os.path.join(d, "memory.swappiness"), mem.swappiness)
        if mem.disable_oom_killer is not None:
            _fs.write(os.path.join(d, "memory.oom_control"), int(mem.disable_oom_killer))

    def _set_cpu(self, cpu: Cpu) -> None:
        knobs = (cpu.shares, cpu.quota, cpu.period, cpu.realtime_period, cpu.realtime_runtime)
        if all(v is None for v in knobs):
            return
        d = self._dir("cpu")
        if cpu.shares is not None:
            _fs.write(os.path.join(d, "cpu.shares"), cpu.shares)
            # The kernel clamps silently; read back so an out-of-range value is an error.
            actual = _fs.read_int(os.path.join(d, "cpu.shares"))
            if actual != cpu.shares:
                raise CgroupError(
                    f"cpu.shares {cpu.shares} was clamped by the kernel to {actual}", obj=d
                )
        period_pending = False
        if cpu.period is not None:
            try:
                _fs.write(os.path.join(d, "cpu.cfs_period_us"), cpu.period)
            except CgroupError as e:
                # A shorter period can break the parent's quota until the new quota is in:
                # EINVAL then, so retry after the quota (as runc does).
                cause = e.__cause__
                if (
                    cpu.quota is None
                    or not isinstance(cause, OSError)
                    or cause.errno != errno.EINVAL
                ):
                    raise
                period_pending = True
        if cpu.quota is not None:
            _fs.write(os.path.join(d, "cpu.cfs_quota_us"), cpu.quota)
            if period_pending:
                _fs.write(os.path.join(d, "cpu.cfs_period_us"), cpu.period or 0)
        # Period before runtime: the runtime is checked against the period in force.
        if cpu.realtime_period is not None:
            _fs.write(os.path.join(d, "cpu.rt_period_us"), cpu.realtime_period)
        if cpu.realtime_runtime is not None:
            _fs.write(os.path.join(d, "cpu.rt_runtime_us"), cpu.realtime_runtime)

    def _set_blkio(self, d: str, bio: BlockIO) -> None:
        # With the BFQ scheduler (CFQ is gone since 5.0) the weight files carry a bfq. prefix.
        prefix = "blkio." if os.path.exists(os.path.join(d, "blkio.weight")) else "blkio.bfq."
        if bio.weight is not None:
            _fs.write(os.path.join(d, f"{prefix}weight"), bio.weight)
        if bio.leaf_weight is not None:
            _fs.write(os.path.join(d, "blkio.leaf_weight"), bio.leaf_weight)
        for wd in bio.weight_device:
            if wd.weight is not None:
                _fs.write(
                    os.path.join(d, f"{prefix}weight_device"), f"{wd.major}:{wd.minor} {wd.weight}"
                )
            if wd.leaf_weight is not None:
                _fs.write(
                    os.path.join(d, "blkio.leaf_weight_device"),
                    f"{wd.major}:{wd.minor} {wd.leaf_weight}",
                )
        throttles = (
            (bio.throttle_read_bps_device, "read_bps_device"),
            (bio.throttle_write_bps_device, "write_bps_device"),
            (bio.throttle_read_iops_device, "read_iops_device"),
            (bio.throttle_write_iops_device, "write_iops_device"),
        )
        for devices, name in throttles:
            # One device per write: the kernel parses a single "major:minor value" line.
            for td in devices:
                _fs.write(
                    os.path.join(d, f"blkio.throttle.{name}"), f"{td.major}:{td.minor} {td.rate}"
                )

    def freeze(self) -> None:
        state = os.path.join(self._dir("freezer"), "freezer.state")

        def frozen() -> bool:
            # Re-writing FROZEN is how a stuck FREEZING is retried (freezer-subsystem.txt).
            _fs.write(state, "FROZEN")
            return _fs.read(state).strip() == "FROZEN"

        if not _fs.poll(frozen, timeout=self._timeout):
            current = _fs.read(state).strip()
            # Never leave a half-frozen container behind: some of its tasks would be stuck.
            _fs.write(state, "THAWED")
            raise CgroupError(
                f"not frozen after {self._timeout}s (state {current}); thawed again", obj=state
            )

    def thaw(self) -> None:
        state = os.path.join(self._dir("freezer"), "freezer.state")
        _fs.write(state, "THAWED")
        if not _fs.poll(lambda: _fs.read(state).strip() == "THAWED", timeout=self._timeout):
            raise CgroupError(f"not thawed after {self._timeout}s", obj=state)

    def state(self) -> Literal["THAWED", "FROZEN"]:
        d = self._dirs.get("freezer")
        if d is None or not os.path.isdir(d):
            return "THAWED"
        if _fs.read(os.path.join(d, "freezer.state")).strip() != "FROZEN":
            return "THAWED"  # FREEZING is not paused yet: tasks may still run
        # FROZEN is also reported when only an ancestor is frozen; that is not our pause.
        self_freezing = os.path.join(d, "freezer.self_freezing")
        if os.path.exists(self_freezing) and _fs.read(self_freezing).strip() == "0":
            return "THAWED"
        return "FROZEN"

    def pids(self) -> list[int]:
        for c in _PIDS_FROM:
            d = self._dirs.get(c)
            if d is not None:
                return _fs.procs(d) if os.path.isdir(d) else []
        return []

    def stats(self) -> Stats:
        # Imported here: the runtime CLI builds managers on every call, the engine asks for stats.
        from reference.cgroups.stats import CpuStats, MemoryStats, PidsStats, Stats, limit_or_none

        mem = self._dirs.get("memory")
        cpu, cpuacct, pids = (self._dirs.get(c) for c in ("cpu", "cpuacct", "pids"))
        memory = MemoryStats()
        if mem is not None:
            oom = _opt_keyed(os.path.join(mem, "memory.oom_control"))
            memory = MemoryStats(
                usage=_opt_int(os.path.join(mem, "memory.usage_in_bytes")),
                limit=limit_or_none(_opt_int(os.path.join(mem, "memory.limit_in_bytes"))),
                max_usage=_opt_int(os.path.join(mem, "memory.max_usage_in_bytes")),
                failcnt=_opt_int(os.path.join(mem, "memory.failcnt")),
                oom_kill=oom.get("oom_kill"),
                under_oom=bool(oom.get("under_oom", 0)),
            )
        cpu_stat = _opt_keyed(os.path.join(cpu, "cpu.stat")) if cpu is not None else {}
        return Stats(
            memory=memory,
            cpu=CpuStats(
                usage_ns=_opt_int(os.path.join(cpuacct, "cpuacct.usage"))
                if cpuacct is not None
                else None,
                nr_periods=cpu_stat.get("nr_periods"),
                nr_throttled=cpu_stat.get("nr_throttled"),
                throttled_ns=cpu_stat.get("throttled_time"),
            ),
            pids=PidsStats(
                current=_opt_int(os.path.join(pids, "pids.current")) if pids is not None else None,
                limit=_opt_int(os.path.join(pids, "pids.max")) if pids is not None else None,
            ),
        )

    def oom_kill_count(self) -> int:
        # "oom_kill" appeared in memory.oom_control in 4.13; older kernels have no count.
        return _fs.read_keyed(os.path.join(self._dir("memory"), "memory.oom_control")).get(
            "oom_kill", 0
        )

    def destroy(self) -> None:
        # Try every hierarchy even if one fails, so that a retry has less left to do.
        first: CgroupError | None = None
        for d in self._unique_dirs():
            try:
                _fs.remove(d, fake=self._fake)
            except CgroupError as e:
                first = first or e
        if first is not None:
            raise first

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self._dirs.values())


def _opt_int(path: str) -> int | None:
    return _fs.read_int(path) if os.path.exists(path) else None


def _opt_keyed(path: str) -> dict[str, int]:
    return _fs.read_keyed(path) if os.path.exists(path) else {}
