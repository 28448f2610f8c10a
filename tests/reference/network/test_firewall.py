"""refd's bridge firewall, against an in-memory iptables (no root): the rules it writes are
walked with fixtures.iptables the way the conformance suite walks the kernel's, with Docker's
own chains and FORWARD policy DROP already in place."""

from __future__ import annotations

import pytest

from fixtures.iptables import Packet, Ruleset
from reference.errors import RefError
from reference.network.firewall import Firewall
from tests.reference.network._fake_iptables import FakeIptables

BR, SUBNET = "br-0123456789ab", "10.1.0.0/24"
OTHER, OTHER_SUBNET = "refd0", "172.17.0.0/16"
WAN = "eth9"
OUTSIDE = "198.51.100.1"
DOCKER_FORWARD = [
    ("-j", "DOCKER-USER"),
    ("-o", "docker0", "-j", "DOCKER"),
    ("-i", "docker0", "!", "-o", "docker0", "-j", "ACCEPT"),
]


@pytest.fixture
def ipt() -> FakeIptables:
    """Docker 20.10 already there: its FORWARD rules and the DROP policy."""
    fake = FakeIptables(policy="DROP")
    fake.chains["filter"].update({"DOCKER-USER": [("-j", "RETURN")], "DOCKER": []})
    fake.chains["filter"]["FORWARD"] = list(DOCKER_FORWARD)
    return fake


def firewall(ipt: FakeIptables, enabled: bool = True, ip_forward: bool = True) -> Firewall:
    return Firewall(enabled, ip_forward, runner=ipt, sysctl=ipt.sysctl)


def verdict(ipt: FakeIptables, table: str, chain: str, packet: Packet) -> str:
    return Ruleset(ipt.save()).verdict(table, chain, packet).target


def test_base_chains_and_jumps_are_made_once(ipt: FakeIptables) -> None:
    fw = firewall(ipt)
    fw.ensure_base()
    assert ipt.sysctls == {"net/ipv4/ip_forward": "1"}
    assert ipt.chains["filter"]["FORWARD"][0] == ("-j", "REFD-FORWARD"), "not first in FORWARD"
    assert ipt.chains["filter"]["FORWARD"][1:] == DOCKER_FORWARD, "Docker's rules were touched"
    assert ipt.chains["nat"]["OUTPUT"] == [
        ("-m", "addrtype", "--dst-type", "LOCAL", "-j", "REFD")
    ], "loopback must not be excluded (route_localnet publishing)"
    made = len(ipt.actions())
    Firewall(True, True, runner=ipt, sysctl=ipt.sysctl).ensure_base()
    assert len(ipt.actions()) == made, f"not idempotent: {ipt.actions()[made:]}"


def test_disabled_firewall_never_runs_iptables(ipt: FakeIptables) -> None:
    fw = firewall(ipt, enabled=False)
    fw.ensure_base()
    fw.setup_network(BR, SUBNET, icc=False)
    fw.teardown_network(BR, SUBNET)
    fw.remove_base()
    assert ipt.calls == []
    assert ipt.sysctls == {"net/ipv4/ip_forward": "1"}, "forwarding is not a firewall rule"
    firewall(FakeIptables(), enabled=False, ip_forward=False).ensure_base()


def test_leaving_traffic_is_masqueraded_and_forwarded(ipt: FakeIptables) -> None:
    firewall(ipt).setup_network(BR, SUBNET)
    leaving = Packet("10.1.0.2", OUTSIDE, out_if=WAN)
    assert verdict(ipt, "nat", "POSTROUTING", leaving) == "MASQUERADE"
    staying = Packet("10.1.0.2", "10.1.0.3", out_if=BR)
    assert verdict(ipt, "nat", "POSTROUTING", staying) != "MASQUERADE"
    out = Packet("10.1.0.2", OUTSIDE, in_if=BR, out_if=WAN)
    assert verdict(ipt, "filter", "FORWARD", out) == "ACCEPT"
    back = Packet(OUTSIDE, "10.1.0.2", in_if=WAN, out_if=BR, ctstate="ESTABLISHED")
    assert verdict(ipt, "filter", "FORWARD", back) == "ACCEPT"
    unasked = Packet(OUTSIDE, "10.1.0.2", in_if=WAN, out_if=BR)
    assert verdict(ipt, "filter", "FORWARD", unasked) == "DROP", "new traffic into the bridge"


def test_without_masquerade_the_source_stays(ipt: FakeIptables) -> None:
    firewall(ipt).setup_network(BR, SUBNET, masq=False)
    leaving = Packet("10.1.0.2", OUTSIDE, out_if=WAN)
    assert verdict(ipt, "nat", "POSTROUTING", leaving) == "ACCEPT"
    out = Packet("10.1.0.2", OUTSIDE, in_if=BR, out_if=WAN)
    assert verdict(ipt, "filter", "FORWARD", out) == "ACCEPT"


