"""The v1 driver on a fake hybrid tree: file contents after each operation."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from reference.cgroups import _fs
from reference.cgroups.fake import V1_MOUNTINFO, V1_UNLIMITED, WriteLog, make_v1
from reference.cgroups.manager import new_manager
from reference.cgroups.resources import Resources
from reference.cgroups.v1 import V1Manager
from reference.errors import CgroupError, UnsupportedError

CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")


@pytest.fixture
def mgr(tmp_path: Path) -> V1Manager:
    make_v1(tmp_path)
    m = new_manager("/ctr", root=tmp_path, timeout=0.05)
    assert isinstance(m, V1Manager)
    m.create()
    return m


def read(mgr: V1Manager, controller: str, name: str) -> str:
    return (mgr.dirs[controller] / name).read_text()


def test_create_makes_a_directory_per_controller(mgr: V1Manager) -> None:
    assert mgr.exists()
    for c in CONTROLLERS:
        assert mgr.dirs[c].is_dir(), c
        assert (mgr.dirs[c] / "cgroup.procs").read_text() == ""


def test_create_copies_cpuset_lists_down_every_new_level(tmp_path: Path) -> None:
    make_v1(tmp_path)
    m = new_manager("/a/b/ctr", root=tmp_path)
    assert isinstance(m, V1Manager)
    m.create()
    top = tmp_path / "sys/fs/cgroup/cpuset"
    for d in (top / "a", top / "a/b", top / "a/b/ctr"):
        assert (d / "cpuset.cpus").read_text() == "0-3"
        assert (d / "cpuset.mems").read_text() == "0"


def test_create_keeps_an_existing_cpuset(tmp_path: Path) -> None:
    make_v1(tmp_path)
    mid = tmp_path / "sys/fs/cgroup/cpuset/a"
    _fs.mkdir(mid, fake=True)
    (mid / "cpuset.cpus").write_text("1")
    m = new_manager("/a/ctr", root=tmp_path)
    m.create()
    assert (mid / "ctr/cpuset.cpus").read_text() == "1"


def test_apply_writes_the_pid_everywhere(tmp_path: Path) -> None:
    make_v1(tmp_path, V1_MOUNTINFO)
    m = new_manager("/ctr", root=tmp_path)
    assert isinstance(m, V1Manager)
    m.apply(4242)  # creates on demand
    for c in CONTROLLERS:
        assert (m.dirs[c] / "cgroup.procs").read_text() == "4242"


def test_set_memory(mgr: V1Manager) -> None:
    spec = {"limit": 64 << 20, "swap": 96 << 20, "reservation": 32 << 20, "swappiness": 0}
    mgr.set(Resources.from_spec({"memory": {**spec, "disableOOMKiller": True}}))
    assert read(mgr, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert read(mgr, "memory", "memory.memsw.limit_in_bytes") == str(96 << 20)
    assert read(mgr, "memory", "memory.soft_limit_in_bytes") == str(32 << 20)
    assert read(mgr, "memory", "memory.swappiness") == "0"
    assert read(mgr, "memory", "memory.oom_control") == "1"


def test_memory_and_swap_order(mgr: V1Manager, log: WriteLog) -> None:
    # Lowering from unlimited: limit first, or memsw would drop below the old limit.
    mgr.set(Resources.from_spec({"memory": {"limit": 64 << 20, "swap": 128 << 20}}))
    assert [n for n, _ in log.writes] == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    # Raising above the current limit: memsw first, or the limit would exceed the old memsw.
    log.writes.clear()
    mgr.set(Resources.from_spec({"memory": {"limit": 256 << 20, "swap": 512 << 20}}))
    assert [n for n, _ in log.writes] == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]


def test_unlimited_memory_lifts_memsw_first(mgr: V1Manager, log: WriteLog) -> None:
    mgr.set(Resources.from_spec({"memory": {"limit": -1}}))
    assert log.writes == [("memory.memsw.limit_in_bytes", "-1"), ("memory.limit_in_bytes", "-1")]


def test_swap_skipped_without_memsw(mgr: V1Manager, log: WriteLog) -> None:
    (mgr.dirs["memory"] / "memory.memsw.limit_in_bytes").unlink()
    mgr.set(Resources.from_spec({"memory": {"limit": 64 << 20, "swap": 128 << 20}}))
    assert log.writes == [("memory.limit_in_bytes", str(64 << 20))]
    assert not (mgr.dirs["memory"] / "memory.memsw.limit_in_bytes").exists()  # never created


def test_set_cpu_and_cpuset(mgr: V1Manager) -> None:
    cpu = {"shares": 512, "quota": 50000, "period": 200000, "cpus": "1", "mems": "0"}
    mgr.set(
        Resources.from_spec({"cpu": {**cpu, "realtimePeriod": 900000, "realtimeRuntime": 1000}})
    )
    assert read(mgr, "cpu", "cpu.shares") == "512"
    assert read(mgr, "cpu", "cpu.cfs_quota_us") == "50000"
    assert read(mgr, "cpu", "cpu.cfs_period_us") == "200000"
    assert read(mgr, "cpu", "cpu.rt_period_us") == "900000"
    assert read(mgr, "cpu", "cpu.rt_runtime_us") == "1000"
    assert read(mgr, "cpuset", "cpuset.cpus") == "1"
    assert read(mgr, "cpuset", "cpuset.mems") == "0"


def test_cpu_period_einval_is_retried_after_quota(
    mgr: V1Manager, log: WriteLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}

    # The driver passes paths as strings (it avoids importing pathlib), hence Path(path).
    def flaky(path: str, value: str | int) -> None:
        if Path(path).name == "cpu.cfs_period_us" and calls["n"] == 0:
            calls["n"] += 1
            log.writes.append((Path(path).name, "EINVAL"))
            raise CgroupError("refused", obj=str(path)) from OSError(errno.EINVAL, "Invalid")
        log(path, value)

    monkeypatch.setattr(_fs, "write", flaky)
    mgr.set(Resources.from_spec({"cpu": {"quota": 20000, "period": 50000}}))
    assert log.writes == [
        ("cpu.cfs_period_us", "EINVAL"),
        ("cpu.cfs_quota_us", "20000"),
        ("cpu.cfs_period_us", "50000"),
    ]


def test_clamped_shares_are_an_error(mgr: V1Manager, monkeypatch: pytest.MonkeyPatch) -> None:
    real = _fs.read_int
    monkeypatch.setattr(
        _fs, "read_int", lambda p: 262144 if Path(p).name == "cpu.shares" else real(p)
    )
    with pytest.raises(CgroupError, match="clamped"):
        mgr.set(Resources.from_spec({"cpu": {"shares": 262144 - 1}}))


@pytest.mark.parametrize(("limit", "expected"), [(100, "100"), (-1, "max"), (0, "max")])
def test_set_pids(mgr: V1Manager, limit: int, expected: str) -> None:
    mgr.set(Resources.from_spec({"pids": {"limit": limit}}))
    assert read(mgr, "pids", "pids.max") == expected


def test_set_blkio(mgr: V1Manager, log: WriteLog) -> None:
    dev = {"major": 8, "minor": 0}
    mgr.set(
        Resources.from_spec(
            {
                "blockIO": {
                    "weight": 300,
                    "leafWeight": 200,
                    "weightDevice": [{**dev, "weight": 400, "leafWeight": 100}],
                    "throttleReadBpsDevice": [
                        {**dev, "rate": 1000},
                        {"major": 8, "minor": 16, "rate": 5},
                    ],
                    "throttleWriteBpsDevice": [{**dev, "rate": 2000}],
                    "throttleReadIOPSDevice": [{**dev, "rate": 30}],
                    "throttleWriteIOPSDevice": [{**dev, "rate": 40}],
                }
            }
        )
    )
    assert read(mgr, "blkio", "blkio.weight") == "300"
    assert read(mgr, "blkio", "blkio.leaf_weight") == "200"
    assert read(mgr, "blkio", "blkio.weight_device") == "8:0 400"
    assert read(mgr, "blkio", "blkio.leaf_weight_device") == "8:0 100"
    assert log.to("blkio.throttle.read_bps_device") == ["8:0 1000", "8:16 5"]
    assert read(mgr, "blkio", "blkio.throttle.write_bps_device") == "8:0 2000"
    assert read(mgr, "blkio", "blkio.throttle.read_iops_device") == "8:0 30"
    assert read(mgr, "blkio", "blkio.throttle.write_iops_device") == "8:0 40"


def test_blkio_weight_under_bfq(mgr: V1Manager) -> None:
    d = mgr.dirs["blkio"]
    (d / "blkio.weight").unlink()
    (d / "blkio.bfq.weight").write_text("100")
    (d / "blkio.bfq.weight_device").write_text("")
    mgr.set(
        Resources.from_spec(
            {"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 50}]}}
        )
    )
    assert (d / "blkio.bfq.weight").read_text() == "300"
    assert (d / "blkio.bfq.weight_device").read_text() == "8:0 50"


def test_set_devices_in_order(mgr: V1Manager, log: WriteLog) -> None:
    rules = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": False, "type": "c", "major": 5, "minor": 1, "access": "w"},
    ]
    mgr.set(Resources.from_spec({"devices": rules}))
    assert log.writes == [
        ("devices.deny", "a *:* rwm"),
        ("devices.allow", "c 1:3 rwm"),
        ("devices.deny", "c 5:1 w"),
    ]


def test_missing_controller_is_unsupported(tmp_path: Path) -> None:
    make_v1(tmp_path)
    lines = (tmp_path / "proc/self/mountinfo").read_text().splitlines()
    text = "\n".join(line for line in lines if "blkio" not in line)
    m = new_manager("/ctr", mounts=text, root=tmp_path)
    m.create()
    m.set(Resources.from_spec({"memory": {"limit": 1 << 20}}))  # others still work
    with pytest.raises(UnsupportedError, match="blkio"):
        m.set(Resources.from_spec({"blockIO": {"weight": 100}}))


def test_failed_write_names_file_and_value(mgr: V1Manager) -> None:
    (mgr.dirs["pids"] / "pids.max").unlink()
    with pytest.raises(CgroupError) as e:
        mgr.set(Resources.from_spec({"pids": {"limit": 5}}))
    assert e.value.obj == str(mgr.dirs["pids"] / "pids.max")


def test_freeze_thaw_state(mgr: V1Manager) -> None:
    assert mgr.state() == "THAWED"
    mgr.freeze()
    assert read(mgr, "freezer", "freezer.state") == "FROZEN"
    (mgr.dirs["freezer"] / "freezer.self_freezing").write_text("1")
    assert mgr.state() == "FROZEN"
    mgr.thaw()
    assert read(mgr, "freezer", "freezer.state") == "THAWED"
    assert mgr.state() == "THAWED"


def test_frozen_by_an_ancestor_is_not_our_pause(mgr: V1Manager) -> None:
    (mgr.dirs["freezer"] / "freezer.state").write_text("FROZEN")
    (mgr.dirs["freezer"] / "freezer.self_freezing").write_text("0")
    assert mgr.state() == "THAWED"


def test_freeze_times_out_and_thaws_back(
    mgr: V1Manager, log: WriteLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _fs.read
    monkeypatch.setattr(
        _fs, "read", lambda p: "FREEZING\n" if Path(p).name == "freezer.state" else real(p)
    )
    with pytest.raises(CgroupError, match="not frozen") as e:
        mgr.freeze()
    assert e.value.obj == str(mgr.dirs["freezer"] / "freezer.state")
    assert log.to("freezer.state")[-1] == "THAWED"


def test_pids_are_recursive(mgr: V1Manager) -> None:
    d = mgr.dirs["devices"]
    (d / "cgroup.procs").write_text("30\n10\n")
    _fs.mkdir(d / "sub", fake=True)
    (d / "sub/cgroup.procs").write_text("20\n")
    assert mgr.pids() == [10, 20, 30]


def test_stats(mgr: V1Manager) -> None:
    mem, cpu = mgr.dirs["memory"], mgr.dirs["cpu"]
    (mem / "memory.usage_in_bytes").write_text("1000\n")
    (mem / "memory.max_usage_in_bytes").write_text("2000\n")
    (mem / "memory.failcnt").write_text("3\n")
    (mem / "memory.oom_control").write_text("oom_kill_disable 1\nunder_oom 1\noom_kill 2\n")
    (cpu / "cpu.stat").write_text("nr_periods 10\nnr_throttled 4\nthrottled_time 5000\n")
    (mgr.dirs["cpuacct"] / "cpuacct.usage").write_text("123456789\n")
    (mgr.dirs["pids"] / "pids.current").write_text("7\n")
    (mgr.dirs["pids"] / "pids.max").write_text("64\n")
    s = mgr.stats()
    assert (s.memory.usage, s.memory.max_usage, s.memory.failcnt) == (1000, 2000, 3)
    assert s.memory.limit is None  # V1_UNLIMITED
    assert (s.memory.oom_kill, s.memory.under_oom) == (2, True)
    assert (s.cpu.usage_ns, s.cpu.nr_periods, s.cpu.nr_throttled, s.cpu.throttled_ns) == (
        123456789,
        10,
        4,
        5000,
    )
    assert (s.pids.current, s.pids.limit) == (7, 64)
    assert mgr.oom_kill_count() == 2
    assert read(mgr, "memory", "memory.limit_in_bytes") == V1_UNLIMITED


def test_destroy_removes_every_directory(mgr: V1Manager) -> None:
    _fs.mkdir(mgr.dirs["memory"] / "nested", fake=True)
    mgr.destroy()
    assert not mgr.exists()
    for c in CONTROLLERS:
        assert not mgr.dirs[c].exists(), c
        assert mgr.dirs[c].parent.is_dir()  # the hierarchy root stays
    mgr.destroy()  # idempotent


def test_destroy_busy_names_the_path_and_cleans_the_rest(mgr: V1Manager) -> None:
    (mgr.dirs["pids"] / "cgroup.procs").write_text("99\n")
    with pytest.raises(CgroupError, match="tasks still inside") as e:
        mgr.destroy()
    assert e.value.obj == str(mgr.dirs["pids"])
    assert mgr.dirs["pids"].is_dir()
    assert not mgr.dirs["memory"].exists()
