"""The /proc parsers, on samples shaped like real hosts' files (systemd host, hybrid cgroups)."""

from __future__ import annotations

import os

import pytest

from reference.errors import KernelError
from reference.linux.procfs import (
    CgroupLine,
    MountInfo,
    mount_at,
    ns_inode,
    parse_mountinfo,
    parse_proc_cgroup,
    parse_status,
    read,
    unescape,
    unified_path,
)

# A systemd host: shared root, a slave mount, a peer of two groups, an unbindable mount, escaped
# paths (space, tab, backslash, newline) in root, mount point and source, and a fstype with a dot.
MOUNTINFO = r"""
21 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw,errors=remount-ro
22 21 0:20 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
23 21 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
24 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:4 - cgroup2 cgroup2 rw,nsdelegate
80 21 0:45 / /mnt/my\040disk rw,relatime master:1 - tmpfs tmp\040fs rw,size=1024k,mode=755
81 21 0:46 /s\011d /mnt/b\134s ro shared:7 master:3 propagate_from:2 - fuse.sshfs u@h:/a\040b ro
82 21 0:47 / /mnt/new\012line rw unbindable - tmpfs none rw
83 21 0:48 / /mnt/my\040disk rw,relatime - tmpfs over rw
"""


def test_mountinfo_fields() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert [m.mount_id for m in mounts] == [21, 22, 23, 24, 80, 81, 82, 83]
    root = mounts[0]
    assert root == MountInfo(
        mount_id=21,
        parent_id=1,
        major=8,
        minor=2,
        root="/",
        mount_point="/",
        options=("rw", "relatime"),
        optional={"shared": "1"},
        fstype="ext4",
        source="/dev/sda2",
        super_options=("rw", "errors=remount-ro"),
    )
    cgroup = mounts[3]
    assert (cgroup.fstype, cgroup.super_options) == ("cgroup2", ("rw", "nsdelegate"))
    assert cgroup.options == ("rw", "nosuid", "nodev", "noexec")


def test_mountinfo_escapes() -> None:
    mounts = {m.mount_id: m for m in parse_mountinfo(MOUNTINFO)}
    assert mounts[80].mount_point == "/mnt/my disk"
    assert mounts[80].source == "tmp fs"
    assert mounts[81].root == "/s\td"
    assert mounts[81].mount_point == "/mnt/b\\s"
    assert mounts[81].source == "u@h:/a b"
    assert mounts[81].fstype == "fuse.sshfs"
    assert mounts[82].mount_point == "/mnt/new\nline"


def test_mountinfo_optional_fields_and_propagation() -> None:
    mounts = {m.mount_id: m for m in parse_mountinfo(MOUNTINFO)}
    assert mounts[21].optional == {"shared": "1"}
    assert mounts[80].optional == {"master": "1"}
    assert mounts[81].optional == {"shared": "7", "master": "3", "propagate_from": "2"}
    assert mounts[82].optional == {"unbindable": ""}
    assert mounts[83].optional == {}
    assert [mounts[i].propagation for i in (21, 80, 81, 82, 83)] == [
        "shared",
        "slave",
        "shared",
        "unbindable",
        "private",
    ]


def test_mountinfo_rejects_malformed_line() -> None:
    with pytest.raises(ValueError, match="malformed mountinfo line"):
        parse_mountinfo("21 1 8:2 / / rw,relatime shared:1 ext4 /dev/sda2 rw\n")  # no "-"
    with pytest.raises(ValueError, match="malformed"):
        parse_mountinfo("x 1 8:2 / / rw - ext4 /dev/sda2 rw\n")


def test_mountinfo_of_this_host_parses() -> None:
    mounts = parse_mountinfo(read("self", "mountinfo"))
    assert any(m.mount_point == "/" for m in mounts)
    assert mount_at(mounts, "/proc/self") is not None


@pytest.mark.parametrize(
    ("path", "mount_id"),
    [
        ("/", 21),
        ("/etc/passwd", 21),
        ("/sys/fs/cgroup", 24),
        ("/sys/fs/cgroup/x", 24),
        ("/sys/fs/cgroupx", 23),  # a prefix of the name is not a parent directory
        ("/mnt/my disk/f", 83),  # 83 is mounted over 80 at the same point
    ],
)
def test_mount_at_prefers_longest_then_topmost(path: str, mount_id: int) -> None:
    found = mount_at(parse_mountinfo(MOUNTINFO), path)
    assert found is not None
    assert found.mount_id == mount_id


