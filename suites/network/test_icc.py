"""Container to container on one bridge: the datagram crosses the bridge, seen on the host
ends of both veth pairs with the sender's own address and MAC (switched, not routed or
NATed); with --icc=false the engine drops it between the two ports.

Frames are sniffed on the two host-side veths in the engine's namespace; delivery is what
the receiver's `probe udp-recv` got.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from fixtures.containers import Containers
from fixtures.daemon_config import LabFactory
from fixtures.iptables import Packet, Ruleset, iptables_save
from fixtures.netlab import Endpoint, Netns, capture, endpoint, settle
from fixtures.probe import SLEEP, probe
from fixtures.targets.base import CommandResult, ContainerSpec, Driver
from fixtures.traffic import udp_receiver

PORT = 7070
MESSAGE = "icc-probe"
DOCKER_ICC_DROP = "-A FORWARD -i {br} -o {br} -j DROP"  # 20.10 (catalogue NET-28)


@dataclass(frozen=True)
class Crossing:
    sender: Endpoint
    receiver: Endpoint
    delivered: CommandResult  # the receiver's udp-recv
    got: dict[str, Any]  # what it printed last
    frames: dict[str, list[Any]]  # host veth name -> UDP frames to PORT seen there


def send_across(containers: Containers, engine_ns: Netns) -> Crossing:
    first = containers.start(ContainerSpec(command=SLEEP))
    second = containers.start(ContainerSpec(command=SLEEP))
    sender, receiver = endpoint(first.pid, engine_ns), endpoint(second.pid, engine_ns)
    assert sender.host_veth is not None, sender
    assert receiver.host_veth is not None, receiver
    ports = [sender.host_veth.name, receiver.host_veth.name]
    is_probe = lambda p: p.haslayer("UDP") and p["UDP"].dport == PORT  # noqa: E731
    with (
        capture(engine_ns, ports, is_probe) as wire,
        udp_receiver(containers.driver, second, PORT) as waiting,
    ):
        sent = containers.exec(first, probe("udp-send", str(receiver.address.ip), PORT, MESSAGE, 3))
        assert sent.exit_code == 0, sent.stderr
        delivered = waiting.result()
        settle()
        frames = {name: [f for f in wire.stop() if f.sniffed_on == name] for name in ports}
    return Crossing(sender, receiver, delivered, waiting.got(), frames)


@pytest.mark.req("NET-ICC-01")
@pytest.mark.needs("bridge-network")
def test_containers_on_one_bridge_talk_through_its_ports(
    containers: Containers, engine_ns: Netns
) -> None:
    crossing = send_across(containers, engine_ns)
    source = str(crossing.sender.address.ip)
    assert crossing.delivered.exit_code == 0, crossing.delivered.stdout
    got = crossing.got
    assert (got.get("from", "").split(":")[0], got.get("data")) == (source, MESSAGE), got
    for name, frames in crossing.frames.items():
        assert frames, f"the datagram was not seen on bridge port {name}"
        assert {(f["IP"].src, f.src) for f in frames} == {(source, crossing.sender.eth0.mac)}, (
            f"not the sender's own address and MAC on {name}: {[f.summary() for f in frames]}"
        )


@pytest.mark.req("NET-28")
@pytest.mark.needs("daemon-config")
def test_icc_false_drops_traffic_between_containers(
    target: Driver, lab_factory: LabFactory
) -> None:
    lab, containers = lab_factory({"icc": False})
    crossing = send_across(containers, lab.netns)
    assert crossing.sender.host_veth is not None
    assert crossing.receiver.host_veth is not None
    assert crossing.frames[crossing.sender.host_veth.name], "the sender's datagram never left it"
    assert crossing.got == {"timeout": True}, f"delivered: {crossing.delivered.stdout}"
    assert not crossing.frames[crossing.receiver.host_veth.name], "it crossed the bridge"
    bridge = crossing.sender.bridge
    assert bridge is not None
    rules = Ruleset(iptables_save(lab.netns))
    between = Packet(
        str(crossing.sender.address.ip),
        str(crossing.receiver.address.ip),
        in_if=bridge.name,
        out_if=bridge.name,
        proto="udp",
        dport=PORT,
    )
    assert rules.verdict("filter", "FORWARD", between).target == "DROP"
    if target.kind == "docker":  # the documented rule text is Docker's own layout
        assert DOCKER_ICC_DROP.format(br=bridge.name) in rules.lines("filter")
