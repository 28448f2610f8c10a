"""`run`/`create` flags → the Engine API's create body (Config, HostConfig,
NetworkingConfig), as the docker CLI's opts/parse.go builds it, with its error wording for bad
values (networking flags: netopts.py):
    invalid argument "12x" for "-m, --memory" flag: invalid size: '12x'
"""

from __future__ import annotations

import os

from reference.cli.ctl import netopts
from reference.cli.ctl.flags import Flag, UsageError, flag
from reference.engine.units import memory_flag, ram_in_bytes
from reference.errors import ConfigError

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; typing costs ms to import
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

RUN_FLAGS: list[Flag] = [
    flag("--detach,-d", "bool", False),
    flag("--rm", "bool", False),
    flag("--name"),
    flag("--hostname,-h"),
    flag("--domainname"),
    flag("--dns", "list"),
    flag("--dns-search", "list"),
    flag("--dns-option,--dns-opt", "list", key="dns_option"),
    flag("--add-host", "list"),
    flag("--env,-e", "list"),
    flag("--env-file", "list"),
    flag("--label,-l", "list"),
    flag("--memory,-m"),
    flag("--memory-swap"),
    flag("--memory-reservation"),
    flag("--memory-swappiness"),
    flag("--cpus"),
    flag("--cpu-shares,-c"),
    flag("--cpu-period"),
    flag("--cpu-quota"),
    flag("--cpuset-cpus"),
    flag("--cpuset-mems"),
    flag("--pids-limit"),
    flag("--blkio-weight"),
    flag("--oom-kill-disable", "bool", False),
    flag("--oom-score-adj"),
    flag("--network,--net", "list", key="network"),
    flag("--ip"),
    flag("--network-alias,--net-alias", "list", key="network_alias"),
    flag("--mac-address"),
    flag("--expose", "list"),
    flag("--publish-all,-P", "bool", False),
    flag("--ipc"),
    flag("--pid"),
    flag("--uts"),
    flag("--cgroupns"),
    flag("--mount", "list"),
    flag("--volume,-v", "list"),
    flag("--tmpfs", "list"),
    flag("--shm-size"),
    flag("--read-only", "bool", False),
    flag("--cap-add", "list"),
    flag("--cap-drop", "list"),
    flag("--security-opt", "list"),
    flag("--privileged", "bool", False),
    flag("--sysctl", "list"),
    flag("--pull", default="missing"),
    flag("--runtime"),
    flag("--publish,-p", "list"),
    flag("--workdir,-w"),
    flag("--user,-u"),
    flag("--entrypoint"),
    flag("--stop-signal"),
    flag("--stop-timeout"),
    flag("--restart"),
    flag("--interactive,-i", "bool", False),
    flag("--tty,-t", "bool", False),
    flag("--init", "bool", False),
    flag("--device", "list"),
]


def _size(verb: str, flags: str, text: str | None, *, swap: bool = False) -> int | None:
    if text is None:
        return None
    try:
        return memory_flag(text, allow_unlimited=swap)
    except ConfigError as e:
        raise UsageError(verb, f'invalid argument "{text}" for "{flags}" flag: {e}') from None


