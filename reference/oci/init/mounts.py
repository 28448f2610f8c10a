"""Mount the spec's `mounts` under the rootfs, before pivot_root (runc's mountToRootfs).

Rules kept from runc: a bind mount takes its flags in a second, remounting mount(2) call (the
kernel ignores them on the first); propagation is one call per option; a read-only tmpfs is
mounted writable and made read-only at the end, so the runtime can still create what goes in it
(/dev's nodes); sysfs is bound from the host when the container shares the host's network
namespace (a new sysfs would describe the wrong network devices, and in a user namespace it
cannot be mounted at all); a cgroup mount on a v1 host is a tmpfs holding one read-only bind of
the container's own cgroup per hierarchy (or, with a new cgroup namespace, fresh cgroup mounts).
"""

from __future__ import annotations

import os

from reference.errors import ConfigError, KernelError, UnsupportedError
from reference.linux import procfs
from reference.linux.syscall import (
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    Syscall,
)
from reference.oci.init.paths import make_dir, make_file, make_symlink, secure_join
from reference.oci.mountopts import MountOptions, parse_mount_options
from reference.oci.spec import Mount
from reference.records import replace

# statvfs f_flag bits (ST_*) -> mount flags: the ones the kernel locks on a mount that a user
# namespace received, which a remount must therefore repeat.
_LOCKED = ((1, MS_RDONLY), (2, MS_NOSUID), (4, MS_NODEV), (8, MS_NOEXEC))


class MountContext:
    """What mounting needs to know about the container besides the mount itself."""

    __slots__ = ("bundle", "new_cgroupns", "new_netns", "readonly_later", "rootfs")

    def __init__(self, rootfs: str, bundle: str, *, new_netns: bool, new_cgroupns: bool) -> None:
        self.rootfs = rootfs
        self.bundle = bundle
        self.new_netns = new_netns
        self.new_cgroupns = new_cgroupns
        # Mount points to remount read-only once everything inside them exists.
        self.readonly_later: list[tuple[str, int]] = []


def mount_all(sc: Syscall, mounts: tuple[Mount, ...], ctx: MountContext) -> None:
    for i, m in enumerate(mounts):
        try:
            mount_one(sc, m, ctx, f"mounts[{i}]")
        except KernelError as e:
            # Name the spec entry: "mounts[3] (tmpfs on /dev): mount failed: ...".
            raise KernelError(f"mounts[{i}] ({m.type or 'bind'} on {m.destination}): {e.op}",
                              e.errno, obj=e.obj) from None  # fmt: skip


def mount_one(sc: Syscall, m: Mount, ctx: MountContext, where: str) -> None:
    opts = parse_mount_options(m.options)
    if opts.runtime:
        raise UnsupportedError(f"mount option {opts.runtime[0]!r} is not supported", obj=where)
    dest = secure_join(ctx.rootfs, m.destination)
    if m.type == "bind" or opts.flags & MS_BIND:
        source = m.source if os.path.isabs(m.source) else os.path.join(ctx.bundle, m.source)
        bind(sc, source, dest, opts, where)
    elif m.type == "cgroup":
        mount_cgroup(sc, dest, opts, ctx)
    elif m.type == "sysfs" and not ctx.new_netns:
        bind(sc, "/sys", dest, replace(opts, flags=opts.flags | MS_BIND | MS_REC), where)
    else:
        if os.path.lexists(dest) and not os.path.isdir(dest):
            raise ConfigError(
                f"{m.type} must be mounted on a directory", obj=f"{where}.destination"
            )
        make_dir(dest)
        flags = opts.flags
        if m.type == "tmpfs" and flags & MS_RDONLY:
            flags &= ~MS_RDONLY
            # Remembered as the container will see it: the remount comes after pivot_root.
            inside = "/" + os.path.relpath(dest, ctx.rootfs).removeprefix(".")
            ctx.readonly_later.append((inside.replace("//", "/"), flags))
        sc.mount(m.source or m.type, dest, m.type or None, flags, opts.data or None)
    for propagation in opts.propagation:
        sc.mount(None, dest, None, propagation)


