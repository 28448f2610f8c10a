"""Network endpoints of the Engine API (v1.41 shapes) over the network controller.

The controller (reference.network.controller) owns the records and the kernel; this module
reads and checks the requests, words the errors as dockerd does (403 for the predefined
networks, 404 "network X not found", 409 duplicates and attached networks) and filters the
list. What refd cannot do (IPv6, swarm's ingress and config-only networks, IPAM plugins) is
refused with a 400 that says so rather than half done.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import TYPE_CHECKING, Any

from reference.engine.api.server import HTTPError, Request, Response
from reference.errors import ConfigError, NotFoundError, RefError

if TYPE_CHECKING:
    from reference.engine.daemon import Daemon
    from reference.network.controller import Controller
    from reference.network.model import IpamConfig

# The predefined networks (name → driver): never created, removed or pruned by a user.
PREDEFINED = {"bridge": "bridge", "host": "host", "none": "null"}
LIST_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")


class NetworkRoutes:
    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon

    @property
    def net(self) -> Controller:
        return self.d.engine.network

    def routes(self) -> list[tuple[str, str, Any]]:
        n = r"/networks/(?P<id>[^/]+)"
        return [
            ("GET", r"/networks/?", self.listing),
            ("POST", r"/networks/create", self.create),
            ("POST", r"/networks/prune", self.prune),
            ("POST", n + r"/connect", self.connect),
            ("POST", n + r"/disconnect", self.disconnect),
            ("GET", n, self.inspect),
            ("DELETE", n, self.remove),
        ]

    # -- reading ----------------------------------------------------------------------
    def listing(self, r: Request, m: re.Match[str]) -> Any:
        filters = r.filters()
        _check_filters(filters)
        found = []
        for network in self.net.networks():
            doc = self.net.inspect(network)
            if matches(doc, filters):
                found.append({**doc, "Containers": {}})  # the list leaves them out, as Docker
        return found

    def inspect(self, r: Request, m: re.Match[str]) -> Any:
        network = self.net.get(m["id"])
        scope = r.arg("scope")
        if scope and scope != network.scope:
            raise NotFoundError(f"network {m['id']} not found")
        return self.net.inspect(network, r.flag("verbose"))

    # -- create, remove ---------------------------------------------------------------
    def create(self, r: Request, m: re.Match[str]) -> Any:
        body = _object(r.json(required=True), "the network config")
        name = body.get("Name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"invalid name: {name or ''}")
        driver = _text(body, "Driver") or "bridge"
        if name in PREDEFINED:
            raise HTTPError(403, f"operation is not permitted on predefined {name} network ")
        if driver in ("host", "null"):
            raise HTTPError(403, f'only one instance of "{driver}" network is allowed')
        _refuse_unsupported(body)
        ipam = _ipam(body.get("IPAM"))
        options = _strings(body, "Options")
        labels = _strings(body, "Labels")
        check = bool(body.get("CheckDuplicate"))
        warning = ""
        if not check:
            # Docker creates a second network of that name and says so in Warning.
            same = [n for n in self.net.networks() if n.name == name]
            if same:
                warning = f"Network with name {name} (id : {same[0].id}) already exists"
        network = self.net.create(
            name,
            driver,
            ipam,
            options,
            labels,
            internal=bool(body.get("Internal")),
            attachable=bool(body.get("Attachable")),
            check_duplicate=check,
        )
        payload = {"Id": network.id, "Warning": warning}
        return Response(201, json.dumps(payload).encode() + b"\n")

    def remove(self, r: Request, m: re.Match[str]) -> Any:
        network = self.net.get(m["id"])
        if PREDEFINED.get(network.name) == network.driver:
            raise HTTPError(403, f"{network.name} is a pre-defined network and cannot be removed")
        if self.net.inspect(network)["Containers"]:
            # Docker answers 403 (libnetwork's ActiveEndpointsError is "forbidden").
            raise HTTPError(
                403,
                f"error while removing network: network {network.name} id {network.id} has "
                "active endpoints",
            )
        self.net.remove(network.id)
        return None

    def prune(self, r: Request, m: re.Match[str]) -> Any:
        filters = r.filters()
        for key in filters:
            if key not in ("label", "label!", "until"):
                raise ConfigError(f"Invalid filter '{key}'")
        removed = self._prune_matching(filters) if filters else self.net.prune()
        return {"NetworksDeleted": removed or None}

    def _prune_matching(self, filters: dict[str, list[str]]) -> list[str]:
        """prune with label/until filters: the controller's prune, limited to matches."""
        removed = []
        for network in self.net.networks():
            doc = self.net.inspect(network)
            if network.name in PREDEFINED or doc["Containers"] or not _prunable(doc, filters):
                continue
            try:
                self.net.remove(network.id)
            except RefError:  # attached or removed meanwhile: not pruned, as Docker
                continue
            removed.append(network.name)
        return removed

    # -- containers -------------------------------------------------------------------
    def connect(self, r: Request, m: re.Match[str]) -> Any:
        body = _object(r.json(required=True), "the connect config")
        c = self._container(body)
        settings = _endpoint_settings(body.get("EndpointConfig"))
        self.net.connect(c, m["id"], settings)
        return Response(200)

    def disconnect(self, r: Request, m: re.Match[str]) -> Any:
        body = _object(r.json(required=True), "the disconnect config")
        c = self._container(body)
        self.net.disconnect(c, m["id"], bool(body.get("Force")))
        return Response(200)

    def _container(self, body: dict[str, Any]) -> Any:
        ref = body.get("Container")
        if not isinstance(ref, str) or not ref:
            raise ConfigError(f'invalid name or ID supplied: "{ref or ""}"')
        return self.d.engine.containers.get(ref)


