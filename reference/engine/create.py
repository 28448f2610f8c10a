"""POST /containers/create: a request body → a checked container on disk, as dockerd's
create does it: resolve the image, merge its runtime config under the request's, check the
HostConfig (hostconfig.py, mounts.py, security.py), reserve the name, write
data-root/containers/<id>/ (config, /etc files) and prepare the rootfs snapshot.

Any failure undoes every step already made: the name is released, the snapshot removed and
the directory deleted, so a refused create leaves nothing (no mount, no directory).
"""

from __future__ import annotations

import copy
import shutil
import socket
from typing import TYPE_CHECKING, Any

from reference.engine import etcfiles, hostconfig, mounts, ocispec, security
from reference.engine.store import Container, now_rfc3339
from reference.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from reference.engine.lifecycle import Engine


# What Docker's inspect shows for fields a client left out (Go's zero values, dockerd's defaults).
CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "",
    "Domainname": "",
    "User": "",
    "AttachStdin": False,
    "AttachStdout": False,
    "AttachStderr": False,
    "Tty": False,
    "OpenStdin": False,
    "StdinOnce": False,
    "Env": None,
    "Cmd": None,
    "Image": "",
    "Volumes": None,
    "WorkingDir": "",
    "Entrypoint": None,
    "OnBuild": None,
    "Labels": {},
}
HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "default", "PortBindings": {}, "AutoRemove": False, "VolumeDriver": "",
    "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "VolumesFrom": None,
    "CapAdd": None, "CapDrop": None, "Dns": [], "DnsOptions": [], "DnsSearch": [],
    "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private", "Cgroup": "", "Links": None,
    "OomScoreAdj": 0, "PidMode": "", "Privileged": False, "PublishAllPorts": False,
    "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "", "UsernsMode": "",
    "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
    "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": None,
    "BlkioDeviceWriteBps": None, "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None,
    "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
    "CpusetCpus": "", "CpusetMems": "", "Devices": [], "DeviceCgroupRules": None,
    "DeviceRequests": None, "KernelMemory": 0, "KernelMemoryTCP": 0, "MemoryReservation": 0,
    "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None,
    "Ulimits": None, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
    "IOMaximumBandwidth": 0,
}  # fmt: skip


def fill_defaults(config: dict[str, Any], host_config: dict[str, Any]) -> None:
    for key, value in CONFIG_DEFAULTS.items():
        if config.get(key) is None and value is not None:
            config[key] = copy.deepcopy(value)
        config.setdefault(key, value)
    for key, value in HOST_CONFIG_DEFAULTS.items():
        if host_config.get(key) in (None, "") and value not in (None, ""):
            host_config[key] = copy.deepcopy(value)
        host_config.setdefault(key, copy.deepcopy(value))
    if (host_config.get("RestartPolicy") or {}).get("Name") == "":
        host_config["RestartPolicy"] = {"Name": "no", "MaximumRetryCount": 0}


def normalized_ref(ref: str) -> str:
    """'bb' → 'bb:latest' as Docker names an image in its errors (ids and digests as given)."""
    name = ref.rsplit("/", 1)[-1]
    if "@" in ref or ":" in name or ref.startswith("sha256:") or len(ref) == 64:
        return ref
    return f"{ref}:latest"


def merge_image_config(config: dict[str, Any], image: dict[str, Any]) -> None:
    """moby daemon/commit.go merge(): the image's settings fill what the request left empty."""
    if not config.get("User"):
        config["User"] = image.get("User") or ""
    ports = dict(image.get("ExposedPorts") or {})
    ports.update(config.get("ExposedPorts") or {})
    config["ExposedPorts"] = ports or None
    user_env = list(config.get("Env") or [])
    keys = {e.split("=", 1)[0] for e in user_env}
    config["Env"] = user_env + [e for e in image.get("Env") or [] if e.split("=", 1)[0] not in keys]
    labels = dict(image.get("Labels") or {})
    labels.update(config.get("Labels") or {})
    config["Labels"] = labels
    if not config.get("Entrypoint"):
        if not config.get("Cmd"):
            config["Cmd"] = image.get("Cmd")
        if config.get("Entrypoint") is None:
            config["Entrypoint"] = image.get("Entrypoint")
    if not config.get("WorkingDir"):
        config["WorkingDir"] = image.get("WorkingDir") or ""
    volumes = dict(image.get("Volumes") or {})
    volumes.update(config.get("Volumes") or {})
    config["Volumes"] = volumes or None
    if not config.get("StopSignal") and image.get("StopSignal"):
        config["StopSignal"] = image["StopSignal"]


