"""Fake cgroup hosts for unit tests: mountinfo samples, and trees of plain files under a root.

The hierarchy roots carry the control files a real kernel would show in a child cgroup, with
kernel-like defaults; `_fs.mkdir` copies them into the cgroups the drivers create. Used by
tests/reference/cgroups (kept here, like `reference.linux.fake`, so tests import it by name).
"""

from __future__ import annotations

import os
from pathlib import Path

from reference.cgroups import _fs
from reference.cgroups.mounts import parse_mountinfo

V1_UNLIMITED = "9223372036854771712"

# This machine's layout: separate cpu and cpuacct, and a cgroup2 holding only hugetlb.
HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

# Classic pure v1 (Debian 9 / CentOS 7 style): cpu,cpuacct co-mounted, optional fields present.
V1_MOUNTINFO = """\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:14 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/pids rw,nosuid shared:15 - cgroup cgroup rw,pids
32 25 0:29 / /sys/fs/cgroup/freezer rw,nosuid shared:16 - cgroup cgroup rw,freezer
33 25 0:30 / /sys/fs/cgroup/cpuset rw,nosuid shared:17 - cgroup cgroup rw,cpuset
34 25 0:31 / /sys/fs/cgroup/blkio rw,nosuid shared:18 - cgroup cgroup rw,blkio
35 25 0:32 / /sys/fs/cgroup/devices rw,nosuid shared:19 - cgroup cgroup rw,devices
36 25 0:33 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid shared:20 - cgroup cgroup rw,net_cls,net_prio
"""

V2_MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
"""

V1_FILES: dict[str, dict[str, str]] = {
    "memory": {
        "memory.limit_in_bytes": V1_UNLIMITED,
        "memory.memsw.limit_in_bytes": V1_UNLIMITED,
        "memory.soft_limit_in_bytes": V1_UNLIMITED,
        "memory.swappiness": "60",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        "memory.usage_in_bytes": "0",
        "memory.max_usage_in_bytes": "0",
        "memory.failcnt": "0",
    },
    "cpu": {
        "cpu.shares": "1024",
        "cpu.cfs_quota_us": "-1",
        "cpu.cfs_period_us": "100000",
        "cpu.rt_period_us": "1000000",
        "cpu.rt_runtime_us": "0",
        "cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
    },
    "cpuacct": {"cpuacct.usage": "0"},
    "cpuset": {"cpuset.cpus": "0-3", "cpuset.mems": "0"},
    "pids": {"pids.max": "max", "pids.current": "0"},
    "blkio": {
        "blkio.weight": "500",
        "blkio.leaf_weight": "500",
        "blkio.weight_device": "",
        "blkio.leaf_weight_device": "",
        "blkio.throttle.read_bps_device": "",
        "blkio.throttle.write_bps_device": "",
        "blkio.throttle.read_iops_device": "",
        "blkio.throttle.write_iops_device": "",
    },
    "freezer": {"freezer.state": "THAWED", "freezer.self_freezing": "0"},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm"},
}

V2_FILES: dict[str, str] = {
    "cgroup.controllers": "cpuset cpu io memory hugetlb pids",
    "cgroup.subtree_control": "",
    "cgroup.events": "populated 0\nfrozen 0\n",
    "cgroup.freeze": "0",
    "cgroup.kill": "",
    "memory.max": "max",
    "memory.swap.max": "max",
    "memory.low": "0",
    "memory.oom.group": "0",
    "memory.current": "0",
    "memory.peak": "0",
    "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
    "cpu.weight": "100",
    "cpu.max": "max 100000",
    "cpu.stat": "usage_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
    "cpuset.cpus": "",
    "cpuset.mems": "",
    "pids.max": "max",
    "pids.current": "0",
    "io.weight": "default 100",
    "io.max": "",
}


def write_files(d: Path, files: dict[str, str]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for name, value in files.items():
        (d / name).write_text(value)
    for name in ("cgroup.procs", "tasks"):
        if not (d / name).exists():
            (d / name).write_text("")


def proc_self(root: Path, mountinfo: str, cgroup: str) -> None:
    (root / "proc/self").mkdir(parents=True, exist_ok=True)
    (root / "proc/self/mountinfo").write_text(mountinfo)
    (root / "proc/self/cgroup").write_text(cgroup)


def make_v1(root: Path, mountinfo: str = HYBRID_MOUNTINFO) -> Path:
    """A v1 (or hybrid) host under `root`; returns root. Mount points come from `mountinfo`."""
    for m in parse_mountinfo(mountinfo):
        files: dict[str, str] = {}
        for c in sorted(m.controllers):
            files.update(V1_FILES.get(c, {}))
        if m.is_v2:
            files = {"cgroup.controllers": "hugetlb", "cgroup.subtree_control": ""}
        write_files(Path(m.host_dir(root)), files)
    # Like this machine: the memory cgroup is not the root one, the others are.
    own = "".join(f"{i}:{c}:/\n" for i, c in enumerate(V1_FILES, 1) if c != "memory")
    proc_self(root, mountinfo, f"{own}9:memory:/user.slice\n10:name=systemd:/\n0::/\n")
    return root


def make_v2(root: Path) -> Path:
    write_files(root / "sys/fs/cgroup", V2_FILES)
    proc_self(root, V2_MOUNTINFO, "0::/user.slice/session-1.scope\n")
    return root


class WriteLog:
    """Records every `_fs.write` as (file name, value) while still performing it."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str]] = []
        self._real = _fs.write

    def __call__(self, path: str | os.PathLike[str], value: str | int) -> None:
        self.writes.append((os.path.basename(path), str(value)))
        self._real(path, value)

    def to(self, name: str) -> list[str]:
        return [v for n, v in self.writes if n == name]
