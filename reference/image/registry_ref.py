"""Image references and the `insecure-registries` setting, as Docker 20.10 reads them.

A reference is `host[:port]/repo[/more][:tag][@digest]` (the grammar of distribution/reference).
Docker sends a reference without a registry host to Docker Hub; this runtime never contacts a
public registry, so such a reference (or one that names Docker Hub) is refused with a clear error
instead of being normalised to `docker.io/library/...`.

Insecure matching follows Docker 20.10's `isSecureIndex`: an exact `host[:port]` entry matches the
reference's registry name as written; otherwise the host is resolved and any of its addresses in
a listed CIDR makes it insecure. Loopback (127.0.0.0/8 and ::1/128) is always listed.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from reference.errors import ConfigError, UnsupportedError
from reference.image import refs

# The names Docker maps to Docker Hub (reference.normalize: docker.io, legacy index.docker.io).
DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
# Docker 20.10 appends 127.0.0.0/8 (registry/config.go); ::1/128 is appended since 28.0.
DEFAULT_INSECURE = ("127.0.0.0/8", "::1/128")


def split_domain(domain: str) -> tuple[str, int | None]:
    """("host", port or None) of a registry name or URL netloc; "[::1]:5000" -> ("::1", 5000)."""
    if domain.startswith("["):
        host, _, rest = domain[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    host, colon, port = domain.rpartition(":")
    if not colon or not port.isdigit() or ":" in host:  # a bare IPv6 address has no port
        return domain, None
    return host, int(port)


def parse_reference(ref: str) -> refs.Reference:
    """Parse `ref` with the store's grammar (no tag and no digest: "latest"); refuse with
    UnsupportedError a reference that would go to Docker Hub, and with ConfigError a digest
    that is not a well-formed sha256 (go-digest's messages)."""
    parsed = refs.parse(ref)
    if parsed.domain.lower() in DOCKER_HUB:
        raise UnsupportedError(
            f'reference "{ref}" names no private registry host, so Docker would pull it from '
            "Docker Hub; this runtime never contacts public registries: write "
            "host[:port]/repository[:tag]",
            obj=ref,
        )
    if parsed.digest is not None:
        algorithm, _, encoded = parsed.digest.partition(":")
        if algorithm != "sha256":
            raise ConfigError("unsupported digest algorithm", obj=ref)
        if len(encoded) != 64:
            raise ConfigError("invalid checksum digest length", obj=ref)
        if not re.fullmatch(r"[a-f0-9]{64}", encoded):
            raise ConfigError("invalid checksum digest format", obj=ref)
    return parsed


def target(ref: refs.Reference) -> str:
    """What to ask the registry for: the digest if given (it wins over a tag), else the tag."""
    return ref.digest or ref.tag or "latest"


Resolver = Callable[[str], Iterable[str]]


def resolve_host(host: str) -> list[str]:
    """The addresses of `host` (the system resolver: /etc/hosts first). An IP literal is itself;
    a name that does not resolve has no addresses, and then only exact entries can match."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    return [str(info[4][0]) for info in infos]


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class InsecureRegistries:
    """The validated `insecure-registries` list: exact registry names and networks."""

    names: frozenset[str]
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, entries: Sequence[str]) -> InsecureRegistries:
        """Validate like Docker 20.10's LoadInsecureRegistries (ConfigError naming the key)."""
        names: set[str] = set()
        networks: list[Network] = []
        for raw in [*entries, *DEFAULT_INSECURE]:
            entry = raw
            for scheme in ("http://", "https://"):  # Docker strips these (with a warning)
                if entry.lower().startswith(scheme):
                    entry = entry[len(scheme) :]
            if "://" in entry:
                raise ConfigError(
                    f"insecure registry {entry} should not contain '://'", obj="insecure-registries"
                )
            if "/" in entry:  # Go's net.ParseCIDR: needs the slash, allows host bits
                try:
                    network = ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    pass
                else:
                    if network not in networks:
                        networks.append(network)
                    continue
            problem = _host_port_problem(entry)
            if problem:
                raise ConfigError(
                    f"insecure registry {entry} is not valid: {problem}", obj="insecure-registries"
                )
            names.add(entry)
        return cls(frozenset(names), tuple(networks))

    def listed(self) -> list[str]:
        """What `docker info` prints under Insecure Registries: names, then CIDRs."""
        return sorted(self.names) + [str(n) for n in self.networks]

    def is_insecure(self, domain: str, resolve: Resolver = resolve_host) -> bool:
        """Is the registry `domain` (host[:port] exactly as in the reference) insecure?"""
        if domain in self.names:
            return True
        addresses = []
        for address in resolve(split_domain(domain)[0]):
            try:
                addresses.append(ipaddress.ip_address(address.split("%")[0]))
            except ValueError:
                continue
        return any(a in n for a in addresses for n in self.networks if a.version == n.version)


def _host_port_problem(entry: str) -> str | None:
    """Docker's validateHostPort: the domain grammar of references (host and optional port,
    which must be at most 65535), or an IP address."""
    host, port = split_domain(entry)
    if _is_ip(host) or _is_ip(entry):
        return None
    try:
        valid = refs.parse(f"{entry}/x").domain == entry
    except ConfigError:
        valid = False
    if not valid:
        return f'invalid host "{host}"'
    if port is not None and port > 65535:
        return f'invalid port "{port}"'
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