@pytest.mark.parametrize(("icc", "expected"), [(True, "ACCEPT"), (False, "DROP")])
def test_icc(ipt: FakeIptables, icc: bool, expected: str) -> None:
    firewall(ipt).setup_network(BR, SUBNET, icc=icc)
    between = Packet("10.1.0.2", "10.1.0.3", in_if=BR, out_if=BR, proto="udp", dport=7070)
    assert verdict(ipt, "filter", "FORWARD", between) == expected
    lines = Ruleset(ipt.save()).lines("filter")
    if not icc:
        assert f"-A FORWARD -i {BR} -o {BR} -j DROP" in lines, "Docker 20.10's text (NET-28)"
        assert ipt.sysctls["net/bridge/bridge-nf-call-iptables"] == "1"


def test_bridges_are_isolated_from_each_other(ipt: FakeIptables) -> None:
    fw = firewall(ipt)
    fw.setup_network(OTHER, OTHER_SUBNET)
    fw.setup_network(BR, SUBNET)
    for src, dst, i, o in (
        ("10.1.0.2", "172.17.0.2", BR, OTHER),
        ("172.17.0.2", "10.1.0.2", OTHER, BR),
    ):
        crossing = Packet(src, dst, in_if=i, out_if=o)
        assert verdict(ipt, "filter", "FORWARD", crossing) == "DROP", crossing
        assert verdict(ipt, "filter", "FORWARD", Packet(src, OUTSIDE, in_if=i, out_if=WAN)) == (
            "ACCEPT"
        )


def test_internal_network_keeps_to_itself(ipt: FakeIptables) -> None:
    firewall(ipt).setup_network(BR, SUBNET, internal=True)
    out = Packet("10.1.0.2", OUTSIDE, in_if=BR, out_if=WAN)
    assert verdict(ipt, "filter", "FORWARD", out) == "DROP"
    inward = Packet(OUTSIDE, "10.1.0.2", in_if=WAN, out_if=BR, ctstate="ESTABLISHED")
    assert verdict(ipt, "filter", "FORWARD", inward) == "DROP"
    between = Packet("10.1.0.2", "10.1.0.3", in_if=BR, out_if=BR)
    assert verdict(ipt, "filter", "FORWARD", between) == "ACCEPT"
    leaving = Packet("10.1.0.2", OUTSIDE, out_if=WAN)
    assert verdict(ipt, "nat", "POSTROUTING", leaving) == "ACCEPT", "internal is not NATed"


def test_setup_is_idempotent_and_teardown_removes_exactly_its_rules(ipt: FakeIptables) -> None:
    fw = firewall(ipt)
    fw.setup_network(OTHER, OTHER_SUBNET)
    kept = ipt.save()
    fw.setup_network(BR, SUBNET, icc=False)
    made = len(ipt.actions())
    fw.setup_network(BR, SUBNET, icc=False)
    assert len(ipt.actions()) == made
    fw.teardown_network(BR, SUBNET)
    assert ipt.save() == kept
    fw.teardown_network(BR, SUBNET)  # again: nothing to do, no error


def test_failed_setup_leaves_nothing(ipt: FakeIptables) -> None:
    fw = firewall(ipt)
    fw.ensure_base()
    before = ipt.save()
    ipt.fail_on = f"-i {BR} ! -o {BR} -j ACCEPT"
    with pytest.raises(RefError, match=BR):
        fw.setup_network(BR, SUBNET)
    assert ipt.save() == before


def test_remove_base_only_when_no_network_is_left(ipt: FakeIptables) -> None:
    fw = firewall(ipt)
    fw.setup_network(BR, SUBNET)
    fw.remove_base()
    assert "REFD-FORWARD" in ipt.chains["filter"], "removed while a network has rules"
    fw.teardown_network(BR, SUBNET)
    fw.remove_base()
    assert not [c for t in ipt.chains.values() for c in t if c.startswith("REFD")]
    assert ipt.chains["filter"]["FORWARD"] == DOCKER_FORWARD


def test_loopback_addressed_traffic_from_a_bridge_is_dropped_early(ipt: FakeIptables) -> None:
    """route_localnet (loopback publishing) must not open the host's 127.0.0.1 services to
    containers that route 127/8 to their gateway."""
    firewall(ipt).setup_network(BR, SUBNET)
    sneaking = Packet("10.1.0.2", "127.0.0.1", in_if=BR, dport=22)
    assert verdict(ipt, "raw", "PREROUTING", sneaking) == "DROP"
    reply = Packet("10.1.0.2", "10.1.0.1", in_if=BR, ctstate="ESTABLISHED")
    assert verdict(ipt, "raw", "PREROUTING", reply) == "ACCEPT"
