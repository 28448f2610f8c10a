"""refd's configuration: daemon.json merged with command-line flags, validated like dockerd.

dockerd refuses to start on a configuration it does not understand, and so does refd: an
unknown key, a value of the wrong type, a malformed address or two options that exclude each
other are a `ConfigError` naming the key, with Docker's wording where Docker has one:
  the following directives don't match any configuration option: bogus-key
  You specified -b & --bip, mutually exclusive options. Please specify only one
A key given both as a flag and in the file is refused too, as dockerd does.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reference.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SOCKET = "/var/run/refd.sock"
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


@dataclass(frozen=True)
class Runtime:
    path: str
    args: tuple[str, ...] = ()


def builtin_runtimes() -> dict[str, Runtime]:
    """refrun from this repository, and runc where installed (as dockerd registers runc)."""
    found = {"refrun": Runtime(str(REPO / "bin" / "refrun"))}
    runc = shutil.which("runc")
    if runc:
        found["runc"] = Runtime(runc)
    return found


@dataclass
class DaemonConfig:
    data_root: Path = Path("/var/lib/refd")
    exec_root: Path = Path("/var/run/refd")
    hosts: list[str] = field(default_factory=lambda: [f"unix://{DEFAULT_SOCKET}"])
    pidfile: Path | None = None
    bip: str | None = None
    fixed_cidr: str | None = None
    mtu: int = 1500
    bridge: str | None = None
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_opts: list[str] = field(default_factory=list)
    insecure_registries: list[str] = field(default_factory=list)
    default_runtime: str = "refrun"
    runtimes: dict[str, Runtime] = field(default_factory=builtin_runtimes)
    userns_remap: str | None = None
    live_restore: bool = False
    iptables: bool = True
    ip_masq: bool = True
    icc: bool = True
    ip_forward: bool = True
    cluster_store: str | None = None
    cluster_advertise: str | None = None
    log_level: str = "info"
    debug: bool = False
    tls: bool = False
    tlsverify: bool = False
    tlscacert: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None
    shutdown_timeout: int = 15
    cgroup_parent: str = "/refd"
    default_shm_size: int = 64 * 1024 * 1024
    seccomp_profile: str | None = None  # a file, or "unconfined"
    config_file: Path | None = None

    def runtime(self, name: str | None = None) -> Runtime:
        wanted = name or self.default_runtime
        if wanted not in self.runtimes:
            raise ConfigError(f"unknown or invalid runtime name: {wanted}", obj=None)
        return self.runtimes[wanted]


# key in daemon.json → (attribute, kind). Flags map onto the same keys (FLAGS below).
KEYS: dict[str, tuple[str, str]] = {
    "data-root": ("data_root", "path"),
    "exec-root": ("exec_root", "path"),
    "hosts": ("hosts", "list"),
    "pidfile": ("pidfile", "path"),
    "bip": ("bip", "str"),
    "fixed-cidr": ("fixed_cidr", "str"),
    "mtu": ("mtu", "int"),
    "bridge": ("bridge", "str"),
    "dns": ("dns", "list"),
    "dns-search": ("dns_search", "list"),
    "dns-opts": ("dns_opts", "list"),
    "insecure-registries": ("insecure_registries", "list"),
    "default-runtime": ("default_runtime", "str"),
    "runtimes": ("runtimes", "runtimes"),
    "userns-remap": ("userns_remap", "str"),
    "live-restore": ("live_restore", "bool"),
    "iptables": ("iptables", "bool"),
    "ip-masq": ("ip_masq", "bool"),
    "icc": ("icc", "bool"),
    "ip-forward": ("ip_forward", "bool"),
    "cluster-store": ("cluster_store", "str"),
    "cluster-advertise": ("cluster_advertise", "str"),
    "log-level": ("log_level", "str"),
    "debug": ("debug", "bool"),
    "tls": ("tls", "bool"),
    "tlsverify": ("tlsverify", "bool"),
    "tlscacert": ("tlscacert", "str"),
    "tlscert": ("tlscert", "str"),
    "tlskey": ("tlskey", "str"),
    "shutdown-timeout": ("shutdown_timeout", "int"),
    "cgroup-parent": ("cgroup_parent", "str"),
    "default-shm-size": ("default_shm_size", "size"),
    "seccomp-profile": ("seccomp_profile", "str"),
}
# flag → (daemon.json key, takes a value, repeatable). Short forms as dockerd spells them.
FLAGS: dict[str, tuple[str, bool, bool]] = {
    "--data-root": ("data-root", True, False),
    "--exec-root": ("exec-root", True, False),
    "-H": ("hosts", True, True),
    "--host": ("hosts", True, True),
    "-p": ("pidfile", True, False),
    "--pidfile": ("pidfile", True, False),
    "--bip": ("bip", True, False),
    "--fixed-cidr": ("fixed-cidr", True, False),
    "--mtu": ("mtu", True, False),
    "-b": ("bridge", True, False),
    "--bridge": ("bridge", True, False),
    "--dns": ("dns", True, True),
    "--dns-search": ("dns-search", True, True),
    "--dns-opt": ("dns-opts", True, True),
    "--insecure-registry": ("insecure-registries", True, True),
    "--default-runtime": ("default-runtime", True, False),
    "--add-runtime": ("runtimes", True, True),
    "--userns-remap": ("userns-remap", True, False),
    "--live-restore": ("live-restore", False, False),
    "--iptables": ("iptables", False, False),
    "--ip-masq": ("ip-masq", False, False),
    "--icc": ("icc", False, False),
    "--ip-forward": ("ip-forward", False, False),
    "--cluster-store": ("cluster-store", True, False),
    "--cluster-advertise": ("cluster-advertise", True, False),
    "-l": ("log-level", True, False),
    "--log-level": ("log-level", True, False),
    "-D": ("debug", False, False),
    "--debug": ("debug", False, False),
    "--tls": ("tls", False, False),
    "--tlsverify": ("tlsverify", False, False),
    "--tlscacert": ("tlscacert", True, False),
    "--tlscert": ("tlscert", True, False),
    "--tlskey": ("tlskey", True, False),
    "--shutdown-timeout": ("shutdown-timeout", True, False),
    "--cgroup-parent": ("cgroup-parent", True, False),
    "--default-shm-size": ("default-shm-size", True, False),
    "--seccomp-profile": ("seccomp-profile", True, False),
}


def parse_flags(argv: Sequence[str]) -> tuple[dict[str, Any], Path | None]:
    """Flags → daemon.json-shaped values, and --config-file. Booleans take `--x` or `--x=false`."""
    values: dict[str, Any] = {}
    config_file: Path | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, inline = arg.partition("=")
        i += 1
        if name == "--config-file":
            if not eq:
                if i >= len(argv):
                    raise ConfigError("flag needs an argument", obj=name)
                inline, i = argv[i], i + 1
            config_file = Path(inline)
            continue
        if name not in FLAGS:
            raise ConfigError("unknown flag", obj=name)
        key, takes_value, repeated = FLAGS[name]
        if takes_value:
            if not eq:
                if i >= len(argv):
                    raise ConfigError("flag needs an argument", obj=name)
                inline, i = argv[i], i + 1
            value: Any = inline
            if key == "runtimes":
                rname, sep, path = inline.partition("=")
                if not sep or not rname or not path:
                    raise ConfigError("expected NAME=PATH", obj=name)
                values.setdefault(key, {})[rname] = {"path": path}
                continue
        else:
            if eq and inline not in ("true", "false", "1", "0"):
                raise ConfigError(f"invalid boolean value {inline!r}", obj=name)
            value = not eq or inline in ("true", "1")
        if repeated:
            values.setdefault(key, []).append(value)
        else:
            values[key] = value
    return values, config_file


def read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ConfigError(f"unable to read configuration file: {e.strerror}", obj=str(path)) from e
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"unable to configure the daemon with file {path}: {e.msg} at line {e.lineno}"
        ) from e
    if not isinstance(document, dict):
        raise ConfigError(f"unable to configure the daemon with file {path}: not a JSON object")
    unknown = sorted(k for k in document if k not in KEYS)
    if unknown:
        raise ConfigError(
            f"unable to configure the daemon with file {path}: the following directives "
            f"don't match any configuration option: {', '.join(unknown)}"
        )
    return document


def _convert(key: str, kind: str, value: Any) -> Any:
    """One daemon.json value, type-checked (the flag strings are converted too)."""

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"invalid value {value!r} for {key}: expected {expected}", obj=key)

    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise bad("true or false")
    if kind == "int":
        if isinstance(value, bool):
            raise bad("an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            return int(value)
        raise bad("an integer")
    if kind == "size":
        from reference.engine.units import ram_in_bytes

        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return ram_in_bytes(value)
            except ConfigError:
                raise bad("a size such as 64m") from None
        raise bad("a size such as 64m")
    if kind in ("str", "path"):
        if not isinstance(value, str):
            raise bad("a string")
        return Path(value) if kind == "path" else value
    if kind == "list":
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise bad("a list of strings")
    if kind == "runtimes":
        if not isinstance(value, dict):
            raise bad('an object {"name": {"path": "..."}}')
        found: dict[str, Runtime] = {}
        for name, entry in value.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
                raise ConfigError(f"runtime {name!r} needs a path", obj=f"runtimes.{name}")
            extra = entry.get("runtimeArgs", [])
            if not isinstance(extra, list) or not all(isinstance(a, str) for a in extra):
                raise ConfigError("expected a list of strings", obj=f"runtimes.{name}.runtimeArgs")
            found[name] = Runtime(entry["path"], tuple(extra))
        return found
    raise AssertionError(kind)


def _check_cidr(key: str, value: str | None, *, host_bits: bool) -> None:
    if value is None:
        return
    try:
        if host_bits:
            ipaddress.ip_interface(value)
            if "/" not in value:
                raise ValueError(value)
        else:
            ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ConfigError(f"invalid CIDR address: {value}", obj=key) from None


def validate(config: DaemonConfig) -> None:
    if config.bridge and config.bip:
        raise ConfigError(
            "You specified -b & --bip, mutually exclusive options. Please specify only one",
            obj=None,
        )
    _check_cidr("bip", config.bip, host_bits=True)
    _check_cidr("fixed-cidr", config.fixed_cidr, host_bits=False)
    if config.bridge and config.bridge != "none" and len(config.bridge) > 15:
        raise ConfigError(f"bridge name {config.bridge} is longer than 15 bytes", obj="bridge")
    if config.cluster_advertise and not config.cluster_store:
        raise ConfigError("cluster-advertise needs cluster-store", obj="cluster-advertise")
    if config.cluster_store and not config.cluster_store.startswith("etcd://"):
        raise ConfigError(
            f"unsupported cluster store {config.cluster_store} (only etcd:// is)",
            obj="cluster-store",
        )
    if not 68 <= config.mtu <= 65535:
        raise ConfigError(f"invalid MTU {config.mtu}: must be within 68..65535", obj="mtu")
    for server in config.dns:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise ConfigError(f"{server} is not an ip address", obj="dns") from None
    for entry in config.insecure_registries:
        if "://" in entry:
            raise ConfigError(
                f"insecure registry {entry} should not contain '://'", obj="insecure-registries"
            )
    if config.log_level not in LOG_LEVELS:
        raise ConfigError(f"unable to parse logging level: {config.log_level}", obj="log-level")
    if config.default_runtime not in config.runtimes:
        raise ConfigError(
            f"specified default runtime '{config.default_runtime}' does not exist",
            obj="default-runtime",
        )
    if config.shutdown_timeout < 0:
        raise ConfigError("must not be negative", obj="shutdown-timeout")
    if not config.cgroup_parent.startswith("/") or config.cgroup_parent == "/":
        raise ConfigError("must be an absolute cgroup path below /", obj="cgroup-parent")
    if config.userns_remap:
        # Accepted by the parser (it is a real dockerd key) but not implemented: refusing is
        # honest, running without the remapping would silently weaken isolation.
        raise ConfigError("userns-remap is not supported by refd yet", obj="userns-remap")
    for host in config.hosts:
        scheme, sep, rest = host.partition("://")
        if not sep or scheme not in ("unix", "tcp") or not rest:
            raise ConfigError(f"invalid bind address format: {host}", obj="hosts")
        if scheme == "tcp" and not (config.tlscert and config.tlskey):
            raise ConfigError(
                f"refusing to listen on {host} without TLS: set tlscert and tlskey "
                "(and tlsverify with tlscacert to check clients)",
                obj="hosts",
            )
    if config.tlsverify and not config.tlscacert:
        raise ConfigError("tlsverify needs tlscacert", obj="tlscacert")


# What SIGHUP re-reads from the file (dockerd's reloadable subset that refd has).
RELOADABLE = ("insecure-registries", "debug", "log-level", "live-restore", "shutdown-timeout")


def reload(config: DaemonConfig) -> dict[str, Any]:
    """SIGHUP: re-read the configuration file and apply its reloadable keys to `config` (a
    key absent from the file goes back to its default, as with dockerd); other keys keep the
    values refd started with. The file is validated whole first: a bad file changes nothing.
    Returns the applied values by key."""
    if config.config_file is None:
        raise ConfigError("refd was started without a configuration file", obj="config-file")
    from_file = read_file(config.config_file)
    trial = DaemonConfig(config_file=config.config_file)
    for key, value in from_file.items():
        attribute, kind = KEYS[key]
        setattr(trial, attribute, _convert(key, kind, value))
    defaults = DaemonConfig()
    applied: dict[str, Any] = {}
    for key in RELOADABLE:
        attribute = KEYS[key][0]
        value = getattr(trial if key in from_file else defaults, attribute)
        applied[key] = value
    candidate = DaemonConfig(**{**config.__dict__})
    for key, value in applied.items():
        setattr(candidate, KEYS[key][0], value)
    validate(candidate)
    for key, value in applied.items():
        setattr(config, KEYS[key][0], value)
    return applied


def load(
    argv: Sequence[str], default_file: Path | None = Path("/etc/refd/daemon.json")
) -> DaemonConfig:
    """The configuration refd runs with: flags, then the file (--config-file or the default)."""
    from_flags, config_file = parse_flags(argv)
    path = config_file or default_file
    from_file = read_file(path) if path is not None else {}
    if config_file is not None and not config_file.exists():
        raise ConfigError("configuration file does not exist", obj=str(config_file))
    both = sorted(set(from_flags) & set(from_file))
    if both:
        detail = ", ".join(
            f"{k}: (from flag: {from_flags[k]}, from file: {from_file[k]})" for k in both
        )
        raise ConfigError(
            "the following directives are specified both as a flag and in the configuration "
            f"file: {detail}"
        )
    config = DaemonConfig(config_file=path)
    merged: Mapping[str, Any] = {**from_file, **from_flags}
    for key, value in merged.items():
        attribute, kind = KEYS[key]
        converted = _convert(key, kind, value)
        if key == "runtimes":
            converted = {**builtin_runtimes(), **converted}
        setattr(config, attribute, converted)
    validate(config)
    return config