def bind(sc: Syscall, source: str, dest: str, opts: MountOptions, where: str) -> None:
    try:
        is_dir = os.path.isdir(source)
        os.stat(source)
    except OSError as e:
        raise ConfigError(f"bind source {source} ({os.strerror(e.errno or 0)})",
                          obj=f"{where}.source") from None  # fmt: skip
    if is_dir:
        make_dir(dest)
    else:
        make_file(dest)
    sc.mount(source, dest, "bind", MS_BIND | (opts.flags & MS_REC))
    extra = opts.flags & ~(MS_BIND | MS_REC | MS_REMOUNT)
    if extra:
        remount(sc, dest, opts.flags | MS_BIND | MS_REMOUNT)


def remount(sc: Syscall, dest: str, flags: int) -> None:
    """A bind remount; on EPERM retry with the locked flags of the mount kept (runc does the
    same: in a user namespace nosuid/nodev/noexec/ro of a host mount cannot be cleared)."""
    try:
        sc.mount(None, dest, None, flags)
    except KernelError as e:
        if e.errno != 1:  # EPERM
            raise
        st = os.statvfs(dest).f_flag
        locked = 0
        for st_bit, ms_bit in _LOCKED:
            if st & st_bit:
                locked |= ms_bit
        if flags & locked == locked:
            raise
        sc.mount(None, dest, None, flags | locked)


def mount_cgroup(sc: Syscall, dest: str, opts: MountOptions, ctx: MountContext) -> None:
    mounts = procfs.parse_mountinfo(procfs.read("self", "mountinfo"))
    lines = procfs.parse_proc_cgroup(procfs.read("self", "cgroup"))
    v1 = [m for m in mounts if m.fstype == "cgroup"]
    if not v1:
        _mount_cgroup2(sc, dest, opts, ctx, mounts, lines)
        return
    make_dir(dest)
    base = opts.flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # runc leaves this tmpfs writable even for a read-only cgroup mount; only the binds are ro.
    sc.mount("tmpfs", dest, "tmpfs", base, "mode=755")
    seen: set[str] = set()
    for line in lines:
        if not line.controllers:
            continue  # the unified hierarchy of a hybrid host: runc does not mount it
        m = next((m for m in v1 if set(line.controllers) <= set(m.super_options)), None)
        if m is None or m.mount_point in seen:
            continue
        seen.add(m.mount_point)
        name = os.path.basename(m.mount_point)
        sub = os.path.join(dest, name)
        make_dir(sub)
        if ctx.new_cgroupns:
            # The namespace's root is the container's cgroup: a fresh mount shows just that.
            sc.mount("cgroup", sub, "cgroup", opts.flags | base, ",".join(line.controllers))
        else:
            rel = os.path.relpath(line.path, m.root)
            source = m.mount_point if rel == "." else os.path.join(m.mount_point, rel)
            sc.mount(source, sub, "bind", MS_BIND | MS_REC)
            remount(sc, sub, opts.flags | base | MS_BIND | MS_REMOUNT | MS_REC)
        if "," in name:  # co-mounted controllers (cpu,cpuacct): a symlink for each
            for part in name.split(","):
                make_symlink(name, os.path.join(dest, part))


def _mount_cgroup2(
    sc: Syscall,
    dest: str,
    opts: MountOptions,
    ctx: MountContext,
    mounts: list[procfs.MountInfo],
    lines: list[procfs.CgroupLine],
) -> None:
    make_dir(dest)
    if ctx.new_cgroupns:
        sc.mount("cgroup2", dest, "cgroup2", opts.flags, None)
        return
    v2 = next((m for m in mounts if m.fstype == "cgroup2"), None)
    path = procfs.unified_path(lines)
    if v2 is None or path is None:
        raise UnsupportedError("no cgroup filesystem on this host to mount", obj=dest)
    rel = os.path.relpath(path, v2.root)
    source = v2.mount_point if rel == "." else os.path.join(v2.mount_point, rel)
    sc.mount(source, dest, "bind", MS_BIND | MS_REC)
    remount(sc, dest, opts.flags | MS_BIND | MS_REMOUNT | MS_REC)


def finish_readonly(sc: Syscall, ctx: MountContext) -> None:
    """Make the read-only tmpfs mounts read-only, now that their contents exist."""
    for dest, flags in ctx.readonly_later:
        sc.mount(None, dest, None, flags | MS_REMOUNT | MS_RDONLY)
