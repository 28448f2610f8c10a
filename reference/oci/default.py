"""The config `refrun spec` writes: the same document as `runc spec`.

Matching runc byte-for-byte in meaning lets a bundle made by one runtime be run by the other,
which the conformance suite relies on when it compares them.
"""

from __future__ import annotations

import os

OCI_VERSION = "1.2.0"

# Docker 20.10's default set (moby oci/caps/defaults.go), which the suite compares against.
DOCKER_DEFAULT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

RUNC_DEFAULT_CAPS: tuple[str, ...] = ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")

MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
    "/sys/devices/virtual/tpm",
)

READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)


def _mounts(rootless: bool) -> list[dict[str, object]]:
    table: list[tuple[str, str, str, tuple[str, ...]]] = [
        ("/proc", "proc", "proc", ()),
        ("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")),
        ("/dev/pts", "devpts", "devpts",
         ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5")),
        ("/dev/shm", "tmpfs", "shm", ("nosuid", "noexec", "nodev", "mode=1777", "size=65536k")),
        ("/dev/mqueue", "mqueue", "mqueue", ("nosuid", "noexec", "nodev")),
        ("/sys", "sysfs", "sysfs", ("nosuid", "noexec", "nodev", "ro")),
        ("/sys/fs/cgroup", "cgroup", "cgroup", ("nosuid", "noexec", "nodev", "relatime", "ro")),
    ]  # fmt: skip
    out: list[dict[str, object]] = []
    for dest, fstype, source, opts in table:
        if rootless:
            if dest == "/sys":
                # Mounting sysfs needs a network namespace the user namespace owns; rootless
                # shares the host's, so bind the host's /sys read-only instead.
                fstype, source, opts = "none", "/sys", ("rbind", "nosuid", "noexec", "nodev", "ro")
            # Ids in options name host ids the user namespace does not map.
            opts = tuple(o for o in opts if not o.startswith(("uid=", "gid=")))
        entry: dict[str, object] = {"destination": dest, "type": fstype, "source": source}
        if opts:  # runc omits empty options
            entry["options"] = list(opts)
        out.append(entry)
    return out


def _cgroup2_unified() -> bool:
    # cgroup.controllers exists only at the root of a cgroup v2 hierarchy.
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def default_spec(
    args: list[str] | None = None, rootless: bool = False, *, cgroupns: bool | None = None
) -> dict[str, object]:
    """A fresh `runc spec` document (key order as runc writes it).

    `cgroupns` defaults to what runc does: a cgroup namespace only on a cgroup v2 host, where
    it hides the host's hierarchy without breaking anything. `rootless` applies runc's
    `--rootless` rewrite: a user namespace mapping the caller to root, no network namespace
    (an unprivileged user cannot configure one), /sys bind-mounted since sysfs cannot be
    mounted, no uid=/gid= mount options, no cgroup resources.
    """
    caps = list(RUNC_DEFAULT_CAPS)
    namespaces = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
    if _cgroup2_unified() if cgroupns is None else cgroupns:
        namespaces.append({"type": "cgroup"})
    linux: dict[str, object] = {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": namespaces,
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
    }
    if rootless:
        namespaces = [ns for ns in namespaces if ns["type"] not in ("network", "user")]
        namespaces.append({"type": "user"})
        linux = {
            # Mappings come first, as runc's struct order puts them first in the JSON.
            "uidMappings": [{"containerID": 0, "hostID": os.geteuid(), "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": os.getegid(), "size": 1}],
            # No resources: an unprivileged user usually cannot write cgroup files.
            "namespaces": namespaces,
            "maskedPaths": linux["maskedPaths"],
            "readonlyPaths": linux["readonlyPaths"],
        }
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": list(args) if args is not None else ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": list(caps), "permitted": list(caps)},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": _mounts(rootless),
        "linux": linux,
    }
