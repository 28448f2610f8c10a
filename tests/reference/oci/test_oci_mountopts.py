"""Mount option strings → mount(2) flags, propagation calls, fs data and runtime options."""

from __future__ import annotations

import pytest

from reference.linux.syscall import (
    MS_BIND,
    MS_DIRSYNC,
    MS_MANDLOCK,
    MS_NOATIME,
    MS_NODEV,
    MS_NODIRATIME,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_RELATIME,
    MS_REMOUNT,
    MS_SHARED,
    MS_SILENT,
    MS_SLAVE,
    MS_STRICTATIME,
    MS_SYNCHRONOUS,
    MS_UNBINDABLE,
)
from reference.oci.mountopts import MountOptions, parse_mount_options

TABLE: list[tuple[list[str], MountOptions]] = [
    ([], MountOptions(0, (), "")),
    (["ro"], MountOptions(MS_RDONLY, (), "")),
    (["rw"], MountOptions(0, (), "")),
    (["ro", "rw"], MountOptions(0, (), "")),
    (["rw", "ro"], MountOptions(MS_RDONLY, (), "")),
    (["nosuid", "nodev", "noexec"], MountOptions(MS_NOSUID | MS_NODEV | MS_NOEXEC, (), "")),
    (["nosuid", "suid", "nodev", "dev", "noexec", "exec"], MountOptions(0, (), "")),
    (["relatime"], MountOptions(MS_RELATIME, (), "")),
    (["strictatime", "nostrictatime"], MountOptions(0, (), "")),
    (["noatime", "nodiratime"], MountOptions(MS_NOATIME | MS_NODIRATIME, (), "")),
    (["sync", "dirsync", "mand"], MountOptions(MS_SYNCHRONOUS | MS_DIRSYNC | MS_MANDLOCK, (), "")),
    (["sync", "async"], MountOptions(0, (), "")),
    (["silent", "remount"], MountOptions(MS_SILENT | MS_REMOUNT, (), "")),
    (["defaults"], MountOptions(0, (), "")),
    (["bind"], MountOptions(MS_BIND, (), "")),
    (["rbind", "ro"], MountOptions(MS_BIND | MS_REC | MS_RDONLY, (), "")),
    (["private"], MountOptions(0, (MS_PRIVATE,), "")),
    (["rprivate"], MountOptions(0, (MS_PRIVATE | MS_REC,), "")),
    (["slave"], MountOptions(0, (MS_SLAVE,), "")),
    (["rslave"], MountOptions(0, (MS_SLAVE | MS_REC,), "")),
    (["shared"], MountOptions(0, (MS_SHARED,), "")),
    (["rshared"], MountOptions(0, (MS_SHARED | MS_REC,), "")),
    (["unbindable"], MountOptions(0, (MS_UNBINDABLE,), "")),
    (["runbindable"], MountOptions(0, (MS_UNBINDABLE | MS_REC,), "")),
    (["rbind", "rslave", "runbindable"],
     MountOptions(MS_BIND | MS_REC, (MS_SLAVE | MS_REC, MS_UNBINDABLE | MS_REC), "")),
    (["mode=755", "size=65536k"], MountOptions(0, (), "mode=755,size=65536k")),
    # The default spec's /dev and /dev/pts mounts.
    (["nosuid", "strictatime", "mode=755", "size=65536k"],
     MountOptions(MS_NOSUID | MS_STRICTATIME, (), "mode=755,size=65536k")),
    (["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
     MountOptions(MS_NOSUID | MS_NOEXEC, (), "newinstance,ptmxmode=0666,mode=0620,gid=5")),
    (["nosuid", "noexec", "nodev", "relatime", "ro"],
     MountOptions(MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RELATIME | MS_RDONLY, (), "")),
    (["ro", "", "nosuid"], MountOptions(MS_RDONLY | MS_NOSUID, (), "")),
    (["rbind", "rro", "tmpcopyup", "idmap"],
     MountOptions(MS_BIND | MS_REC, (), "", ("rro", "tmpcopyup", "idmap"))),
    (["lowerdir=/a:/b", "upperdir=/u", "workdir=/w"],
     MountOptions(0, (), "lowerdir=/a:/b,upperdir=/u,workdir=/w")),
]  # fmt: skip


@pytest.mark.parametrize(("options", "expected"), TABLE, ids=[",".join(o) for o, _ in TABLE])
def test_mount_options(options: list[str], expected: MountOptions) -> None:
    assert parse_mount_options(options) == expected
    assert parse_mount_options(tuple(options)) == expected


def test_flag_values_are_the_kernel_abi() -> None:
    """The table above is only as right as these numbers (linux/mount.h)."""
    assert (MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_SYNCHRONOUS) == (1, 2, 4, 8, 16)
    assert (MS_REMOUNT, MS_MANDLOCK, MS_DIRSYNC, MS_NOATIME, MS_NODIRATIME) == (
        32,
        64,
        128,
        1024,
        2048,
    )
    assert (MS_BIND, MS_REC, MS_SILENT) == (4096, 16384, 32768)
    assert (MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED) == (1 << 17, 1 << 18, 1 << 19, 1 << 20)
    assert (MS_RELATIME, MS_STRICTATIME) == (1 << 21, 1 << 24)
