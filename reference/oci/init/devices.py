"""The container's /dev: default device nodes, the spec's `linux.devices`, the usual symlinks.

As runc: nodes are made with mknod, or, in a user namespace (where mknod is refused), bind-mounted
from the host's /dev; the defaults are the six of the OCI spec's "Default Devices" unless the
spec lists the same path; /dev/ptmx points at the container's devpts instance. Nothing is done
when the spec bind-mounts the host's /dev (the container then has the host's nodes).
"""

from __future__ import annotations

import os
import stat

from reference.errors import ConfigError, KernelError
from reference.linux.syscall import MS_BIND, Syscall
from reference.oci.init.hostio import InitIO
from reference.oci.init.paths import make_dir, make_file, make_symlink, secure_join
from reference.oci.spec import Device, Spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from reference.cgroups.resources import DeviceType

# config-linux.md "Default Devices": path, major, minor (character devices, mode 0666).
DEFAULT_DEVICES: tuple[tuple[str, int, int], ...] = (
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
)

# runc's AllowedDevices: what the device cgroup lets every container use, appended after the
# spec's own rules (the default spec denies everything first). (type, major, minor, access);
# None is the wildcard.
ALLOWED_DEVICES: tuple[tuple[DeviceType, int | None, int | None, str], ...] = (
    ("c", None, None, "m"),
    ("b", None, None, "m"),
    ("c", 1, 3, "rwm"),
    ("c", 1, 8, "rwm"),
    ("c", 1, 7, "rwm"),
    ("c", 5, 0, "rwm"),
    ("c", 1, 5, "rwm"),
    ("c", 1, 9, "rwm"),
    ("c", 5, 1, "rwm"),  # /dev/console
    ("c", 136, None, "rwm"),  # /dev/pts/*
    ("c", 5, 2, "rwm"),  # /dev/ptmx
    ("c", 10, 200, "rwm"),  # /dev/net/tun
)

_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def needs_dev_setup(spec: Spec) -> bool:
    return not any(
        os.path.normpath(m.destination) == "/dev" and (m.type == "bind" or "bind" in m.options
                                                       or "rbind" in m.options)
        for m in spec.mounts
    )  # fmt: skip


def setup_dev(sc: Syscall, io: InitIO, rootfs: str, spec: Spec, *, bind: bool) -> None:
    listed = {os.path.normpath(d.path) for d in spec.linux.devices}
    for path, major, minor in DEFAULT_DEVICES:
        if path not in listed:
            default = Device(type="c", path=path, major=major, minor=minor, file_mode=0o666)
            create_device(sc, io, rootfs, default, bind=bind, where=path)
    for i, dev in enumerate(spec.linux.devices):
        create_device(sc, io, rootfs, dev, bind=bind, where=f"linux.devices[{i}]")
    links = [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
        ("pts/ptmx", "/dev/ptmx"),
    ]
    if os.path.exists("/proc/kcore"):  # runc checks the host's, before pivot_root
        links.append(("/proc/kcore", "/dev/core"))
    for target, link in links:
        make_symlink(target, secure_join(rootfs, link))


def create_device(
    sc: Syscall, io: InitIO, rootfs: str, dev: Device, *, bind: bool, where: str
) -> None:
    dest = secure_join(rootfs, dev.path)
    make_dir(os.path.dirname(dest))
    if bind:
        if not os.path.exists(dev.path):
            raise ConfigError(f"{dev.path} does not exist on the host to bind", obj=where)
        make_file(dest)
        sc.mount(dev.path, dest, "bind", MS_BIND)
        return
    mode = _TYPES[dev.type] | (0o666 if dev.file_mode is None else dev.file_mode & 0o7777)
    if os.path.lexists(dest):
        try:
            os.unlink(dest)  # a placeholder of the image: the node replaces it
        except OSError as e:
            raise KernelError("unlink", e.errno or 0, obj=dest) from None
    rdev = 0 if dev.type == "p" else os.makedev(dev.major or 0, dev.minor or 0)
    sc.mknod(dest, mode, rdev)
    if dev.uid or dev.gid:
        io.chown(dest, dev.uid or 0, dev.gid or 0)
