"""A container's Config + HostConfig → the OCI config.json its runtime gets, as dockerd 20.10
builds it (oci/defaults.go, daemon/oci_linux.go): namespaces, hostname, kernel.domainname,
env, user, default mounts, the /etc bind mounts, user mounts with propagation, cgroup
resources, capabilities, seccomp, masked and read-only paths.

Joining another container's namespaces ("container:<name>") needs that container's init PID;
the caller passes `joined`, which maps the mode string to (pid, host_config) of a running one.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference.engine import security
from reference.errors import ConfigError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROPAGATION_RANK = {"shared": 2, "rshared": 2, "slave": 1, "rslave": 1}
Joined = Callable[[str, str], tuple[int, Mapping[str, Any]]]  # (kind, "container:x")


@dataclass(frozen=True)
class SpecInputs:
    cid: str
    config: Mapping[str, Any]  # Docker's Config (image defaults merged in)
    host_config: Mapping[str, Any]
    mounts: list[dict[str, Any]]  # mounts.parse() output
    rootfs: Path
    etc_files: Mapping[str, Path]  # hostname/hosts/resolv.conf → host path
    shm_path: Path | None  # the shareable /dev/shm on the host, or a donor's
    cgroups_path: str
    seccomp_supported: bool
    cgroupns_default: str  # "host" on v1/hybrid hosts, "private" on v2-only
    netns_path: str | None = None  # the network sandbox refd made (reference.network)


def _env(config: Mapping[str, Any]) -> list[str]:
    """CreateDaemonEnvironment: PATH, HOSTNAME (and TERM with a tty), then Config.Env wins."""
    base = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={config.get('Hostname', '')}"]
    if config.get("Tty"):
        base.append("TERM=xterm")
    merged: dict[str, str] = {}
    for item in base + list(config.get("Env") or []):
        key = item.split("=", 1)[0]
        merged[key] = item
    return list(merged.values())


def _read_db(path: Path) -> list[list[str]]:
    try:
        return [
            line.split(":") for line in path.read_text().splitlines() if line and line[0] != "#"
        ]
    except OSError:
        return []


def resolve_user(rootfs: Path, user: str) -> dict[str, Any]:
    """Config.User (name|uid[:group|gid]) against the image's /etc/passwd and /etc/group."""
    name, _, group = (user or "0").partition(":")
    passwd = _read_db(rootfs / "etc" / "passwd")
    groups = _read_db(rootfs / "etc" / "group")
    uid: int | None = int(name) if name.isdigit() else None
    gid: int | None = None
    login = None
    for entry in passwd:
        if len(entry) >= 4 and (entry[0] == name or (uid is not None and entry[2] == str(uid))):
            uid, gid, login = int(entry[2]), int(entry[3]), entry[0]
            break
    if uid is None:
        raise ConfigError(f"unable to find user {name}: no matching entries in passwd file")
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            found = [e for e in groups if len(e) >= 3 and e[0] == group]
            if not found:
                raise ConfigError(
                    f"unable to find group {group}: no matching entries in group file"
                )
            gid = int(found[0][2])
    extra = sorted(
        {int(e[2]) for e in groups if len(e) >= 4 and login and login in e[3].split(",")}
        - {gid or 0}
    )
    spec: dict[str, Any] = {"uid": uid, "gid": gid or 0}
    if extra:
        spec["additionalGids"] = extra
    return spec


def _default_mounts(inputs: SpecInputs) -> list[dict[str, Any]]:
    hc = inputs.host_config
    privileged = bool(hc.get("Privileged"))
    mounts: list[dict[str, Any]] = [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "rw" if privileged else "ro"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
    ]
    ipc = hc.get("IpcMode") or "private"
    shm_size = hc.get("ShmSize") or 64 * 1024 * 1024
    if ipc == "private":
        mounts.append(
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}"],
            }
        )
    elif ipc == "host":
        mounts.append(_bind("/dev/shm", Path("/dev/shm"), ["rbind", "rprivate"]))
    elif ipc != "none" and inputs.shm_path is not None:  # shareable, container:<donor>
        mounts.append(_bind("/dev/shm", inputs.shm_path, ["rbind", "rprivate"]))
    return mounts


def _bind(destination: str, source: Path, options: list[str]) -> dict[str, Any]:
    return {"destination": destination, "type": "bind", "source": str(source), "options": options}


