"""/etc/hostname, /etc/hosts and /etc/resolv.conf of a container, as Docker 20.10 writes them.

They live in data-root/containers/<id>/ and are bind-mounted over the image's files by the OCI
spec, so a container's edits land in them, never in its layer (and `commit` never sees them).
resolv.conf follows libnetwork's rules: with --network host and no DNS flags, the host's file
as is (its loopback resolvers are reachable there); otherwise the host's file with loopback
nameservers removed, or, when a DNS flag is given, rebuilt from the flags with the host's
values for the parts no flag names. If no nameserver is left, libnetwork's defaults (Google's
public servers, IPv6 ones too because it does not know yet whether the network has IPv6) are
written: file content only, nothing is ever resolved. On user-defined networks the file
names the embedded DNS server instead (embedded_resolv_conf), rewritten at each start.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reference.errors import ConfigError

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
SYSTEMD_RESOLV_CONF = Path("/run/systemd/resolve/resolv.conf")
HOST_HOSTS = Path("/etc/hosts")
DEFAULT_DNS = ("8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844")
DEFAULT_HOSTS = (
    ("127.0.0.1", "localhost"),
    ("::1", "localhost ip6-localhost ip6-loopback"),
    ("fe00::0", "ip6-localnet"),
    ("ff00::0", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
)
_NAMESERVER = re.compile(r"^\s*nameserver\s+(\S+)\s*$")
FILES = ("hostname", "hosts", "resolv.conf")
EMBEDDED_DNS = "127.0.0.11"  # the embedded DNS server of user-defined networks


@dataclass(frozen=True)
class EtcSpec:
    hostname: str
    domainname: str = ""
    host_network: bool = False
    address: str | None = None  # the container's own IPv4 address, once it has one
    extra_hosts: Sequence[tuple[str, str]] = ()  # (name, address) from --add-host
    dns: Sequence[str] = ()
    dns_search: Sequence[str] = ()
    dns_options: Sequence[str] = ()
    daemon_dns: Sequence[str] = field(default=())
    daemon_dns_search: Sequence[str] = field(default=())
    daemon_dns_options: Sequence[str] = field(default=())


def hostname_file(spec: EtcSpec) -> str:
    return f"{spec.hostname}\n"  # the domain name goes to kernel.domainname, not here


def hosts_file(spec: EtcSpec, host_hosts: str | None = None) -> str:
    extra = "".join(f"{address}\t{name}\n" for name, address in spec.extra_hosts)
    if spec.host_network:
        base = host_hosts if host_hosts is not None else _read(HOST_HOSTS)
        return base + ("" if base.endswith("\n") or not base else "\n") + extra
    lines = "".join(f"{address}\t{names}\n" for address, names in DEFAULT_HOSTS) + extra
    if spec.address:
        lines += f"{spec.address}\t{own_names(spec.hostname, spec.domainname)}\n"
    return lines


def own_names(hostname: str, domainname: str) -> str:
    """The names on the container's own hosts line: "host.domain host", or "host"."""
    return f"{hostname}.{domainname} {hostname}" if domainname else hostname


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def host_resolv_conf() -> str:
    """libnetwork's resolvconf.Path(): systemd-resolved's upstream list when the host file
    only names its stub resolver."""
    text = _read(HOST_RESOLV_CONF)
    if nameservers(text) == ["127.0.0.53"] and SYSTEMD_RESOLV_CONF.exists():
        return _read(SYSTEMD_RESOLV_CONF)
    return text


def nameservers(text: str) -> list[str]:
    return [m[1] for line in text.splitlines() if (m := _NAMESERVER.match(line))]


def _values(text: str, key: str) -> list[str]:
    found: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == key:
            found = fields[1:]  # the last line wins, as in the resolver
    return found


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def filter_resolv_conf(text: str) -> str:
    """FilterResolvDNS(content, ipv6Enabled=true): drop loopback nameserver lines; if none is
    left, append the default servers."""
    kept = [
        line
        for line in text.splitlines(keepends=True)
        if not ((m := _NAMESERVER.match(line)) and _is_loopback(m[1]))
    ]
    cleaned = "".join(kept)
    if not nameservers(cleaned):
        cleaned += "\n" + "\n".join(f"nameserver {ns}" for ns in DEFAULT_DNS)
    return cleaned


