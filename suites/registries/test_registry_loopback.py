"""Loopback registries are insecure by default (REG-05): with no configuration at all the
target's own daemon pushes to and pulls from a plain-HTTP registry on 127.0.0.1, whether the
reference says 127.0.0.1 or localhost.

The registry runs in the daemon's network namespace (the host's, for the shared daemon), on a
free port of 127.0.0.1; nothing leaves loopback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.registry import Registry, assert_round_trip, round_trip
from fixtures.registry_fixtures import loopback_registry as loopback_registry
from fixtures.targets.base import Driver

HOSTS = Path("/etc/hosts")
NSSWITCH = Path("/etc/nsswitch.conf")


def localhost_is_a_hosts_entry() -> bool:
    """Whether the daemon resolves "localhost" from /etc/hosts alone: it must never ask the
    host's resolver (a real address off this machine)."""
    entries = [line.split() for line in HOSTS.read_text().splitlines() if not line.startswith("#")]
    mapped = any(e[0].startswith("127.") and "localhost" in e[1:] for e in entries if len(e) > 1)
    lines = NSSWITCH.read_text().splitlines()
    sources = next((line.split()[1:] for line in lines if line.startswith("hosts:")), ["files"])
    return mapped and sources[:1] == ["files"]


@pytest.mark.req("REG-05")
@pytest.mark.needs("registry")
@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_loopback_registry_needs_no_configuration(
    target: Driver, loopback_registry: Registry, name: str
) -> None:
    if name == "localhost" and not localhost_is_a_hosts_entry():
        pytest.skip("localhost is not a 127.x entry read first from /etc/hosts here")
    with round_trip(target, loopback_registry, host=f"{name}:{loopback_registry.port}") as trip:
        assert_round_trip(trip)
