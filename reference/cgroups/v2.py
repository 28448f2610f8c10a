"""cgroup v2 driver: one directory in the unified hierarchy, like runc's `fs2`.

OCI resources are written in v1 terms; the conversions (shares → weight, memory+swap → swap,
blkio weight → io weight) follow runc so that the same config means the same thing on both.
The directory is kept as a string, as in v1.py (`dir` hands out a pathlib.Path).
"""

from __future__ import annotations

import os

from reference.cgroups import _fs
from reference.cgroups.mounts import UNIFIED, Mount, cgroup_path, v2_mount
from reference.errors import CgroupError, ConfigError, UnsupportedError

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see reference/records.py
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Literal

    from reference.cgroups.resources import BlockIO, Cpu, Memory, Resources
    from reference.cgroups.stats import Stats
    from reference.linux.syscall import StrPath

# Controllers enabled for our subtree; only the ones we have resources for (runc enables all).
WANTED = ("cpu", "cpuset", "io", "memory", "pids")
_MEM = "linux.resources.memory"


def shares_to_weight(shares: int) -> int:
    """v1 cpu.shares [2, 262144] → v2 cpu.weight [1, 10000], runc's linear map (1024 → 39)."""
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """v1 blkio weight [10, 1000] → v2 io.weight [1, 10000], runc's linear map."""
    return 1 + ((weight - 10) * 9999) // 990


def swap_to_v2(swap: int | None, limit: int | None) -> int | None:
    """OCI swap (memory+swap) → memory.swap.max (swap alone); -1 is "max", None "leave alone"."""
    if limit == -1 and swap is None:
        return -1  # unlimited memory also lifts swap, as v1's memsw would be lifted
    if swap is None or swap == -1:
        return swap
    if limit is None or limit == -1:
        raise ConfigError("a swap limit needs a memory limit", obj=f"{_MEM}.swap")
    if swap < limit:
        raise ConfigError(f"{swap} is below memory.limit {limit}", obj=f"{_MEM}.swap")
    return swap - limit


def _max(value: int) -> str:
    return "max" if value == -1 else str(value)