def build_resolv_conf(servers: Sequence[str], search: Sequence[str], options: Sequence[str]) -> str:
    """resolvconf.Build: search, nameservers, options (a search of '.' means none)."""
    text = ""
    if search and search[0] != ".":
        text += "search " + " ".join(search) + "\n"
    text += "".join(f"nameserver {ns}\n" for ns in servers)
    if options:
        text += "options " + " ".join(options) + "\n"
    return text


def resolv_conf(spec: EtcSpec, host: str | None = None) -> str:
    host_text = host if host is not None else host_resolv_conf()
    dns = list(spec.dns or spec.daemon_dns)
    search = list(spec.dns_search or spec.daemon_dns_search)
    options = list(spec.dns_options or spec.daemon_dns_options)
    if not (dns or search or options):
        return host_text if spec.host_network else filter_resolv_conf(host_text)
    return build_resolv_conf(
        dns or nameservers(host_text),
        search or _values(host_text, "search"),
        options or _values(host_text, "options"),
    )


@dataclass(frozen=True)
class EmbeddedDns:
    """resolv.conf of a container on a user-defined network, and what its DNS server needs."""

    text: str
    upstreams: tuple[tuple[str, bool], ...]  # (address, asked from the engine's namespace)
    ndots_set: bool  # the user chose ndots: single labels not found are not forwarded


def _ipv4(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).version == 4
    except ValueError:
        return False


def embedded_resolv_conf(spec: EtcSpec, host: str | None = None) -> EmbeddedDns:
    """libnetwork's rebuildDNS (Docker 20.10): `nameserver 127.0.0.11` (then the IPv6 servers
    a DNS flag named), the search domains and options of the file the container would have
    had, and `ndots:0` unless an ndots option is there. The IPv4 servers of that file become
    the upstreams, asked from the container's namespace; without DNS flags they are the
    host's, its loopback ones asked from the engine's namespace, or the default servers when
    the host names none. A malformed ndots option raises ConfigError (Docker then leaves the
    file alone and starts no server)."""
    host_text = host if host is not None else host_resolv_conf()
    flags = spec.dns or spec.daemon_dns or spec.dns_search or spec.daemon_dns_search
    flags = flags or spec.dns_options or spec.daemon_dns_options
    if flags:
        current = resolv_conf(spec, host_text)
        servers = nameservers(current)
        upstreams = [(ns, False) for ns in servers if _ipv4(ns)]
        extra = [ns for ns in servers if not _ipv4(ns)]
    else:
        current = host_text  # its IPv6 servers go: refd's networks have no IPv6
        upstreams = [(ns, _is_loopback(ns)) for ns in nameservers(host_text) if _ipv4(ns)]
        upstreams = upstreams or [(ns, False) for ns in DEFAULT_DNS if _ipv4(ns)]
        extra = []
    options = _values(current, "options")
    ndots = next((o for o in options if "ndots" in o), None)
    value = re.fullmatch(r"ndots:([+-]?\d+)", ndots or "")
    if ndots is not None and (value is None or int(value[1]) < 0):
        raise ConfigError(f"invalid ndots option {ndots}", obj="resolv.conf")
    text = build_resolv_conf(
        [EMBEDDED_DNS, *extra],
        _values(current, "search"),
        options if ndots is not None else [*options, "ndots:0"],
    )
    return EmbeddedDns(text, tuple(upstreams), ndots is not None)


def set_address(path: Path, c: Any, endpoints: Sequence[Any]) -> None:
    """At each start, as libnetwork rebuilds the sandbox's hosts file: the container's own
    line ("<address>\t<hostname>") follows its first endpoint's address; lines it added at an
    earlier start go."""
    names = own_names(c.config.get("Hostname") or "", c.config.get("Domainname") or "")
    try:
        lines = path.read_text().splitlines(keepends=True)
    except OSError:
        return
    kept = [line for line in lines if line.rstrip("\n").split("\t", 1)[-1] != names]
    address = next((e.address.split("/")[0] for e in endpoints if e.address), "")
    if address:
        kept.append(f"{address}\t{names}\n")
    path.write_text("".join(kept))


def write(directory: Path, spec: EtcSpec) -> dict[str, Path]:
    """Write the three files into `directory`; their paths by name."""
    contents = {
        "hostname": hostname_file(spec),
        "hosts": hosts_file(spec),
        "resolv.conf": resolv_conf(spec),
    }
    paths = {}
    for name, text in contents.items():
        path = directory / name
        path.write_text(text)
        path.chmod(0o644)
        paths[name] = path
    return paths
