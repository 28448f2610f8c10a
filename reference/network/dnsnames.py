"""What the embedded DNS server answers by itself (libnetwork's sandbox ResolveName/ResolveIP
and resolver.go of Docker 20.10), apart from sockets: the names of the containers on the
user-defined networks the asking container is on.

On each such network an endpoint is known by its container's name, its network aliases
(--network-alias) and its container's short id (Docker adds that alias on user networks).
A name may be qualified by a network ("web.net1": web on net1 only). Lookups ignore case.

    view = view_of(controller, container_id)    # a snapshot, read at each query
    local_answer(query, view, ndots_set)         # a reply, or None: ask the upstreams
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from reference.network import dnswire
from reference.network.dnswire import TYPE_A, TYPE_AAAA, TYPE_MX, TYPE_PTR, Query

if TYPE_CHECKING:
    from reference.network.controller import Controller
    from reference.network.model import Network

TTL = 600  # seconds, Docker's respTTL
NOT_USER_DEFINED = ("bridge", "host", "none", "default")  # Docker's NetworkMode rules
PTR_SUFFIX = ".in-addr.arpa"


@dataclass(frozen=True)
class Record:
    """One endpoint as the resolver sees it."""

    network: str  # the network's name
    name: str  # the container's name (no "/")
    aliases: tuple[str, ...]  # network aliases and the short container id
    address: str  # "172.18.0.2"

    def known_as(self, name: str) -> bool:
        return name == self.name.lower() or name in (a.lower() for a in self.aliases)


@dataclass(frozen=True)
class View:
    """The asking container's side: its user networks, in lookup order, and every endpoint on
    them; whether it is on internal networks only (then nothing is forwarded)."""

    networks: tuple[str, ...] = ()
    records: tuple[Record, ...] = ()
    internal_only: bool = False


def user_defined(network: Network) -> bool:
    """Whether a network has the embedded DNS server (the default bridge has not)."""
    return network.name not in NOT_USER_DEFINED


def view_of(ctl: Controller, container_id: str) -> View:
    """From the controller's records, without its lock: the DNS thread never waits behind a
    container start. The copies are made in one step each under the GIL, and an endpoint is
    complete before it is put in `ctl.endpoints`."""
    endpoints = list(ctl.endpoints.values())
    networks = dict(ctl.networks_by_id)
    mine = [
        networks[e.network_id]
        for e in endpoints
        if e.container_id == container_id and e.network_id in networks
    ]
    users = sorted((n for n in mine if user_defined(n)), key=lambda n: n.name)
    names = {n.id: n.name for n in users}
    records = tuple(
        Record(
            names[e.network_id],
            e.name,
            (*e.aliases, e.container_id[:12]),
            e.address.split("/")[0],
        )
        for e in endpoints
        if e.network_id in names and e.address
    )
    internal = bool(mine) and all(n.internal for n in mine)
    return View(tuple(n.name for n in users), records, internal)


def resolve(view: View, name: str) -> list[str]:
    """The IPv4 addresses of `name` ("web", "web.net1"), shuffled as Docker does; [] if it is
    no name of the networks. For "a.b.c": a.b.c on any network, then a.b on network c, then a
    on network b.c."""
    name = name.lower().rstrip(".")
    wanted = [(name, "")]
    cut = len(name)
    while (cut := name.rfind(".", 0, cut)) != -1:
        wanted.append((name[:cut], name[cut + 1 :]))
    for request, network in wanted:
        for net in view.networks:
            if network and network != net.lower():
                continue
            found: list[str] = []
            for record in view.records:
                if record.network == net and record.known_as(request):
                    found += [] if record.address in found else [record.address]
            if found:
                random.shuffle(found)
                return found
    return []


def reverse(view: View, name: str) -> str | None:
    """ "<name>.<network>" of the endpoint whose address a PTR question asks for."""
    name = name.lower().rstrip(".")
    if not name.endswith(PTR_SUFFIX):
        return None
    try:
        address = str(IPv4Address(".".join(reversed(name[: -len(PTR_SUFFIX)].split(".")))))
    except ValueError:
        return None
    for net in view.networks:
        for record in view.records:
            if record.network == net and record.address == address:
                return f"{record.name}.{net}"
    return None


def local_answer(query: Query, view: View, ndots_set: bool, tcp: bool = False) -> bytes | None:
    """The reply the server gives by itself, or None when the query goes to the upstreams."""
    limit = query.limit(tcp)
    if query.qtype == TYPE_A:
        addresses = resolve(view, query.name)
        if addresses:
            records = [dnswire.a_record(a, TTL) for a in addresses]
            return dnswire.reply(query, answers=records, limit=limit, tcp=tcp)
    elif query.qtype in (TYPE_AAAA, TYPE_MX):
        # A known name without IPv6 (refd's networks have none): no records, and not
        # forwarded either; for MX an empty answer tells mailers to use the A record.
        if resolve(view, query.name):
            return dnswire.reply(query)
    elif query.qtype == TYPE_PTR:
        target = reverse(view, query.name)
        if target is not None:
            try:
                record = dnswire.ptr_record(target, TTL)
            except dnswire.WireError:
                return None  # a name no label can carry: let the upstreams answer
            return dnswire.reply(query, answers=[record], limit=limit, tcp=tcp)
    if view.internal_only:
        return dnswire.reply(query, dnswire.SERVFAIL, recursion_available=False)
    if ndots_set and query.qtype in (TYPE_A, TYPE_AAAA) and "." not in query.name.strip("."):
        # The user set ndots: a single label not ours gets "no records", so that the
        # client goes on with its search domains instead of asking the world for it.
        return dnswire.reply(query)
    return None
