"""Published ports: DNAT and forward rules against an in-memory iptables, walked like the
suite walks the kernel's; host ports held by sockets (real ones where it matters: binding an
unprivileged port needs no root)."""

from __future__ import annotations

import errno
import socket

import pytest

from fixtures.iptables import Packet, Ruleset
from reference.errors import ConfigError, ConflictError
from reference.network.firewall import Firewall
from reference.network.model import PortBinding
from reference.network.portmap import EPHEMERAL, PortMapper
from tests.reference.network._fake_iptables import FakeIptables

BR, CIP = "br-0123456789ab", "10.1.0.2"


class FakeReserver:
    def __init__(self, busy: set[int] | None = None) -> None:
        self.busy = busy or set()
        self.held: list[tuple[str, str, int]] = []

    def __call__(self, proto: str, host_ip: str, port: int) -> socket.socket | None:
        if port in self.busy:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        self.held.append((proto, host_ip, port))
        return None


@pytest.fixture
def ipt() -> FakeIptables:
    return FakeIptables(policy="DROP")


def mapper(ipt: FakeIptables, reserver: FakeReserver | None = None) -> PortMapper:
    fw = Firewall(True, True, runner=ipt, sysctl=ipt.sysctl)
    fw.setup_network(BR, "10.1.0.0/24")
    return PortMapper(fw, reserver or FakeReserver())


def dnat(ipt: FakeIptables, chain: str, packet: Packet) -> tuple[str, tuple[str, ...]]:
    walk = Ruleset(ipt.save()).verdict("nat", chain, packet)
    return walk.target, walk.args[-1:]


def test_published_port_is_dnated_and_forwarded(ipt: FakeIptables) -> None:
    pm = mapper(ipt)
    rules = pm.publish(BR, f"{CIP}/24", [PortBinding("tcp", 80, "", 8080)])
    assert [r.text() for r in rules] == [
        f"-A REFD ! -i {BR} -p tcp -m tcp --dport 8080 -j DNAT --to-destination {CIP}:80",
        f"-A REFD-FORWARD -d {CIP}/32 ! -i {BR} -o {BR} -p tcp -m tcp --dport 80 -j ACCEPT",
    ]
    wan = Packet("198.51.100.2", "198.51.100.1", in_if="eth9", dport=8080, dst_local=True)
    assert dnat(ipt, "PREROUTING", wan) == ("DNAT", (f"{CIP}:80",))
    local = Packet("127.0.0.1", "127.0.0.1", dport=8080, dst_local=True, src_local=True)
    assert dnat(ipt, "OUTPUT", local) == ("DNAT", (f"{CIP}:80",)), "loopback not published"
    from_bridge = Packet("10.1.0.3", "10.1.0.1", in_if=BR, dport=8080, dst_local=True)
    assert dnat(ipt, "PREROUTING", from_bridge)[0] != "DNAT"
    other_port = Packet("198.51.100.2", "198.51.100.1", in_if="eth9", dport=8081, dst_local=True)
    assert dnat(ipt, "PREROUTING", other_port)[0] != "DNAT"
    # After DNAT: forwarded to the container port, and loopback sources masqueraded.
    rules_now = Ruleset(ipt.save())
    forwarded = Packet("198.51.100.2", CIP, in_if="eth9", out_if=BR, dport=80)
    assert rules_now.verdict("filter", "FORWARD", forwarded).target == "ACCEPT"
    looped = Packet("127.0.0.1", CIP, out_if=BR, dport=80)
    assert rules_now.verdict("nat", "POSTROUTING", looped).target == "MASQUERADE"
    assert ipt.sysctls[f"net/ipv4/conf/{BR}/route_localnet"] == "1"


def test_host_ip_and_udp(ipt: FakeIptables) -> None:
    pm = mapper(ipt)
    pm.publish(BR, CIP, [PortBinding("udp", 53, "127.0.0.1", 5353)])
    hit = Packet("127.0.0.1", "127.0.0.1", proto="udp", dport=5353, dst_local=True)
    assert dnat(ipt, "OUTPUT", hit) == ("DNAT", (f"{CIP}:53",))
    miss = Packet("198.51.100.2", "198.51.100.1", in_if="eth9", proto="udp", dport=5353)
    assert dnat(ipt, "PREROUTING", miss)[0] != "DNAT"
    tcp = Packet("127.0.0.1", "127.0.0.1", proto="tcp", dport=5353, dst_local=True)
    assert dnat(ipt, "OUTPUT", tcp)[0] != "DNAT"