def _user_mounts(inputs: SpecInputs, linux: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for m in inputs.mounts:
        if m["Type"] == "tmpfs":
            options = ["nosuid", "nodev", "noexec"] + ([] if m["RW"] else ["ro"])
            if m.get("SizeBytes"):
                options.append(f"size={m['SizeBytes']}")
            if m.get("Mode"):
                options += [o for o in str(m["Mode"]).split(",") if o]
            out.append(
                {
                    "destination": m["Destination"],
                    "type": "tmpfs",
                    "source": "tmpfs",
                    "options": options,
                }
            )
            continue
        propagation = m.get("Propagation") or "rprivate"
        # A shared (slave) bind needs a shared (slave) root, else the runtime's rslave root
        # cuts the mount off from the host's peer group (moby daemon/oci_linux.go WithMounts).
        wanted = PROPAGATION_RANK.get(propagation, 0)
        have = PROPAGATION_RANK.get(linux.get("rootfsPropagation", ""), 0)
        if wanted > have:
            linux["rootfsPropagation"] = "shared" if wanted == 2 else "rslave"
        options = ["bind" if m.get("NonRecursive") else "rbind"]
        if not m["RW"]:
            options.append("ro")
        options.append(propagation)
        out.append(_bind(m["Destination"], Path(m["Source"]), options))
    return out


def _namespaces(inputs: SpecInputs, joined: Joined) -> list[dict[str, Any]]:
    hc = inputs.host_config
    found: list[dict[str, Any]] = [{"type": "mount"}]
    modes = {
        "pid": hc.get("PidMode") or "",
        "ipc": hc.get("IpcMode") or "",
        "uts": hc.get("UTSMode") or "",
        "network": "host" if (hc.get("NetworkMode") or "") == "host" else "",
    }
    for kind, mode in modes.items():
        if mode == "host":
            continue
        if kind == "network" and inputs.netns_path:
            found.append({"type": "network", "path": inputs.netns_path})
            continue
        if mode.startswith("container:"):
            pid, _ = joined(kind, mode)
            ns = {"network": "net"}.get(kind, kind)
            found.append({"type": kind, "path": f"/proc/{pid}/ns/{ns}"})
        else:
            found.append({"type": kind})
    cgroupns = hc.get("CgroupnsMode") or inputs.cgroupns_default
    if cgroupns == "private":
        found.append({"type": "cgroup"})
    return found


def build_resources(hc: Mapping[str, Any]) -> dict[str, Any]:
    devices: list[dict[str, Any]] = [{"allow": bool(hc.get("Privileged")), "access": "rwm"}]
    resources: dict[str, Any] = {"devices": devices}
    memory: dict[str, Any] = {}
    if hc.get("Memory"):
        memory["limit"] = hc["Memory"]
    if hc.get("MemorySwap"):
        memory["swap"] = hc["MemorySwap"]
    if hc.get("MemoryReservation"):
        memory["reservation"] = hc["MemoryReservation"]
    if hc.get("MemorySwappiness") not in (None, -1):
        memory["swappiness"] = hc["MemorySwappiness"]
    if hc.get("OomKillDisable"):
        memory["disableOOMKiller"] = True
    cpu: dict[str, Any] = {}
    if hc.get("CpuShares"):
        cpu["shares"] = hc["CpuShares"]
    if hc.get("NanoCpus"):
        cpu["period"] = 100_000
        cpu["quota"] = hc["NanoCpus"] * 100_000 // 10**9
    else:
        if hc.get("CpuPeriod"):
            cpu["period"] = hc["CpuPeriod"]
        if hc.get("CpuQuota"):
            cpu["quota"] = hc["CpuQuota"]
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    for key, value in (("memory", memory), ("cpu", cpu)):
        if value:
            resources[key] = value
    if hc.get("PidsLimit"):
        resources["pids"] = {"limit": hc["PidsLimit"]}
    if hc.get("BlkioWeight"):
        resources["blockIO"] = {"weight": hc["BlkioWeight"]}
    return resources


def devices(hc: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """HostConfig.Devices (--device HOST[:CONTAINER[:PERMS]]) → linux.devices nodes and
    device cgroup allow rules, from the host node's type and numbers."""
    nodes, rules = [], []
    for entry in hc.get("Devices") or []:
        host = entry.get("PathOnHost") or ""
        try:
            st = os.stat(host)
        except OSError as e:
            raise ConfigError(
                f'error gathering device information while adding custom device "{host}": '
                f"{e.strerror.lower() if e.strerror else e}"
            ) from None
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise ConfigError(
                f"error gathering device information while adding custom device "
                f'"{host}": not a device node'
            )
        kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        nodes.append(
            {
                "path": entry.get("PathInContainer") or host,
                "type": kind,
                "major": major,
                "minor": minor,
                "fileMode": stat.S_IMODE(st.st_mode),
                "uid": 0,
                "gid": 0,
            }
        )
        rules.append(
            {
                "allow": True,
                "type": kind,
                "major": major,
                "minor": minor,
                "access": entry.get("CgroupPermissions") or "rwm",
            }
        )
    return nodes, rules


def build(inputs: SpecInputs, joined: Joined) -> dict[str, Any]:
    config, hc = inputs.config, inputs.host_config
    privileged = bool(hc.get("Privileged"))
    opts = security.parse_security_opts(hc.get("SecurityOpt") or [])
    caps = security.capabilities(hc.get("CapAdd") or [], hc.get("CapDrop") or [], privileged)
    argv = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
    process: dict[str, Any] = {
        "terminal": bool(config.get("Tty")),
        "user": resolve_user(inputs.rootfs, config.get("User") or ""),
        "args": argv,
        "env": _env(config),
        "cwd": config.get("WorkingDir") or "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": opts["no_new_privileges"],
        "oomScoreAdj": hc.get("OomScoreAdj") or 0,
    }
    linux: dict[str, Any] = {}
    namespaces = _namespaces(inputs, joined)
    sysctl = dict(hc.get("Sysctls") or {})
    if config.get("Domainname"):
        # No OCI field exists for the NIS domain name; the namespaced sysctl sets it.
        sysctl["kernel.domainname"] = config["Domainname"]
    if any(ns["type"] == "network" and ns.get("path") == inputs.netns_path for ns in namespaces):
        # Docker 20.10 (withCommonOptions): unprivileged ports and ICMP sockets in a private netns.
        sysctl.setdefault("net.ipv4.ip_unprivileged_port_start", "0")
        sysctl.setdefault("net.ipv4.ping_group_range", "0 2147483647")
    mounts = _default_mounts(inputs)
    user_mounts = _user_mounts(inputs, linux)
    etc_options = ["rbind", "rprivate"] + (["ro"] if hc.get("ReadonlyRootfs") else [])
    etc = [
        _bind(f"/etc/{name}", path, list(etc_options)) for name, path in inputs.etc_files.items()
    ]
    overridden = {m["destination"] for m in user_mounts}
    mounts = [m for m in mounts if m["destination"] not in overridden]
    etc = [m for m in etc if m["destination"] not in overridden]
    # Docker sorts mounts by depth so that a parent is mounted before what lies under it.
    ordered = sorted([*etc, *user_mounts], key=lambda m: m["destination"].count("/"))
    nodes, rules = devices(hc)
    resources = build_resources(hc)
    resources["devices"] += rules
    if nodes:
        linux["devices"] = nodes
    linux.update(
        sysctl=sysctl,
        resources=resources,
        cgroupsPath=inputs.cgroups_path,
        namespaces=namespaces,
    )
    unconfined = privileged or opts.get("systempaths_unconfined")
    if not unconfined:
        masked, readonly = hc.get("MaskedPaths"), hc.get("ReadonlyPaths")
        linux["maskedPaths"] = list(security.MASKED_PATHS if masked is None else masked)
        linux["readonlyPaths"] = list(security.READONLY_PATHS if readonly is None else readonly)
    profile = opts["seccomp"]
    if inputs.seccomp_supported and not privileged and profile != "unconfined":
        chosen = profile if isinstance(profile, dict) else security.default_profile()
        linux["seccomp"] = security.seccomp_section(chosen, caps)
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": {"path": str(inputs.rootfs), "readonly": bool(hc.get("ReadonlyRootfs"))},
        "mounts": [*mounts, *ordered],
        "linux": linux,
    }
    if (hc.get("UTSMode") or "") != "host":
        spec["hostname"] = config.get("Hostname", "")
    return spec
