"""insecure-registries is live-reloadable (REG-08): a running daemon that refused a plain-HTTP
registry takes push and pull to it once its configuration file lists the registry and it got
SIGHUP, with no restart (same process).

The daemon is a private one like the target (fixtures.registry), reloaded through its own
daemon.json; the shared daemon is never signalled.
"""

from __future__ import annotations

import pytest

from fixtures.registry import RegistryLab, assert_round_trip, refusal, reload_daemon, round_trip
from fixtures.registry_fixtures import certificate as certificate
from fixtures.registry_fixtures import default_lab as default_lab


@pytest.mark.req("REG-08")
@pytest.mark.needs("registry", "daemon-config")
def test_sighup_reloads_insecure_registries(default_lab: RegistryLab) -> None:
    driver, registry = default_lab.driver, default_lab.http
    pid = default_lab.daemon.pid
    with round_trip(driver, registry) as trip:
        refusal(trip.pushed)
    reload_daemon(default_lab, {"insecure-registries": [registry.host]})
    with round_trip(driver, registry) as trip:
        assert_round_trip(trip)
    assert default_lab.daemon.alive(), "the daemon exited on SIGHUP"
    assert default_lab.daemon.pid == pid