def test_mount_at_nothing() -> None:
    assert mount_at([], "/") is None


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("plain", "plain"),
        (r"a\040b", "a b"),
        (r"\134\134", "\\\\"),
        (r"trailing\04", r"trailing\04"),  # not a full escape: left alone
        (r"\999", r"\999"),  # not octal
        (r"\377", "\udcff"),  # a high byte, as os.fsdecode gives it
    ],
)
def test_unescape(raw: str, decoded: str) -> None:
    assert unescape(raw) == decoded


# cgroup v1 + v2 hybrid (Ubuntu 20.04 style): named hierarchy, co-mounted cpu,cpuacct, a path with
# a colon in it, and the unified `0::` line.
PROC_CGROUP = """\
12:cpuset:/
11:cpu,cpuacct:/system.slice/docker.service
10:memory:/system.slice/docker.service
9:pids:/system.slice/docker.service
1:name=systemd:/system.slice/docker-abc:def.scope
0::/system.slice/docker.service
"""


def test_proc_cgroup_hybrid() -> None:
    lines = parse_proc_cgroup(PROC_CGROUP)
    assert lines[1] == CgroupLine(11, ("cpu", "cpuacct"), "/system.slice/docker.service")
    assert lines[4] == CgroupLine(1, ("name=systemd",), "/system.slice/docker-abc:def.scope")
    assert lines[5] == CgroupLine(0, (), "/system.slice/docker.service")
    assert unified_path(lines) == "/system.slice/docker.service"


def test_proc_cgroup_v2_only_and_v1_only() -> None:
    assert parse_proc_cgroup("0::/\n") == [CgroupLine(0, (), "/")]
    assert unified_path(parse_proc_cgroup("0::/user.slice/a b\n")) == "/user.slice/a b"
    assert unified_path(parse_proc_cgroup("3:memory:/x\n")) is None


def test_proc_cgroup_rejects_malformed_line() -> None:
    with pytest.raises(ValueError, match="malformed /proc/PID/cgroup line"):
        parse_proc_cgroup("memory:/x\n")


def test_proc_cgroup_of_this_host_parses() -> None:
    assert parse_proc_cgroup(read("self", "cgroup"))


STATUS = """\
Name:\tsleep
Umask:\t0022
State:\tS (sleeping)
Pid:\t4242
PPid:\t1
Uid:\t1000\t1000\t1000\t1000
Groups:\t
NSpid:\t4242\t1
CapInh:\t0000000000000000
CapEff:\t00000000a80425fb
CapBnd:\t00000000a80425fb
NoNewPrivs:\t1
Seccomp:\t2
"""


def test_status() -> None:
    status = parse_status(STATUS)
    assert status["Name"] == "sleep"
    assert status["State"] == "S (sleeping)"
    assert status["Uid"].split() == ["1000"] * 4
    assert status["Groups"] == ""
    assert status["NSpid"].split() == ["4242", "1"]
    assert int(status["CapEff"], 16) == 0xA80425FB
    assert (status["NoNewPrivs"], status["Seccomp"]) == ("1", "2")


def test_status_of_this_process() -> None:
    assert parse_status(read("self", "status"))["Pid"] == str(os.getpid())


def test_ns_inode_accepts_oci_and_proc_names() -> None:
    assert ns_inode("self", "network") == ns_inode(os.getpid(), "net")
    assert ns_inode("self", "mount") == os.stat("/proc/self/ns/mnt").st_ino


def test_ns_inode_and_read_errors_name_the_path() -> None:
    with pytest.raises(KernelError, match="/proc/self/ns/bogus") as exc:
        ns_inode("self", "bogus")
    assert exc.value.errno == 2
    with pytest.raises(KernelError, match="/proc/999999999/status"):
        read(999999999, "status")


def test_records_repr_and_eq() -> None:
    line = CgroupLine(0, (), "/")
    assert repr(line) == "CgroupLine(hierarchy_id=0, controllers=(), path='/')"
    assert line != CgroupLine(0, (), "/x")
    assert line != ("not", "a", "record")
