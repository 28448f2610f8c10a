"""Networking flags as the docker CLI turns them into request bodies, and the port texts
of `ps` and `port`. run/create:

    -p/--publish [ip:][hostPort:]containerPort[/proto]   (ranges 8000-8001:80-81; a host
        range for one container port is sent whole, "8000-8010", for the engine to choose)
    -P/--publish-all, --expose PORT[-PORT][/proto]
    --network NAME (repeatable), --ip, --network-alias, --mac-address

network create: --subnet, --ip-range, --gateway, --aux-address (ipam_config).

Errors carry go-connections' and the docker CLI's wording ("invalid containerPort: abc");
refctl prints them as usage errors (exit 125 for run/create).

`ipaddress` and `re` are imported where a flag needs them: every `run` and `create` imports
this module, and most give none of these flags (the two cost ~10 ms per refctl call here).
"""

from __future__ import annotations

from reference.cli.ctl.flags import UsageError

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; typing costs ms to import
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

PROTOCOLS = ("tcp", "udp", "sctp")
NOT_USER_DEFINED = ("default", "bridge", "host", "none")


def _uint16(text: str) -> int:
    """strconv.ParseUint(text, 10, 16), with its error text."""
    if not text.isdigit():
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    if int(text) > 65535:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return int(text)


def port_range(text: str) -> tuple[int, int]:
    """ "80" → (80, 80); "80-81" → (80, 81) (go-connections ParsePortRange)."""
    if not text:
        raise ValueError("empty string specified for ports")
    if "-" not in text:
        port = _uint16(text)
        return port, port
    first, _, last = text.partition("-")
    start, end = _uint16(first), _uint16(last)
    if end < start:
        raise ValueError(f"invalid range specified for port: {text}")
    return start, end


def split_proto(text: str) -> tuple[str, str]:
    """ "80/udp" → ("udp", "80"); "80" → ("tcp", "80") (nat.SplitProtoPort)."""
    parts = text.split("/")
    if not parts[0]:
        return "", ""
    if len(parts) == 1 or not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def _standard(verb: str, spec: str) -> str:
    """The long syntax (target=80,published=8080,protocol=udp) in the short one."""
    if "=" not in spec:
        return spec
    params = {"protocol": "tcp"}
    for param in spec.split(","):
        key, sep, value = param.partition("=")
        if not sep:
            raise UsageError(
                verb, f"invalid publish opts format (should be name=value but got '{param}')"
            )
        params[key] = value
    return f"{params.get('published', '')}:{params.get('target', '')}/{params['protocol']}"


def publish(verb: str, spec: str) -> list[tuple[str, dict[str, str]]]:
    """One -p value → [("80/tcp", {"HostIp": "", "HostPort": "8080"}), ...]."""
    raw = _standard(verb, spec)
    parts = raw.split(":")
    container = parts[-1]
    host = parts[-2] if len(parts) > 1 else ""
    raw_ip = ":".join(parts[:-2])
    proto, container = split_proto(container)
    ip = raw_ip[1:-1] if raw_ip.startswith("[") and raw_ip.endswith("]") else raw_ip
    if ip:
        import ipaddress

        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise UsageError(verb, f"invalid IP address: {raw_ip}") from None
    if not container:
        raise UsageError(verb, f"no port specified: {raw}<empty>")
    try:
        start, end = port_range(container)
    except ValueError:
        raise UsageError(verb, f"invalid containerPort: {container}") from None
    host_start = host_end = 0
    if host:
        try:
            host_start, host_end = port_range(host)
        except ValueError:
            raise UsageError(verb, f"invalid hostPort: {host}") from None
        if end - start != host_end - host_start and end != start:
            raise UsageError(
                verb,
                f"invalid ranges specified for container and host Ports: {container} and {host}",
            )
    if proto.lower() not in PROTOCOLS:
        raise UsageError(verb, f"invalid proto: {proto}")
    found = []
    for i in range(end - start + 1):
        host_port = str(host_start + i) if host else ""
        if start == end and host_start != host_end:
            host_port = f"{host_start}-{host_end}"  # the engine picks one of the range
        found.append((f"{start + i}/{proto.lower()}", {"HostIp": ip, "HostPort": host_port}))
    return found


