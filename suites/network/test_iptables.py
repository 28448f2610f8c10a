"""The firewall an engine keeps for its default bridge while it runs, read with iptables-save
in the engine's namespace.

What a rule must *do* is checked for every engine by walking the chains (fixtures.iptables):
traffic from the bridge subnet leaving through another interface is masqueraded, traffic
staying on the bridge is not, new traffic out of the bridge and replies back in are
accepted. Docker's own rule text (the documented layout, by version) is checked as data.
"""

from __future__ import annotations

import pytest

from fixtures.containers import Containers
from fixtures.iptables import Packet, Ruleset, iptables_save
from fixtures.netlab import Endpoint, Netns, endpoint
from fixtures.probe import SLEEP
from fixtures.security import in_ranges, version_of
from fixtures.targets.base import ContainerSpec, Driver

OUTSIDE = "198.51.100.1"  # an address off the bridge; nothing is sent
OUT_LINK = "cts-wan"  # a link name that is not the bridge; only the walk sees it

# Docker's rule text by version range (catalogue NET-20, NET-23, NET-24); {br} the bridge,
# {subnet} its subnet.
DOCKER_NAT_RULES = ("-A POSTROUTING -s {subnet} ! -o {br} -j MASQUERADE",)
DOCKER_FORWARD_RULES = {
    ((0,), (28,)): (
        "-A FORWARD -o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A FORWARD -o {br} -j DOCKER",
        "-A FORWARD -i {br} ! -o {br} -j ACCEPT",
        "-A FORWARD -i {br} -o {br} -j ACCEPT",
    ),
    ((28,), None): (
        "-A DOCKER-CT -o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A DOCKER-BRIDGE -o {br} -j DOCKER",
        "-A DOCKER-FORWARD -i {br} -j ACCEPT",
    ),
}

pytestmark = pytest.mark.needs("bridge-network")


def running(containers: Containers, engine_ns: Netns) -> tuple[Endpoint, str, Ruleset]:
    """A container on the default bridge, the bridge's name and the ruleset meanwhile."""
    found = endpoint(containers.start(ContainerSpec(command=SLEEP)).pid, engine_ns)
    assert found.bridge is not None, f"eth0 is not bridged: {found}"
    return found, found.bridge.name, Ruleset(iptables_save(engine_ns))


def docker_rules(target: Driver, table: str) -> tuple[str, ...]:
    """The rule lines Docker writes for a bridge, for this target's version; () otherwise."""
    if target.kind != "docker":
        return ()
    if table == "nat":
        return DOCKER_NAT_RULES
    version = version_of(target)
    return next(
        (rules for span, rules in DOCKER_FORWARD_RULES.items() if in_ranges(version, (span,))), ()
    )


@pytest.mark.req("NET-20")
def test_bridge_subnet_is_masqueraded_when_leaving(
    target: Driver, containers: Containers, engine_ns: Netns
) -> None:
    found, bridge, rules = running(containers, engine_ns)
    source = str(found.address.ip)
    out = rules.verdict("nat", "POSTROUTING", Packet(source, OUTSIDE, out_if=OUT_LINK))
    assert out.target == "MASQUERADE", f"leaving traffic of {source} is not masqueraded: {out}"
    peer = str(found.address.network.broadcast_address - 1)
    local = rules.verdict("nat", "POSTROUTING", Packet(source, peer, out_if=bridge))
    assert local.target != "MASQUERADE", f"traffic on {bridge} is masqueraded: {local}"
    subnet = str(found.address.network)
    missing = [
        rule
        for rule in (r.format(br=bridge, subnet=subnet) for r in docker_rules(target, "nat"))
        if rule not in rules.lines("nat")
    ]
    assert not missing, f"documented rules missing: {missing}"


@pytest.mark.req("NET-23")
def test_forward_accepts_traffic_out_of_the_bridge_and_replies(
    target: Driver, containers: Containers, engine_ns: Netns
) -> None:
    found, bridge, rules = running(containers, engine_ns)
    source = str(found.address.ip)
    out = Packet(source, OUTSIDE, in_if=bridge, out_if=OUT_LINK)
    assert rules.verdict("filter", "FORWARD", out).target == "ACCEPT", rules.verdict(
        "filter", "FORWARD", out
    )
    back = Packet(OUTSIDE, source, in_if=OUT_LINK, out_if=bridge, ctstate="ESTABLISHED")
    assert rules.verdict("filter", "FORWARD", back).target == "ACCEPT", rules.verdict(
        "filter", "FORWARD", back
    )
    missing = [
        rule
        for rule in (r.format(br=bridge) for r in docker_rules(target, "filter"))
        if rule not in rules.lines("filter")
    ]
    assert not missing, f"documented rules missing: {missing}"