# -- request checks ---------------------------------------------------------------------
def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"invalid JSON: {what} must be an object")
    return value


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"invalid JSON: {key} must be a string")
    return value


def _strings(body: dict[str, Any], key: str) -> dict[str, str]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(f"invalid JSON: {key} must map strings to strings")
    return dict(value)


def _refuse_unsupported(body: dict[str, Any]) -> None:
    if body.get("EnableIPv6"):
        raise ConfigError("IPv6 networks are not supported by refd (EnableIPv6)")
    if body.get("Ingress"):
        raise ConfigError("ingress networks need swarm mode, which refd does not have")
    if body.get("ConfigOnly") or (body.get("ConfigFrom") or {}).get("Network"):
        raise ConfigError("config-only networks (--config-only, --config-from) need swarm mode")
    if (body.get("Scope") or "") == "swarm":
        raise ConfigError("swarm-scoped networks need swarm mode, which refd does not have")


def _ipam(value: Any) -> list[IpamConfig] | None:
    """IPAM {Driver, Config [{Subnet, IPRange, Gateway, AuxiliaryAddresses}], Options}: the
    syntax is checked here (an IPv6 pool is refused); pools and ranges by the controller."""
    from reference.network.model import IpamConfig

    if value is None:
        return None
    ipam = _object(value, "IPAM")
    driver = _text(ipam, "Driver")
    if driver not in ("", "default"):
        raise ConfigError(f'IPAM driver "{driver}" is not supported by refd (only "default")')
    configs = ipam.get("Config") or []
    if not isinstance(configs, list):
        raise ConfigError("invalid JSON: IPAM.Config must be a list")
    found = []
    for item in configs:
        entry = _object(item, "an IPAM.Config entry")
        subnet = _text(entry, "Subnet")
        if subnet:
            _address(subnet, "subnet", cidr=True)
        ip_range = _text(entry, "IPRange")
        if ip_range:
            _address(ip_range, "ip range", cidr=True)
        gateway = _text(entry, "Gateway")
        if gateway:
            _address(gateway, "gateway address")
        aux = _strings(entry, "AuxiliaryAddresses")
        for address in aux.values():
            _address(address, "auxiliary address")
        if (ip_range or gateway or aux) and not subnet:
            raise ConfigError("every ip-range or gateway must have a corresponding subnet")
        found.append(IpamConfig(subnet, gateway, ip_range, aux))
    return found


def _address(text: str, what: str, *, cidr: bool = False) -> None:
    """A subnet/range (CIDR) or an address, in dockerd's words when malformed; IPv4 only."""
    parsed: ipaddress.IPv4Network | ipaddress.IPv6Network | ipaddress.IPv4Address | None
    try:
        if cidr:
            parsed = ipaddress.ip_network(text, strict=False) if "/" in text else None
        else:
            parsed = ipaddress.ip_address(text)  # type: ignore[assignment]
    except ValueError:
        parsed = None
    if parsed is None:
        if cidr:
            raise ConfigError(f"Invalid {what} {text} : invalid CIDR address: {text}")
        raise ConfigError(f"invalid {what} {text} in Ipam configuration")
    if parsed.version == 6:
        raise ConfigError(f"IPv6 is not supported by refd: {what} {text}")


