"""Host detection from mountinfo, and where a cgroupsPath lands in each hierarchy."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference.cgroups.fake import HYBRID_MOUNTINFO, V1_MOUNTINFO, V2_MOUNTINFO, make_v1, make_v2
from reference.cgroups.manager import CgroupMode, detect, new_manager
from reference.cgroups.mounts import Mount, cgroup_dir, parse_mountinfo, parse_proc_cgroup
from reference.cgroups.v1 import V1Manager
from reference.cgroups.v2 import V2Manager
from reference.errors import CgroupError, ConfigError

SYSTEMD_HYBRID = """\
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,name=systemd
27 25 0:24 / /sys/fs/cgroup/unified rw,nosuid shared:11 - cgroup2 cgroup2 rw,nsdelegate
"""


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        (V1_MOUNTINFO, CgroupMode.V1),
        (HYBRID_MOUNTINFO, CgroupMode.HYBRID),
        (V2_MOUNTINFO, CgroupMode.UNIFIED),
        (SYSTEMD_HYBRID, CgroupMode.HYBRID),
    ],
    ids=["v1", "hybrid", "unified", "systemd-hybrid"],
)
def test_detect(text: str, mode: CgroupMode) -> None:
    assert detect(text) is mode


def test_detect_reads_mountinfo_under_root(tmp_path: Path) -> None:
    make_v2(tmp_path)
    assert detect(root=tmp_path) is CgroupMode.UNIFIED


def test_detect_without_cgroups_fails() -> None:
    with pytest.raises(CgroupError, match="no cgroup"):
        detect("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n")


def test_parse_mountinfo_comount_escapes_and_optional_fields() -> None:
    text = (
        "29 25 0:26 /docker/abc /sys/fs/cgroup/cpu\\040acct rw shared:13 master:2"
        " - cgroup cgroup rw,cpu,cpuacct\n"
        "40 25 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
    )
    cpu, systemd = parse_mountinfo(text)
    assert cpu == Mount(
        "/sys/fs/cgroup/cpu acct", "/docker/abc", "cgroup", frozenset({"cpu", "cpuacct"})
    )
    assert systemd.name == "systemd"
    assert systemd.controllers == frozenset()


def test_parse_proc_cgroup() -> None:
    got = parse_proc_cgroup("4:memory:/a\n2:cpu,cpuacct:/b\n1:name=systemd:/c\n0::/d\n")
    assert got == {"memory": "/a", "cpu": "/b", "cpuacct": "/b", "name=systemd": "/c", "": "/d"}


MEM = Mount("/sys/fs/cgroup/memory", "/", "cgroup", frozenset({"memory"}))


@pytest.mark.parametrize(
    ("path", "own", "mount_root", "expected"),
    [
        ("/ctr/x", None, "/", "sys/fs/cgroup/memory/ctr/x"),
        ("/a/../../ctr", None, "/", "sys/fs/cgroup/memory/ctr"),  # ".." cannot climb out
        ("ctr", {"memory": "/user.slice"}, "/", "sys/fs/cgroup/memory/user.slice/ctr"),
        ("ctr", {"memory": "/"}, "/", "sys/fs/cgroup/memory/ctr"),
        # Inside a container the hierarchy root is the container's own cgroup.
        ("ctr", {"memory": "/docker/abc/sub"}, "/docker/abc", "sys/fs/cgroup/memory/sub/ctr"),
        ("/ctr", {"memory": "/docker/abc"}, "/docker/abc", "sys/fs/cgroup/memory/ctr"),
    ],
)
def test_cgroup_dir(
    tmp_path: Path, path: str, own: dict[str, str] | None, mount_root: str, expected: str
) -> None:
    mount = Mount(MEM.mountpoint, mount_root, "cgroup", MEM.controllers)
    assert cgroup_dir(mount, path, own, "memory", tmp_path) == tmp_path / expected


@pytest.mark.parametrize("path", ["", "/", "/.."])
def test_cgroup_dir_rejects_the_root(tmp_path: Path, path: str) -> None:
    with pytest.raises(ConfigError) as e:
        cgroup_dir(MEM, path, None, "memory", tmp_path)
    assert e.value.obj == "linux.cgroupsPath"


def test_relative_path_needs_own_cgroup(tmp_path: Path) -> None:
    with pytest.raises(CgroupError, match="memory cgroup"):
        cgroup_dir(MEM, "ctr", {"cpu": "/"}, "memory", tmp_path)
    outside = Mount(MEM.mountpoint, "/docker/abc", "cgroup", MEM.controllers)
    with pytest.raises(CgroupError, match="outside"):
        cgroup_dir(outside, "ctr", {"memory": "/other"}, "memory", tmp_path)


def test_new_manager_on_hybrid_uses_v1_for_every_controller(tmp_path: Path) -> None:
    make_v1(tmp_path)
    mgr = new_manager("/ctr", root=tmp_path)
    assert isinstance(mgr, V1Manager)
    base = tmp_path / "sys/fs/cgroup"
    assert mgr.dirs == {
        c: base / c / "ctr"
        for c in ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")
    }


def test_new_manager_comounted_cpu_cpuacct_share_a_directory(tmp_path: Path) -> None:
    make_v1(tmp_path, V1_MOUNTINFO)
    mgr = new_manager("/ctr", root=tmp_path)
    assert isinstance(mgr, V1Manager)
    assert mgr.dirs["cpu"] == mgr.dirs["cpuacct"] == tmp_path / "sys/fs/cgroup/cpu,cpuacct/ctr"
    assert "net_cls" not in mgr.dirs


def test_new_manager_relative_path_uses_proc_self_cgroup(tmp_path: Path) -> None:
    make_v1(tmp_path)  # /proc/self/cgroup: memory in /user.slice, cpu in /
    mgr = new_manager("ctr", root=tmp_path)
    assert isinstance(mgr, V1Manager)
    assert mgr.dirs["memory"] == tmp_path / "sys/fs/cgroup/memory/user.slice/ctr"
    assert mgr.dirs["cpu"] == tmp_path / "sys/fs/cgroup/cpu/ctr"


def test_new_manager_on_unified_uses_v2(tmp_path: Path) -> None:
    make_v2(tmp_path)
    mgr = new_manager("ctr", root=tmp_path)
    assert isinstance(mgr, V2Manager)
    assert mgr.dir == tmp_path / "sys/fs/cgroup/user.slice/session-1.scope/ctr"
    assert mgr.path == "ctr"


def test_new_manager_systemd_hybrid_uses_v2(tmp_path: Path) -> None:
    mgr = new_manager("/ctr", mounts=SYSTEMD_HYBRID, root=tmp_path)
    assert isinstance(mgr, V2Manager)
    assert mgr.dir == tmp_path / "sys/fs/cgroup/unified/ctr"


def test_new_manager_accepts_parsed_mounts(tmp_path: Path) -> None:
    mgr = new_manager("/ctr", mounts=[MEM], root=tmp_path)
    assert isinstance(mgr, V1Manager)
    assert set(mgr.dirs) == {"memory"}


def test_new_manager_rejects_empty_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        new_manager("", mounts=V2_MOUNTINFO, root=tmp_path)