class V2Manager:
    def __init__(
        self,
        cgroups_path: str,
        directory: StrPath,
        *,
        mount_dir: StrPath,
        root: StrPath = "/",
        timeout: float = 5.0,
        oom_group: bool = True,
    ) -> None:
        self._path = cgroups_path
        self._dir = os.path.normpath(directory)
        self._mount_dir = os.path.normpath(mount_dir)
        self._fake = os.path.normpath(root) != "/"
        self._timeout = timeout
        self._oom_group = oom_group

    @classmethod
    def from_mounts(
        cls,
        cgroups_path: str,
        mounts: list[Mount],
        *,
        own: Mapping[str, str] | None,
        root: StrPath = "/",
        timeout: float = 5.0,
    ) -> V2Manager:
        m = v2_mount(mounts)
        if m is None:
            raise CgroupError("no cgroup2 filesystem is mounted", obj=cgroups_path)
        directory = cgroup_path(m, cgroups_path, own, UNIFIED, root)
        return cls(cgroups_path, directory, mount_dir=m.host_dir(root), root=root, timeout=timeout)

    @property
    def path(self) -> str:
        return self._path

    @property
    def dir(self) -> Path:
        from pathlib import Path

        return Path(self._dir)

    def describe(self) -> dict[str, object]:
        """What `reference.cgroups.factory.from_description` rebuilds this manager from."""
        return {"driver": "v2", "path": self._path, "dir": self._dir, "mount_dir": self._mount_dir}

    def _file(self, name: str) -> str:
        return os.path.join(self._dir, name)

    def create(self) -> None:
        # A controller's files appear in a cgroup only once its parent lists the controller in
        # cgroup.subtree_control, so enable them top-down from the mount to our parent.
        chain = _fs.ancestry(self._dir)
        top = chain.index(self._mount_dir) if self._mount_dir in chain else 1
        for d in reversed(chain[:top]):
            self._enable_controllers(os.path.dirname(d))
            _fs.mkdir(d, fake=self._fake)

    def _enable_controllers(self, d: str) -> None:
        control = os.path.join(d, "cgroup.subtree_control")
        available = set(_fs.read(os.path.join(d, "cgroup.controllers")).split())
        enabled = {c.lstrip("+") for c in _fs.read(control).split()}
        missing = [c for c in WANTED if c in available and c not in enabled]
        if not missing:
            return
        try:
            _fs.write(control, " ".join(f"+{c}" for c in missing))
        except CgroupError:
            # One refusal (e.g. cpu with realtime tasks around) must not cost us the others.
            # A controller left out shows up later as a missing file with a clear error.
            for c in missing:
                try:
                    _fs.write(control, f"+{c}")
                except CgroupError as e:
                    _fs.warn(__name__, "cannot enable the %s controller: %s", c, e)

    def apply(self, pid: int) -> None:
        self.create()
        _fs.write(self._file("cgroup.procs"), pid)

    def set(self, resources: Resources) -> None:
        if resources.devices:
            # v2 has no devices files: it filters with an eBPF program, which this runtime
            # does not load. Refusing beats running a container with no device filter at all.
            raise UnsupportedError(
                "device rules need an eBPF program on cgroup v2; not implemented",
                obj="linux.resources.devices",
            )
        if resources.memory is not None:
            self._set_memory(resources.memory)
        if resources.cpu is not None:
            self._set_cpu(resources.cpu)
        if resources.pids is not None:
            limit = resources.pids.limit
            _fs.write(self._file("pids.max"), "max" if limit is None else limit)
        if resources.block_io is not None:
            self._set_io(resources.block_io)

    def _set_memory(self, mem: Memory) -> None:
        if mem.disable_oom_killer:
            raise UnsupportedError(
                "cgroup v2 has no knob to disable the OOM killer", obj=f"{_MEM}.disableOOMKiller"
            )
        if mem.swappiness is not None:
            raise UnsupportedError(
                "cgroup v2 has no per-cgroup swappiness", obj=f"{_MEM}.swappiness"
            )
        swap = swap_to_v2(mem.swap, mem.limit)
        if swap is not None:
            swap_file = self._file("memory.swap.max")
            if os.path.exists(swap_file):
                _fs.write(swap_file, _max(swap))
            elif swap not in (-1, 0):
                # "max" and "0" ask for nothing a swapless kernel lacks; a real cap does.
                raise UnsupportedError("swap accounting is off (no memory.swap.max)", obj=swap_file)
        if mem.limit is not None:
            _fs.write(self._file("memory.max"), _max(mem.limit))
            group = self._file("memory.oom.group")
            if self._oom_group and os.path.exists(group):
                # Kill the whole container on OOM rather than one process in it, leaving a
                # half-dead workload (kubelet's default on v2 too). Absent before 4.19.
                _fs.write(group, 1)
        if mem.reservation is not None:
            _fs.write(self._file("memory.low"), _max(mem.reservation))

    def _set_cpu(self, cpu: Cpu) -> None:
        if cpu.realtime_period is not None or cpu.realtime_runtime is not None:
            raise UnsupportedError(
                "cgroup v2 has no realtime scheduling budget", obj="linux.resources.cpu.realtime*"
            )
        if cpu.shares is not None:
            _fs.write(self._file("cpu.weight"), shares_to_weight(cpu.shares))
        if cpu.quota is not None or cpu.period is not None:
            cpu_max = self._file("cpu.max")
            if cpu.quota is not None:
                quota = _max(cpu.quota)
            else:
                # Only the period changes: keep the quota in force instead of lifting it.
                quota = (_fs.read(cpu_max).split() or ["max"])[0]
            _fs.write(cpu_max, quota if cpu.period is None else f"{quota} {cpu.period}")
        if cpu.cpus is not None:
            _fs.write(self._file("cpuset.cpus"), cpu.cpus)
        if cpu.mems is not None:
            _fs.write(self._file("cpuset.mems"), cpu.mems)

    def _set_io(self, bio: BlockIO) -> None:
        # BFQ has its own weight file on the v1 scale; otherwise io.weight wants 1..10000.
        # Leaf weights have no v2 counterpart and are ignored, as in runc.
        bfq = self._file("io.bfq.weight")
        if bio.weight is not None:
            if os.path.exists(bfq):
                _fs.write(bfq, bio.weight)
            else:
                _fs.write(self._file("io.weight"), f"default {blkio_to_io_weight(bio.weight)}")
        for wd in bio.weight_device:
            if wd.weight is None:
                continue
            if os.path.exists(bfq):
                _fs.write(bfq, f"{wd.major}:{wd.minor} {wd.weight}")
            else:
                w = blkio_to_io_weight(wd.weight)
                _fs.write(self._file("io.weight"), f"{wd.major}:{wd.minor} {w}")
        limits: dict[tuple[int, int], list[str]] = {}
        for devices, key in (
            (bio.throttle_read_bps_device, "rbps"),
            (bio.throttle_write_bps_device, "wbps"),
            (bio.throttle_read_iops_device, "riops"),
            (bio.throttle_write_iops_device, "wiops"),
        ):
            for td in devices:
                limits.setdefault((td.major, td.minor), []).append(f"{key}={td.rate}")
        # One line per device carrying all its limits; keys not given keep their value.
        for (major, minor), parts in limits.items():
            _fs.write(self._file("io.max"), f"{major}:{minor} {' '.join(parts)}")

    def _frozen(self) -> bool:
        return _fs.read_keyed(self._file("cgroup.events")).get("frozen") == 1

    def freeze(self) -> None:
        freeze = self._file("cgroup.freeze")
        if not os.path.exists(freeze):
            raise UnsupportedError("no cgroup.freeze (kernel before 5.2?)", obj=self._dir)
        _fs.write(freeze, 1)
        # Writing 1 only starts freezing; cgroup.events says when every task has stopped.
        if not _fs.poll(self._frozen, timeout=self._timeout):
            _fs.write(freeze, 0)  # do not leave a half-frozen container behind
            raise CgroupError(
                f"not frozen after {self._timeout}s (cgroup.events never said frozen 1); "
                "thawed again",
                obj=self._dir,
            )

    def thaw(self) -> None:
        # Thawing takes effect at once; runc does not wait for cgroup.events either.
        _fs.write(self._file("cgroup.freeze"), 0)

    def state(self) -> Literal["THAWED", "FROZEN"]:
        freeze = self._file("cgroup.freeze")
        if not os.path.exists(freeze):
            return "THAWED"
        return "FROZEN" if _fs.read(freeze).strip() == "1" else "THAWED"

    def pids(self) -> list[int]:
        return _fs.procs(self._dir) if os.path.isdir(self._dir) else []

    def stats(self) -> Stats:
        # Imported here: the runtime CLI builds managers on every call, the engine asks for stats.
        from reference.cgroups.stats import CpuStats, MemoryStats, PidsStats, Stats

        events = _opt_keyed(self._file("memory.events"))
        cpu = _opt_keyed(self._file("cpu.stat"))
        usec = {k: cpu[k] * 1000 for k in ("usage_usec", "throttled_usec") if k in cpu}
        return Stats(
            memory=MemoryStats(
                usage=_opt_int(self._file("memory.current")),
                limit=_opt_int(self._file("memory.max")),
                max_usage=_opt_int(self._file("memory.peak")),  # 5.19+
                failcnt=events.get("max"),
                oom_kill=events.get("oom_kill"),
            ),
            cpu=CpuStats(
                usage_ns=usec.get("usage_usec"),
                nr_periods=cpu.get("nr_periods"),
                nr_throttled=cpu.get("nr_throttled"),
                throttled_ns=usec.get("throttled_usec"),
            ),
            pids=PidsStats(
                current=_opt_int(self._file("pids.current")),
                limit=_opt_int(self._file("pids.max")),
            ),
        )

    def oom_kill_count(self) -> int:
        return _fs.read_keyed(self._file("memory.events")).get("oom_kill", 0)

    def destroy(self) -> None:
        kill = self._file("cgroup.kill")
        if os.path.exists(kill) and self.pids():
            # 5.14+: SIGKILL every task of the subtree in one write, so rmdir only has to wait
            # for them to be reaped instead of failing on stragglers.
            _fs.write(kill, 1)
        _fs.remove(self._dir, fake=self._fake)

    def exists(self) -> bool:
        return os.path.isdir(self._dir)


def _opt_int(path: str) -> int | None:
    return _fs.read_int(path) if os.path.exists(path) else None


def _opt_keyed(path: str) -> dict[str, int]:
    return _fs.read_keyed(path) if os.path.exists(path) else {}
