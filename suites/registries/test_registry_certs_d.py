"""A CA certificate in certs.d makes a self-signed TLS registry trusted (REG-01): the daemon
verifies the registry against the system CAs plus every *.crt in certs.d/<host:port>/, read
when it connects (no restart), and only from the directory named exactly as the reference.

dockerd 20.10 reads certs.d under /etc/docker and has no option to move it, so the private
daemon (fixtures.registry) sees a private, empty /etc/docker in its own mount namespace; the
suite writes there, never into the host's /etc/docker.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fixtures.registry import RegistryLab, assert_round_trip, refusal, round_trip
from fixtures.registry_fixtures import certificate as certificate
from fixtures.registry_fixtures import default_lab as default_lab


@contextmanager
def trusted_in(lab: RegistryLab, directory_name: str) -> Iterator[Path]:
    """The TLS registry's certificate as certs.d/<directory_name>/ca.crt, removed after."""
    assert lab.tls.ca is not None
    directory = lab.certs_dir / directory_name
    directory.mkdir()
    try:
        shutil.copyfile(lab.tls.ca, directory / "ca.crt")
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.req("REG-01")
@pytest.mark.needs("registry", "daemon-config")
def test_ca_in_certs_d_makes_the_registry_trusted(default_lab: RegistryLab) -> None:
    driver, registry = default_lab.driver, default_lab.tls
    with trusted_in(default_lab, registry.host) as directory, round_trip(driver, registry) as trip:
        assert_round_trip(trip)
        shutil.rmtree(directory)
        # The same pull again, the certificate gone: trust came from that file alone.
        refusal(driver.pull(f"{trip.name}:t"))


@pytest.mark.req("REG-01")
@pytest.mark.needs("registry", "daemon-config")
def test_certs_d_directory_must_name_host_and_port(default_lab: RegistryLab) -> None:
    """The reference says 198.51.100.1:5443; a directory for the host without the port is
    another registry's (the one on 443)."""
    driver, registry = default_lab.driver, default_lab.tls
    with trusted_in(default_lab, registry.address), round_trip(driver, registry) as trip:
        refusal(trip.pushed)
    assert trip.manifest is None
