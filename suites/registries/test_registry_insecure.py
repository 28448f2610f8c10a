"""insecure-registries (REG-03, REG-04): a registry listed by host:port, or by a CIDR holding
its address, takes push and pull over TLS without certificate verification (the self-signed
registry) and over plain HTTP (the HTTP registry). On the wire, to the lab's fake WAN, the
daemon tries TLS first and falls back to plain HTTP only where TLS fails.

The daemon is a private one like the target with {"insecure-registries": [...]}
(fixtures.registry); packets are read from an AF_PACKET socket in the fake WAN's namespace.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fixtures.netlab import capture, settle
from fixtures.registry import (
    HTTP_PORT,
    TLS_PORT,
    WAN_ADDRESS,
    Certificate,
    RegistryLab,
    assert_round_trip,
    registry_lab,
    round_trip,
)
from fixtures.registry_fixtures import LAB_CAPABILITIES, needs_registry
from fixtures.registry_fixtures import certificate as certificate
from fixtures.targets.base import Driver

# The two spellings of an entry (REG-03), each naming both lab registries.
FORMS: dict[str, list[str]] = {
    "host-port": [f"{WAN_ADDRESS}:{HTTP_PORT}", f"{WAN_ADDRESS}:{TLS_PORT}"],
    "cidr": ["198.51.100.0/24"],
}
TLS_HANDSHAKE = b"\x16\x03"  # TLS record header: handshake, version 3.x (a ClientHello first)
HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"PATCH ")
# What a listed registry's port sees, by registry kind: TLS first; plain HTTP after it only
# where TLS failed (the plain-HTTP registry).
PLAIN_HTTP_SEEN = {"http": True, "tls": False}


@pytest.fixture(scope="module", params=sorted(FORMS))
def insecure_lab(
    request: pytest.FixtureRequest, target: Driver, certificate: Certificate
) -> Iterator[RegistryLab]:
    needs_registry(target, LAB_CAPABILITIES)
    with registry_lab(target, {"insecure-registries": FORMS[request.param]}, certificate) as lab:
        yield lab


def payloads(packets: list[Any], port: int) -> list[bytes]:
    """TCP payloads sent to `port`, in order of capture."""
    from scapy.layers.inet import TCP

    return [
        bytes(p[TCP].payload)
        for p in packets
        if TCP in p and p[TCP].dport == port and len(p[TCP].payload) > 0
    ]


def to_registry(packet: Any) -> bool:
    from scapy.layers.inet import TCP

    return TCP in packet and packet[TCP].dport in (HTTP_PORT, TLS_PORT)


@pytest.mark.req("REG-03", "REG-04")
@pytest.mark.needs("registry", "daemon-config")
@pytest.mark.parametrize("kind", ["http", "tls"])
def test_listed_registry_takes_push_and_pull(insecure_lab: RegistryLab, kind: str) -> None:
    registry = getattr(insecure_lab, kind)
    with capture(insecure_lab.wan, ["eth0"], lfilter=to_registry) as wire:
        with round_trip(insecure_lab.driver, registry) as trip:
            assert_round_trip(trip)
        settle()
        sent = payloads(wire.stop(), registry.port)
    assert sent, f"no TCP payload to {registry.host} captured"
    assert sent[0].startswith(TLS_HANDSHAKE), f"first bytes to {registry.host}: {sent[0][:16]!r}"
    plain = [p[:40] for p in sent if p.startswith(HTTP_METHODS)]
    assert bool(plain) == PLAIN_HTTP_SEEN[kind], f"plain HTTP requests to {registry.host}: {plain}"