def test_default_host_ip_of_the_network(ipt: FakeIptables) -> None:
    binding = PortBinding("tcp", 80, "", 8080)
    rules = mapper(ipt).publish(BR, CIP, [binding], default_host_ip="127.0.0.1")
    assert binding.host_ip == "127.0.0.1"
    assert rules[0].spec[:2] == ("-d", "127.0.0.1/32")


def test_ephemeral_ports_are_free_and_distinct(ipt: FakeIptables) -> None:
    reserver = FakeReserver(busy={EPHEMERAL.start})
    pm = mapper(ipt, reserver)
    bindings = [PortBinding("tcp", 80), PortBinding("tcp", 81)]
    pm.publish(BR, CIP, bindings)
    ports = [b.host_port for b in bindings]
    assert len(set(ports)) == 2
    assert all(p in EPHEMERAL and p != EPHEMERAL.start for p in ports), ports
    assert [h[2] for h in reserver.held] == ports


def test_allocated_port_conflicts_and_the_failed_call_leaves_nothing(ipt: FakeIptables) -> None:
    pm = mapper(ipt)
    pm.publish(BR, CIP, [PortBinding("tcp", 80, "", 8080)])
    before = ipt.save()
    second = [PortBinding("tcp", 81, "", 9090), PortBinding("tcp", 82, "127.0.0.1", 8080)]
    with pytest.raises(ConflictError, match="8080 failed: port is already allocated"):
        pm.publish(BR, "10.1.0.3", second)
    assert ipt.save() == before
    pm.publish(BR, "10.1.0.3", [PortBinding("tcp", 81, "", 9090)])  # 9090 was released
    pm.publish(BR, "10.1.0.3", [PortBinding("udp", 80, "", 8080)])  # another protocol


def test_port_in_use_by_another_process(ipt: FakeIptables) -> None:
    pm = mapper(ipt, FakeReserver(busy={8080}))
    with pytest.raises(ConflictError, match="address already in use"):
        pm.publish(BR, CIP, [PortBinding("tcp", 80, "", 8080)])
    with pytest.raises(ConfigError, match="protocol"):
        pm.publish(BR, CIP, [PortBinding("sctp", 80, "", 8080)])


def test_unpublish_removes_exactly_its_rules(ipt: FakeIptables) -> None:
    pm = mapper(ipt)
    keep = [PortBinding("tcp", 80, "", 8080)]
    pm.publish(BR, CIP, keep)
    before = ipt.save()
    gone = [PortBinding("tcp", 80, "", 8081)]
    rules = pm.publish(BR, "10.1.0.3", gone)
    pm.unpublish(gone, rules)
    assert ipt.save() == before
    pm.publish(BR, "10.1.0.3", gone)  # the port is free again
    pm.release_bridge(BR)
    assert not [line for line in ipt.save() if "127.0.0.0/8" in line and "MASQUERADE" in line]


def test_restore_is_idempotent(ipt: FakeIptables) -> None:
    pm = mapper(ipt)
    bindings = [PortBinding("tcp", 80, "", 8080)]
    rules = pm.publish(BR, CIP, bindings)
    before = ipt.save()
    pm.restore(BR, bindings, rules)
    assert ipt.save() == before


def test_real_sockets_hold_the_host_port(ipt: FakeIptables) -> None:
    fw = Firewall(True, True, runner=ipt, sysctl=ipt.sysctl)
    fw.ensure_base()
    pm = PortMapper(fw)
    binding = PortBinding("tcp", 80, "127.0.0.1", 0)
    pm.publish(BR, CIP, [binding])
    probe = socket.socket()
    try:
        with pytest.raises(OSError, match="in use"):
            probe.bind(("127.0.0.1", binding.host_port))
        pm.close()
        probe.bind(("127.0.0.1", binding.host_port))
    finally:
        probe.close()
