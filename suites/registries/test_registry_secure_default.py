"""Registries are secure by default (REG-01, REG-06): a daemon with no registry configuration
refuses a registry that speaks plain HTTP and one whose certificate no CA it trusts signed,
for push and pull alike, and nothing reaches the registry's storage.

The daemon is a private one like the target, with an empty configuration, in a lab host linked
to a fake WAN (198.51.100.1) where the registries run (fixtures.registry); the shared daemon
is never reconfigured and the host's network namespace gets no link or address.
"""

from __future__ import annotations

import re

import pytest

from fixtures.registry import RegistryLab, refusal, round_trip
from fixtures.registry_fixtures import certificate as certificate
from fixtures.registry_fixtures import default_lab as default_lab
from fixtures.targets.base import Driver

Version = tuple[int, ...]
# REG-06: Go's texts, as the daemon passes them on (Go's crypto/x509 and net/http).
CAUSES = {
    "http": "http: server gave HTTP response to HTTPS client",
    "tls": "x509: certificate signed by unknown authority",
}
# Binaries built with Go >= 1.20 (Docker >= 24.0) wrap certificate errors in
# "tls: failed to verify certificate: ". (first Docker version, prefix), newest first.
TLS_PREFIXES: tuple[tuple[Version, str], ...] = (
    ((24,), "tls: failed to verify certificate: "),
    ((0,), ""),
)


def docker_version(driver: Driver) -> Version:
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", driver.version())
    assert found, f"no version number in {driver.version()!r}"
    return tuple(int(part) for part in found.groups())


def expected_cause(driver: Driver, kind: str) -> str:
    if kind == "http":
        return CAUSES[kind]
    version = docker_version(driver)
    prefix = next(prefix for first, prefix in TLS_PREFIXES if version >= first)
    return prefix + CAUSES[kind]


@pytest.mark.req("REG-01")
@pytest.mark.needs("registry", "daemon-config")
@pytest.mark.parametrize("kind", ["http", "tls"])
def test_unconfigured_daemon_refuses_the_registry(default_lab: RegistryLab, kind: str) -> None:
    registry = getattr(default_lab, kind)
    driver = default_lab.driver
    with round_trip(driver, registry) as trip:
        refusal(trip.pushed)
        refusal(driver.pull(f"{trip.name}:t"))
        repository = trip.name.split("/", 1)[1]
    assert trip.manifest is None
    assert repository not in registry.repositories(), "the refused push reached the storage"
    # Not one request for the repository got through to the registry (push or pull).
    assert not registry.requests_for(repository), registry.requests_for(repository)[:3]


@pytest.mark.req("REG-06")
@pytest.mark.needs("registry", "daemon-config")
@pytest.mark.parametrize("kind", ["http", "tls"])
def test_refusal_names_the_cause(default_lab: RegistryLab, kind: str) -> None:
    registry = getattr(default_lab, kind)
    driver = default_lab.driver
    cause = expected_cause(driver, kind)
    with round_trip(driver, registry) as trip:
        pulled = driver.pull(f"{trip.name}:t")
    for verb, result in (("push", trip.pushed), ("pull", pulled)):
        message = refusal(result)
        assert cause in message, f"{verb}: {message!r}"
        # The daemon's first (and, unconfigured, only) attempt is HTTPS: the URL says so.
        assert f"https://{registry.host}/v2/" in message, f"{verb}: {message!r}"