def _int(verb: str, flags: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(
            verb,
            f'invalid argument "{text}" for "{flags}" flag: strconv.ParseInt: parsing '
            f'"{text}": invalid syntax',
        ) from None


def _mount(verb: str, text: str) -> dict[str, Any]:
    """--mount type=bind,source=/a,target=/b,readonly,bind-propagation=rshared (CSV)."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        fields[key.strip().lower()] = value if sep else "true"
    kind = fields.pop("type", "volume")
    mount: dict[str, Any] = {"Type": kind}
    for key, value in fields.items():
        if key in ("source", "src"):
            mount["Source"] = value
        elif key in ("target", "destination", "dst"):
            mount["Target"] = value
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = value.lower() in ("true", "1")
        elif key == "bind-propagation":
            mount.setdefault("BindOptions", {})["Propagation"] = value
        elif key == "bind-nonrecursive":
            mount.setdefault("BindOptions", {})["NonRecursive"] = value.lower() in ("true", "1")
        elif key == "tmpfs-size":
            mount.setdefault("TmpfsOptions", {})["SizeBytes"] = ram_in_bytes(value)
        elif key == "tmpfs-mode":
            mount.setdefault("TmpfsOptions", {})["Mode"] = int(value, 8)
        elif key in ("consistency",):
            continue
        else:
            raise UsageError(
                verb,
                f'invalid argument "{text}" for "--mount" flag: '
                f"unexpected key '{key}' in '{part}'",
            )
    return mount


def _env(values: Mapping[str, Any]) -> list[str]:
    env: list[str] = []
    for path in values["env_file"]:
        with open(path) as f:
            env += [line.strip() for line in f if line.strip() and not line.startswith("#")]
    for item in values["env"]:
        # -e NAME without a value takes it from refctl's environment, as docker does.
        if "=" not in item:
            if item in os.environ:
                env.append(f"{item}={os.environ[item]}")
            continue
        env.append(item)
    return env


def build(verb: str, values: Mapping[str, Any], image: str, command: list[str]) -> dict[str, Any]:
    """The POST /containers/create body."""
    if values["tty"]:
        raise UsageError(verb, "a terminal (-t) is not supported by refd yet")
    exposed, bindings = netopts.ports(verb, values["publish"], values["expose"])
    network_mode, endpoints = netopts.networking(verb, values)
    mac = netopts.mac_address(verb, values["mac_address"])
    labels = dict(item.partition("=")[::2] for item in values["label"])
    entrypoint = None
    if values["entrypoint"] is not None:
        import shlex  # (imports re: only for --entrypoint)

        entrypoint = shlex.split(values["entrypoint"]) if values["entrypoint"] else [""]
    config: dict[str, Any] = {
        "Hostname": values["hostname"] or "",
        "Domainname": values["domainname"] or "",
        "User": values["user"] or "",
        "AttachStdin": values["interactive"],
        "AttachStdout": not values["detach"],
        "AttachStderr": not values["detach"],
        "ExposedPorts": exposed,
        "Tty": False,
        "OpenStdin": values["interactive"],
        "StdinOnce": False,
        "Env": _env(values),
        "Cmd": command or None,
        "Image": image,
        "WorkingDir": values["workdir"] or "",
        "Entrypoint": entrypoint,
        "Labels": labels,
    }
    if mac:
        config["MacAddress"] = mac
    if values["stop_signal"]:
        config["StopSignal"] = values["stop_signal"]
    if values["stop_timeout"] is not None:
        config["StopTimeout"] = _int(verb, "--stop-timeout", values["stop_timeout"])
    nano = None
    if values["cpus"] is not None:
        try:
            nano = round(float(values["cpus"]) * 1e9)
        except ValueError:
            raise UsageError(
                verb,
                f'invalid argument "{values["cpus"]}" for "--cpus" flag: '
                "failed to parse as a rational number",
            ) from None
    restart = values["restart"] or "no"
    name, _, count = restart.partition(":")
    host_config: dict[str, Any] = {
        "Binds": values["volume"],
        "NetworkMode": network_mode,
        "PortBindings": bindings,
        "PublishAllPorts": values["publish_all"],
        "RestartPolicy": {"Name": name, "MaximumRetryCount": int(count or 0)},
        "AutoRemove": values["rm"],
        "CapAdd": values["cap_add"],
        "CapDrop": values["cap_drop"],
        "CgroupnsMode": values["cgroupns"] or "",
        "Dns": values["dns"],
        "DnsOptions": values["dns_option"],
        "DnsSearch": values["dns_search"],
        "ExtraHosts": values["add_host"],
        "IpcMode": values["ipc"] or "",
        "OomScoreAdj": _int(verb, "--oom-score-adj", values["oom_score_adj"]) or 0,
        "PidMode": values["pid"] or "",
        "Privileged": values["privileged"],
        "ReadonlyRootfs": values["read_only"],
        "SecurityOpt": _security_opts(values["security_opt"]),
        "UTSMode": values["uts"] or "",
        "ShmSize": _size(verb, "--shm-size", values["shm_size"]) or 0,
        "Runtime": values["runtime"] or "",
        "Memory": _size(verb, "-m, --memory", values["memory"]) or 0,
        "MemorySwap": _size(verb, "--memory-swap", values["memory_swap"], swap=True) or 0,
        "MemoryReservation": _size(verb, "--memory-reservation", values["memory_reservation"]) or 0,
        "MemorySwappiness": _int(verb, "--memory-swappiness", values["memory_swappiness"]),
        "NanoCpus": nano or 0,
        "CpuShares": _int(verb, "-c, --cpu-shares", values["cpu_shares"]) or 0,
        "CpuPeriod": _int(verb, "--cpu-period", values["cpu_period"]) or 0,
        "CpuQuota": _int(verb, "--cpu-quota", values["cpu_quota"]) or 0,
        "CpusetCpus": values["cpuset_cpus"] or "",
        "CpusetMems": values["cpuset_mems"] or "",
        "PidsLimit": _int(verb, "--pids-limit", values["pids_limit"]),
        "BlkioWeight": _int(verb, "--blkio-weight", values["blkio_weight"]) or 0,
        "OomKillDisable": values["oom_kill_disable"],
        "Mounts": [_mount(verb, m) for m in values["mount"]],
        "Tmpfs": {t.partition(":")[0]: t.partition(":")[2] for t in values["tmpfs"]},
        "Sysctls": dict(s.partition("=")[::2] for s in values["sysctl"]),
        "Init": values["init"] or None,
        "Devices": [_device(d) for d in values["device"]],
    }
    networking = {"EndpointsConfig": endpoints}
    return {**config, "HostConfig": host_config, "NetworkingConfig": networking}


def _device(spec: str) -> dict[str, str]:
    """--device HOST[:CONTAINER][:PERMS]"""
    parts = spec.split(":")
    perms = parts.pop() if len(parts) > 1 and set(parts[-1]) <= set("rwm") else "rwm"
    host = parts[0]
    return {
        "PathOnHost": host,
        "PathInContainer": parts[1] if len(parts) > 1 else host,
        "CgroupPermissions": perms,
    }


def _security_opts(opts: list[str]) -> list[str]:
    """seccomp=<file> is read here and sent as JSON, as the docker CLI does."""
    out = []
    for opt in opts:
        key, sep, value = opt.partition("=")
        if key == "seccomp" and sep and value != "unconfined":
            with open(value) as f:
                out.append(f"seccomp={f.read()}")
        else:
            out.append(opt)
    return out