def _endpoint_settings(value: Any) -> dict[str, Any]:
    """EndpointConfig of `network connect`: what a user sets (IPAMConfig, Aliases, ...);
    the fields the engine fills (NetworkID, IPAddress, ...) are dropped."""
    if value is None:
        return {}
    config = _object(value, "EndpointConfig")
    settings: dict[str, Any] = {}
    ipam = config.get("IPAMConfig")
    if ipam:
        ipam = _object(ipam, "EndpointConfig.IPAMConfig")
        if ipam.get("IPv6Address") or ipam.get("LinkLocalIPs"):
            raise ConfigError("IPv6 and link-local addresses are not supported by refd")
        wanted = _text(ipam, "IPv4Address")
        if wanted:
            try:
                ipaddress.IPv4Address(wanted)
            except ValueError:
                raise ConfigError(f"invalid IPv4 address: {wanted}") from None
            settings["IPAMConfig"] = {"IPv4Address": wanted}
    aliases = config.get("Aliases")
    if aliases:
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ConfigError("invalid JSON: Aliases must be a list of strings")
        settings["Aliases"] = list(aliases)
    for key in ("Links", "DriverOpts", "MacAddress"):
        if config.get(key):
            settings[key] = config[key]
    return settings


# -- list filters -----------------------------------------------------------------------
def _check_filters(filters: dict[str, list[str]]) -> None:
    for key, values in filters.items():
        if key not in LIST_FILTERS:
            raise ConfigError(f"Invalid filter '{key}'")
        for value in values:
            if key == "type" and value not in ("custom", "builtin"):
                raise ConfigError(f"invalid filter: 'type'='{value}'")
            if key == "dangling" and value.lower() not in ("true", "false", "1", "0"):
                raise ConfigError(f"invalid filter 'dangling={value}'")


def _search(pattern: str, text: str) -> bool:
    """Docker's Args.Match: equal, or the value as a regular expression found in text."""
    if pattern == text:
        return True
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False


def _labels_match(wanted: list[str], labels: dict[str, str]) -> bool:
    """label=k or label=k=v, every one must hold (Docker's MatchKVList)."""
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def matches(doc: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """A NetworkResource against GET /networks filters: values of one key are alternatives
    (label: all must hold), keys must all hold."""
    predefined = PREDEFINED.get(doc["Name"]) == doc["Driver"]
    for key, values in filters.items():
        if not values:
            continue
        if key == "driver" and doc["Driver"] not in values:
            return False
        if key == "scope" and doc["Scope"] not in values:
            return False
        if key == "name" and not any(_search(v, doc["Name"]) for v in values):
            return False
        if key == "id" and not any(_search(v, doc["Id"]) for v in values):
            return False
        if key == "label" and not _labels_match(values, doc.get("Labels") or {}):
            return False
        if key == "type" and ("builtin" if predefined else "custom") not in values:
            return False
        if key == "dangling":
            dangling = not predefined and not doc.get("Containers")
            if dangling not in {v.lower() in ("true", "1") for v in values}:
                return False
    return True


def _prunable(doc: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    labels = doc.get("Labels") or {}
    if filters.get("label") and not _labels_match(filters["label"], labels):
        return False
    unwanted = filters.get("label!") or []
    if unwanted and any(_labels_match([item], labels) for item in unwanted):
        return False
    for until in filters.get("until") or []:
        if _created_after(doc.get("Created") or "", until):
            return False
    return True


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(h|m|s|ms))+")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def _created_after(created: str, until: str) -> bool:
    """`until`: unix seconds, an RFC 3339 time, or a Go duration before now ("24h", "10m");
    networks made later are kept."""
    import calendar
    import time

    def seconds(stamp: str) -> float:
        try:
            return float(stamp)
        except ValueError:
            pass
        if _DURATION.fullmatch(stamp):
            parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", stamp)
            return time.time() - sum(float(n) * _UNIT[u] for n, u in parts)
        try:
            return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
        except ValueError:
            raise ConfigError(f"invalid filter 'until={until}'") from None

    limit = seconds(until)
    return seconds(created) > limit if created else False