def _list(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ConfigError(f"invalid value for {key}: expected a list of strings", obj=key)


def normalize(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split the create body into Config and HostConfig, type-checking what refd reads."""
    if not isinstance(body, dict):
        raise ConfigError("invalid JSON: the container config must be an object")
    config = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
    host_config = body.get("HostConfig")
    host_config = {} if host_config is None else host_config
    if not isinstance(host_config, dict):
        raise ConfigError("invalid JSON: HostConfig must be an object", obj="HostConfig")
    for key in ("Cmd", "Entrypoint", "Env"):
        if config.get(key) is not None:
            config[key] = _list(config[key], key)
    for key in (
        "Binds",
        "CapAdd",
        "CapDrop",
        "Dns",
        "DnsSearch",
        "DnsOptions",
        "ExtraHosts",
        "SecurityOpt",
    ):
        host_config[key] = _list(host_config.get(key), key)
    if not config.get("Image"):
        raise ConfigError("Config.Image is required", obj="Image")
    return copy.deepcopy(config), copy.deepcopy(host_config)


def extra_hosts(host_config: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for entry in host_config.get("ExtraHosts") or []:
        name, sep, address = entry.partition(":")
        if not sep or not name or not address:
            raise ConfigError(f"bad format for add-host: {entry!r}", obj="ExtraHosts")
        found.append((name, address))
    return found


def wanted_networks(
    engine: Engine, host_config: dict[str, Any], networking: Any
) -> dict[str, dict[str, Any]]:
    """NetworkMode (and its EndpointsConfig entry) → {network name: EndpointSettings}.
    "default" is the default bridge ("none" when refd runs with bridge none)."""
    from reference.network.attachments import port_bindings

    mode = host_config.get("NetworkMode") or "default"
    endpoints = (networking or {}).get("EndpointsConfig") or {}
    if not isinstance(endpoints, dict):
        raise ConfigError("invalid NetworkingConfig.EndpointsConfig", obj="NetworkingConfig")
    if len(endpoints) > 1:
        raise ConfigError(
            "Container cannot be connected to network endpoints: " + ", ".join(endpoints)
        )
    port_bindings(host_config)  # a malformed binding is refused now, not at start
    if mode == "default":
        mode = "bridge"
        try:
            engine.network.get(mode)
        except NotFoundError:
            mode = "none"
    network = engine.network.get(mode)
    settings = dict(endpoints.get(mode) or endpoints.get(network.name) or {})
    settings["NetworkID"] = network.id
    return {network.name: settings}


def create(engine: Engine, name: str | None, body: dict[str, Any]) -> tuple[Container, list[str]]:
    config, host_config = normalize(body)
    try:
        image = engine.images.resolve(config["Image"])
    except NotFoundError:
        raise NotFoundError("No such image", obj=normalized_ref(config["Image"])) from None
    merge_image_config(config, image.config.get("config") or {})
    if not (config.get("Entrypoint") or config.get("Cmd")):
        raise ConfigError("No command specified")
    warnings = hostconfig.check_resources(host_config, engine.sysinfo)
    hostconfig.check_modes(host_config, config)
    runtime_name = host_config.get("Runtime") or engine.config.default_runtime
    if runtime_name not in engine.config.runtimes:
        raise ConfigError(f"Unknown runtime specified {runtime_name}")
    host_config["Runtime"] = runtime_name
    security.capabilities(host_config["CapAdd"], host_config["CapDrop"])  # unknown names
    security.parse_security_opts(host_config["SecurityOpt"])
    user_mounts = mounts.parse(host_config)
    ocispec.devices(host_config)  # a missing device node is refused now, not at start
    hosts = extra_hosts(host_config)
    networks = wanted_networks(engine, host_config, body.get("NetworkingConfig"))
    for mode_key in ("IpcMode", "PidMode"):
        mode = host_config.get(mode_key) or ""
        if mode.startswith("container:"):
            engine.joined_namespace(mode_key[:3].lower(), mode)  # refuses a bad donor now
    fill_defaults(config, host_config)
    if not host_config.get("CgroupnsMode"):
        host_config["CgroupnsMode"] = engine.cgroupns_default
    if not host_config.get("ShmSize"):
        host_config["ShmSize"] = engine.config.default_shm_size
    if not host_config.get("Privileged"):
        host_config.setdefault("MaskedPaths", list(security.MASKED_PATHS))
        host_config.setdefault("ReadonlyPaths", list(security.READONLY_PATHS))

    cid = engine.containers.new_id()
    if not config.get("Hostname"):
        shares_host = host_config["NetworkMode"] == "host" or host_config.get("UTSMode") == "host"
        config["Hostname"] = socket.gethostname() if shares_host else cid[:12]
    full_name = engine.containers.reserve(name, cid)
    argv = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
    container = Container(
        {
            "ID": cid,
            "Name": full_name,
            "Created": now_rfc3339(),
            "Path": argv[0],
            "Args": argv[1:],
            "Config": config,
            "Image": image.id,
            "CgroupsPath": f"{engine.config.cgroup_parent}/{cid}",
        },
        host_config,
    )
    container.runtime = runtime_name
    container.mounts = user_mounts
    container.networks = networks
    directory = engine.containers.dir(cid)
    try:
        directory.mkdir(mode=0o710)
        etcfiles.write(
            directory,
            etcfiles.EtcSpec(
                hostname=config["Hostname"],
                domainname=config.get("Domainname") or "",
                host_network=host_config["NetworkMode"] == "host",
                extra_hosts=hosts,
                dns=host_config["Dns"],
                dns_search=host_config["DnsSearch"],
                dns_options=host_config["DnsOptions"],
                daemon_dns=engine.config.dns,
                daemon_dns_search=engine.config.dns_search,
                daemon_dns_options=engine.config.dns_opts,
            ),
        )
        engine.snapshots.prepare(cid, image, engine.init_files())
        engine.containers.save(container)
    except BaseException:
        engine.discard_snapshot(cid)
        shutil.rmtree(directory, ignore_errors=True)
        engine.containers.release(full_name, cid)
        raise
    engine.containers.add(container)
    engine.emit(container, "create")
    return container, warnings
