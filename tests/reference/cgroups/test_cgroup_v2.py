"""The v2 driver on a fake unified tree, and the v1 → v2 value conversions."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference.cgroups import _fs
from reference.cgroups.fake import WriteLog, make_v2
from reference.cgroups.manager import new_manager
from reference.cgroups.resources import Resources
from reference.cgroups.v2 import V2Manager, blkio_to_io_weight, shares_to_weight, swap_to_v2
from reference.errors import CgroupError, ConfigError, UnsupportedError


@pytest.fixture
def mgr(tmp_path: Path) -> V2Manager:
    make_v2(tmp_path)
    m = new_manager("/kube/ctr", root=tmp_path, timeout=0.05)
    assert isinstance(m, V2Manager)
    m.create()
    return m


def read(mgr: V2Manager, name: str) -> str:
    return (mgr.dir / name).read_text()


@pytest.mark.parametrize(
    ("shares", "weight"), [(2, 1), (512, 20), (1024, 39), (4096, 157), (262144, 10000)]
)
def test_shares_to_weight(shares: int, weight: int) -> None:
    assert shares_to_weight(shares) == weight


@pytest.mark.parametrize(("blkio", "io"), [(10, 1), (100, 910), (500, 4950), (1000, 10000)])
def test_blkio_to_io_weight(blkio: int, io: int) -> None:
    assert blkio_to_io_weight(blkio) == io


@pytest.mark.parametrize(
    ("swap", "limit", "expected"),
    [
        (None, None, None),
        (None, 100, None),
        (None, -1, -1),  # unlimited memory lifts swap too
        (-1, 100, -1),
        (300, 100, 200),  # OCI swap is memory+swap
        (100, 100, 0),  # equal: no swap at all
    ],
)
def test_swap_to_v2(swap: int | None, limit: int | None, expected: int | None) -> None:
    assert swap_to_v2(swap, limit) == expected


@pytest.mark.parametrize(("swap", "limit"), [(300, None), (300, -1), (50, 100)])
def test_swap_to_v2_errors(swap: int, limit: int | None) -> None:
    with pytest.raises(ConfigError) as e:
        swap_to_v2(swap, limit)
    assert e.value.obj == "linux.resources.memory.swap"


def test_create_enables_controllers_top_down(mgr: V2Manager, tmp_path: Path) -> None:
    top = tmp_path / "sys/fs/cgroup"
    expected = "+cpu +cpuset +io +memory +pids"  # hugetlb is available but not ours
    assert (top / "cgroup.subtree_control").read_text() == expected
    assert (top / "kube/cgroup.subtree_control").read_text() == expected
    # Not in the leaf: a v2 cgroup with enabled children may not hold processes.
    assert read(mgr, "cgroup.subtree_control") == ""
    assert mgr.exists()


def test_create_skips_enabled_controllers(tmp_path: Path, log: WriteLog) -> None:
    make_v2(tmp_path)
    (tmp_path / "sys/fs/cgroup/cgroup.subtree_control").write_text("cpu io memory pids cpuset\n")
    new_manager("/ctr", root=tmp_path).create()
    assert log.to("cgroup.subtree_control") == []


def test_apply(mgr: V2Manager) -> None:
    mgr.apply(77)
    assert read(mgr, "cgroup.procs") == "77"


def test_set_memory(mgr: V2Manager) -> None:
    memory = {"limit": 64 << 20, "swap": 96 << 20, "reservation": 16 << 20}
    mgr.set(Resources.from_spec({"memory": {**memory, "disableOOMKiller": False}}))
    assert read(mgr, "memory.max") == str(64 << 20)
    assert read(mgr, "memory.swap.max") == str(32 << 20)
    assert read(mgr, "memory.low") == str(16 << 20)
    assert read(mgr, "memory.oom.group") == "1"


def test_unlimited_memory(mgr: V2Manager) -> None:
    mgr.set(Resources.from_spec({"memory": {"limit": -1}}))
    assert read(mgr, "memory.max") == "max"
    assert read(mgr, "memory.swap.max") == "max"


def test_swap_without_swap_accounting(mgr: V2Manager) -> None:
    (mgr.dir / "memory.swap.max").unlink()
    mgr.set(Resources.from_spec({"memory": {"limit": 64 << 20, "swap": 64 << 20}}))  # "0": fine
    with pytest.raises(UnsupportedError, match="swap"):
        mgr.set(Resources.from_spec({"memory": {"limit": 64 << 20, "swap": 96 << 20}}))


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ({"memory": {"disableOOMKiller": True}}, "linux.resources.memory.disableOOMKiller"),
        ({"memory": {"swappiness": 10}}, "linux.resources.memory.swappiness"),
        ({"cpu": {"realtimeRuntime": 1000}}, "linux.resources.cpu.realtime*"),
        ({"devices": [{"allow": False}]}, "linux.resources.devices"),
    ],
)
def test_unsupported_on_v2(mgr: V2Manager, resources: dict[str, object], field: str) -> None:
    with pytest.raises(UnsupportedError) as e:
        mgr.set(Resources.from_spec(resources))
    assert e.value.obj == field


def test_set_cpu(mgr: V2Manager) -> None:
    mgr.set(Resources.from_spec({"cpu": {"shares": 1024, "quota": 50000, "period": 100000}}))
    assert read(mgr, "cpu.weight") == "39"
    assert read(mgr, "cpu.max") == "50000 100000"
    mgr.set(Resources.from_spec({"cpu": {"period": 200000}}))  # keeps the quota
    assert read(mgr, "cpu.max") == "50000 200000"
    mgr.set(Resources.from_spec({"cpu": {"quota": -1}}))
    assert read(mgr, "cpu.max") == "max"
    mgr.set(Resources.from_spec({"cpu": {"cpus": "0-1", "mems": "0"}}))
    assert (read(mgr, "cpuset.cpus"), read(mgr, "cpuset.mems")) == ("0-1", "0")


@pytest.mark.parametrize(("limit", "expected"), [(100, "100"), (-1, "max"), (0, "max")])
def test_set_pids(mgr: V2Manager, limit: int, expected: str) -> None:
    mgr.set(Resources.from_spec({"pids": {"limit": limit}}))
    assert read(mgr, "pids.max") == expected


def test_set_io(mgr: V2Manager, log: WriteLog) -> None:
    dev = {"major": 8, "minor": 0}
    mgr.set(
        Resources.from_spec(
            {
                "blockIO": {
                    "weight": 500,
                    "leafWeight": 300,  # no v2 counterpart: ignored
                    "weightDevice": [{**dev, "weight": 1000}],
                    "throttleReadBpsDevice": [{**dev, "rate": 1000}],
                    "throttleWriteBpsDevice": [{**dev, "rate": 2000}],
                    "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 30}],
                    "throttleWriteIOPSDevice": [{**dev, "rate": 40}],
                }
            }
        )
    )
    assert log.to("io.weight") == ["default 4950", "8:0 10000"]
    assert log.to("io.max") == ["8:0 rbps=1000 wbps=2000 wiops=40", "8:16 riops=30"]


def test_io_weight_under_bfq(mgr: V2Manager) -> None:
    (mgr.dir / "io.bfq.weight").write_text("default 100")
    mgr.set(Resources.from_spec({"blockIO": {"weight": 500}}))
    assert read(mgr, "io.bfq.weight") == "500"


def test_freeze_thaw_state(mgr: V2Manager) -> None:
    (mgr.dir / "cgroup.events").write_text("populated 1\nfrozen 1\n")  # what the kernel would say
    mgr.freeze()
    assert read(mgr, "cgroup.freeze") == "1"
    assert mgr.state() == "FROZEN"
    mgr.thaw()
    assert read(mgr, "cgroup.freeze") == "0"
    assert mgr.state() == "THAWED"


def test_freeze_times_out_and_thaws_back(mgr: V2Manager) -> None:
    with pytest.raises(CgroupError, match="not frozen") as e:
        mgr.freeze()  # cgroup.events keeps saying frozen 0
    assert e.value.obj == str(mgr.dir)
    assert read(mgr, "cgroup.freeze") == "0"


def test_pids_are_recursive(mgr: V2Manager) -> None:
    (mgr.dir / "cgroup.procs").write_text("5\n")
    _fs.mkdir(mgr.dir / "a/b", fake=True)
    (mgr.dir / "a/b/cgroup.procs").write_text("3\n4\n")
    assert mgr.pids() == [3, 4, 5]


def test_stats(mgr: V2Manager) -> None:
    (mgr.dir / "memory.current").write_text("1000\n")
    (mgr.dir / "memory.max").write_text("4096\n")
    (mgr.dir / "memory.peak").write_text("3000\n")
    (mgr.dir / "memory.events").write_text("low 0\nhigh 0\nmax 6\noom 2\noom_kill 1\n")
    (mgr.dir / "cpu.stat").write_text(
        "usage_usec 1500\nuser_usec 1000\nnr_periods 8\nnr_throttled 2\nthrottled_usec 70\n"
    )
    (mgr.dir / "pids.current").write_text("3\n")
    s = mgr.stats()
    assert (s.memory.usage, s.memory.limit, s.memory.max_usage) == (1000, 4096, 3000)
    assert (s.memory.failcnt, s.memory.oom_kill, s.memory.under_oom) == (6, 1, False)
    assert (s.cpu.usage_ns, s.cpu.nr_periods, s.cpu.nr_throttled, s.cpu.throttled_ns) == (
        1_500_000,
        8,
        2,
        70_000,
    )
    assert (s.pids.current, s.pids.limit) == (3, None)
    assert mgr.oom_kill_count() == 1


def test_destroy(mgr: V2Manager, tmp_path: Path) -> None:
    _fs.mkdir(mgr.dir / "child", fake=True)
    mgr.destroy()
    assert not mgr.exists()
    assert (tmp_path / "sys/fs/cgroup/kube").is_dir()  # only the leaf goes
    mgr.destroy()


def test_destroy_kills_then_reports_busy(mgr: V2Manager) -> None:
    (mgr.dir / "cgroup.procs").write_text("42\n")
    with pytest.raises(CgroupError, match="tasks still inside") as e:
        mgr.destroy()  # a fake tree's tasks do not die
    assert e.value.obj == str(mgr.dir)
    assert read(mgr, "cgroup.kill") == "1"