def expose(verb: str, spec: str) -> list[str]:
    """One --expose value → ["80/tcp", "81/tcp"]."""
    if ":" in spec:
        raise UsageError(verb, f"invalid port format for --expose: {spec}")
    proto, port = split_proto(spec)
    try:
        start, end = port_range(port)
    except ValueError as e:
        raise UsageError(verb, f"invalid range format for --expose: {spec}, error: {e}") from None
    return [f"{p}/{proto.lower()}" for p in range(start, end + 1)]


def ports(
    verb: str, published: Sequence[str], exposed: Sequence[str]
) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    """Config.ExposedPorts and HostConfig.PortBindings of -p and --expose."""
    exposed_ports: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in published:
        for key, binding in publish(verb, spec):
            exposed_ports[key] = {}
            bindings.setdefault(key, []).append(binding)
    for spec in exposed:
        for key in expose(verb, spec):
            exposed_ports.setdefault(key, {})
    return exposed_ports, bindings


def _user_defined(mode: str) -> bool:
    return mode not in NOT_USER_DEFINED and not mode.startswith("container:")


def networking(verb: str, values: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """HostConfig.NetworkMode and NetworkingConfig.EndpointsConfig. As the docker CLI: --ip
    and --network-alias go to the first network; a lone network without them gets no entry
    (the engine makes one), several networks each get one."""
    names: list[str] = list(values["network"])
    mode = names[0] if names else "default"
    ip, aliases = values["ip"], list(values["network_alias"])
    if ip:
        import ipaddress

        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            raise UsageError(verb, f"invalid IPv4 address: {ip}") from None
    if aliases and not _user_defined(mode):
        raise UsageError(
            verb, "network-scoped aliases are only supported for user-defined networks"
        )
    if len({_user_defined(n) for n in names}) > 1:
        raise UsageError(
            verb,
            "conflicting options: cannot attach both user-defined and non-user-defined "
            "network-modes",
        )
    endpoints: dict[str, Any] = {}
    for i, name in enumerate(names):
        if name in endpoints:
            raise UsageError(verb, f'network "{name}" is specified multiple times')
        settings: dict[str, Any] = {}
        if i == 0 and ip:
            settings["IPAMConfig"] = {"IPv4Address": ip}
        if i == 0 and aliases:
            settings["Aliases"] = aliases
        if len(names) > 1 or settings:
            endpoints[name] = settings
    return mode, endpoints


_MAC = r"[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}"


def mac_address(verb: str, text: str | None) -> str | None:
    if text:
        import re

        if not re.fullmatch(_MAC, text):
            raise UsageError(verb, f"{text} is not a valid mac address")
    return text or None


# -- network create -----------------------------------------------------------------------
def ipam_config(
    verb: str,
    subnets: Sequence[str],
    ranges: Sequence[str],
    gateways: Sequence[str],
    aux: dict[str, str],
) -> list[dict[str, Any]]:
    """The docker CLI's consolidation: each range, gateway and aux address joins the subnet
    that holds it (subnets go unchecked to the daemon, which words their errors)."""
    for value in ranges:
        if not _parses(value, cidr=True):
            raise UsageError(
                verb,
                f'invalid argument "{value}" for "--ip-range" flag: invalid CIDR address: {value}',
            )
    for value in gateways:
        if not _parses(value):
            raise UsageError(
                verb,
                f'invalid argument "{value}" for "--gateway" flag: invalid string being '
                f"converted to IP address: {value}",
            )
    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise UsageError(verb, "every ip-range or gateway must have a corresponding subnet")
    configs: dict[str, dict[str, Any]] = {}
    for subnet in subnets:
        for other in configs:
            if _within(subnet, other) or _within(other, subnet):
                raise UsageError(verb, "multiple overlapping subnet configuration is not supported")
        configs[subnet] = {"Subnet": subnet, "AuxiliaryAddresses": {}}

    def holder(value: str, what: str) -> dict[str, Any]:
        for subnet, config in configs.items():
            if _within(subnet, value):
                return config
        raise UsageError(verb, f"no matching subnet for {what} {value}")

    for value in ranges:
        config = holder(value, "range")
        if "IPRange" in config:
            raise UsageError(
                verb,
                f"cannot configure multiple ranges ({value}, {config['IPRange']}) on the same "
                f"subnet ({config['Subnet']})",
            )
        config["IPRange"] = value
    for value in gateways:
        config = holder(value, "gateway")
        if "Gateway" in config:
            raise UsageError(
                verb,
                f"cannot configure multiple gateways ({value}, {config['Gateway']}) for the same "
                f"subnet ({config['Subnet']})",
            )
        config["Gateway"] = value
    for key, value in aux.items():
        holder(value, "aux-address")["AuxiliaryAddresses"][key] = value
    return list(configs.values())


def _parses(value: str, cidr: bool = False) -> bool:
    import ipaddress

    try:
        if cidr:
            ipaddress.ip_network(value, strict=False)
            return "/" in value
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _within(subnet: str, value: str) -> bool:
    """Go's subnetMatches: is the address (of a CIDR, its address) inside the subnet?"""
    import ipaddress

    try:
        network = ipaddress.ip_network(subnet, strict=False)
        address = ipaddress.ip_address(value.partition("/")[0])
    except ValueError:
        return False
    return address in network


# -- display ------------------------------------------------------------------------------
def _host_port(host: str, port: str | int) -> str:
    """Go's net.JoinHostPort: IPv6 addresses in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _proto(port: Mapping[str, Any]) -> str:
    return str(port.get("Type") or "tcp")


def displayable_ports(items: Sequence[Mapping[str, Any]]) -> str:
    """The container list's Ports as `ps` shows them: "0.0.0.0:8080->80/tcp, 9000-9001/udp".
    Unpublished ports, and ports published on the same number, are grouped into ranges of
    consecutive numbers per address and protocol; other mappings follow one by one."""

    def order(p: Mapping[str, Any]) -> tuple[int, str, int, str]:
        return (p.get("PrivatePort", 0), p.get("IP") or "", p.get("PublicPort", 0), _proto(p))

    groups: dict[str, list[int]] = {}  # insertion order is the order groups are shown in
    shown: list[str] = []
    mappings: list[str] = []

    def form(key: str, first: int, last: int) -> str:
        ip, _, proto = key.rpartition("/")
        numbers = str(first) if first == last else f"{first}-{last}"
        return (f"{_host_port(ip, numbers)}->{numbers}" if ip else numbers) + "/" + proto

    for p in sorted(items, key=order):
        current, ip = int(p.get("PrivatePort", 0)), p.get("IP") or ""
        key = _proto(p)
        if ip:
            if p.get("PublicPort") != current:
                public = _host_port(ip, p.get("PublicPort", 0))
                mappings.append(f"{public}->{current}/{key}")
                continue
            key = f"{ip}/{key}"
        group = groups.get(key)
        if group is None:
            groups[key] = [current, current]
        elif current == group[1] + 1:
            group[1] = current
        else:
            shown.append(form(key, *group))
            groups[key] = [current, current]
    shown += [form(key, first, last) for key, (first, last) in groups.items()]
    return ", ".join(shown + mappings)


def natural_key(text: str) -> list[Any]:
    """Numbers compare as numbers ("80/tcp" before "443/tcp"), as sortorder.NaturalLess."""
    import re

    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)
    ]


def port_lines(ports: Mapping[str, Any] | None, container: str, wanted: str | None) -> list[str]:
    """`refctl port` from inspect's NetworkSettings.Ports: every mapping, or the host
    addresses of one private port; raises ValueError with docker's message otherwise."""
    ports = ports or {}
    found = []
    if wanted:
        port, _, proto = wanted.partition("/")
        try:
            _uint16(port)
        except ValueError as e:
            raise ValueError(f"Error: invalid port ({port}): {e}") from None
        frontends = ports.get(f"{port}/{proto or 'tcp'}") or []
        if not frontends:
            raise ValueError(f"Error: No public port '{wanted}' published for {container}")
        found = [_host_port(f.get("HostIp", ""), f.get("HostPort", "")) for f in frontends]
    else:
        for key, frontends in ports.items():
            for f in frontends or []:
                found.append(f"{key} -> {_host_port(f.get('HostIp', ''), f.get('HostPort', ''))}")
    return sorted(found, key=natural_key)
