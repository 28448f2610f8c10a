"""Endpoint security as Docker 20.10 has it, against fake registries on 127.0.0.1: verified TLS,
certs.d CAs read at each pull, insecure = unverified HTTPS then HTTP, and Go-worded errors.

127.0.0.0/8 is insecure by default, so the "secure registry" cases clear the client's insecure
list (`SECURE`); the real 198.51.100.x cases are in test_registry_interop.py."""

from __future__ import annotations

import logging
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.registry import make_certificate
from reference.errors import ConfigError
from reference.image.registry import RegistryClient, TransportError
from reference.image.registry_ref import InsecureRegistries
from reference.image.registry_tls import hostname_problem, tls_context
from reference.image.store import ImageStore
from tests.reference.image.test_registry_fakes import (
    FakeRegistry,
    fake_registry,
    make_image,
    raw_server,
    sha256,
)

IMAGE = make_image({"hello": b"over tls\n"})
SECURE = InsecureRegistries(frozenset(), ())  # not even loopback
HTTP_TO_HTTPS = "http: server gave HTTP response to HTTPS client"
UNKNOWN_AUTHORITY = "x509: certificate signed by unknown authority"
LOGGER = "reference.image.registry"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Self-signed certificates for 127.0.0.1 and (to be served wrongly) for 198.51.100.1."""
    out = {}
    for address in ("127.0.0.1", "198.51.100.1"):
        directory = tmp_path_factory.mktemp(f"cert-{address}")
        made = make_certificate(directory, address)
        out[address] = (made.cert, made.key)
    return out


@pytest.fixture
def tls_registry(certs: dict[str, tuple[Path, Path]]) -> Iterator[FakeRegistry]:
    with fake_registry(tls=certs["127.0.0.1"]) as registry:
        registry.put_image("bb", "t", IMAGE)
        yield registry


@pytest.fixture
def http_registry() -> Iterator[FakeRegistry]:
    with fake_registry() as registry:
        registry.put_image("bb", "t", IMAGE)
        yield registry


def client(tmp_path: Path, secure: bool) -> RegistryClient:
    made = RegistryClient(ImageStore(tmp_path / "store"), certs_dir=tmp_path / "certs.d")
    if secure:
        made.insecure = SECURE
    return made


def pull_error(made: RegistryClient, ref: str) -> str:
    with pytest.raises(TransportError) as caught:
        made.pull(ref)
    return str(caught.value)


def test_plain_http_registry_is_refused_when_secure(
    tmp_path: Path, http_registry: FakeRegistry
) -> None:
    made = client(tmp_path, secure=True)
    error = pull_error(made, f"{http_registry.host}/bb:t")
    assert error == f'Get "https://{http_registry.host}/v2/": {HTTP_TO_HTTPS}'
    assert http_registry.log == []  # not a single cleartext request


def test_unknown_authority_then_ca_in_certs_dir(
    tmp_path: Path, tls_registry: FakeRegistry, certs: dict[str, tuple[Path, Path]]
) -> None:
    made = client(tmp_path, secure=True)
    ref = f"{tls_registry.host}/bb:t"
    assert pull_error(made, ref) == f'Get "https://{tls_registry.host}/v2/": {UNKNOWN_AUTHORITY}'
    assert tls_registry.log == []
    # Dropping the CA into certs.d/<host:port>/ works for the same client: read at each pull.
    (made.certs_dir / tls_registry.host).mkdir(parents=True)
    shutil.copy(certs["127.0.0.1"][0], made.certs_dir / tls_registry.host / "ca.crt")
    assert made.pull(ref).id == sha256(IMAGE.config)
    assert made.push(ref) == IMAGE.digest


def test_certificate_for_another_address(
    tmp_path: Path, certs: dict[str, tuple[Path, Path]]
) -> None:
    with fake_registry(tls=certs["198.51.100.1"]) as registry:
        made = client(tmp_path, secure=True)
        (made.certs_dir / registry.host).mkdir(parents=True)
        shutil.copy(certs["198.51.100.1"][0], made.certs_dir / registry.host / "ca.crt")
        assert pull_error(made, f"{registry.host}/bb:t") == (
            f'Get "https://{registry.host}/v2/": '
            "x509: certificate is valid for 198.51.100.1, not 127.0.0.1"
        )


def test_insecure_tls_registry_skips_verification(
    tmp_path: Path, tls_registry: FakeRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    made = client(tmp_path, secure=False)  # 127.0.0.0/8: insecure by default
    ref = f"{tls_registry.host}/bb:t"
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert made.pull(ref).id == sha256(IMAGE.config)
    assert tls_registry.log[0] == ("GET", "/v2/")  # the server speaks TLS only
    assert not [r for r in caplog.records if "Attempting next endpoint" in r.getMessage()]


@pytest.mark.parametrize("action", ["pull", "push"])
def test_insecure_http_registry_after_https_attempt(
    tmp_path: Path, http_registry: FakeRegistry, caplog: pytest.LogCaptureFixture, action: str
) -> None:
    made = client(tmp_path, secure=False)
    ref = f"{http_registry.host}/bb:t"
    with caplog.at_level(logging.INFO, logger=LOGGER):
        made.pull(ref)
        if action == "push":
            caplog.clear()
            made.push(ref)
    attempts = [r.getMessage() for r in caplog.records if "Attempting next" in r.getMessage()]
    assert attempts == [
        f"Attempting next endpoint for {action} after error: "
        f'Get "https://{http_registry.host}/v2/": {HTTP_TO_HTTPS}'
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_connection_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    host = f"127.0.0.1:{free_port()}"
    refused = f"dial tcp {host}: connect: connection refused"
    assert (
        pull_error(client(tmp_path, True), f"{host}/bb:t") == f'Get "https://{host}/v2/": {refused}'
    )
    # Insecure: both endpoints fail; the error is the last one's (Docker's lastErr).
    with caplog.at_level(logging.INFO, logger=LOGGER):
        error = pull_error(client(tmp_path, False), f"{host}/bb:t")
    assert error == f'Get "http://{host}/v2/": {refused}'
    assert [r.getMessage() for r in caplog.records] == [
        f'Attempting next endpoint for pull after error: Get "{scheme}://{host}/v2/": {refused}'
        for scheme in ("https", "http")
    ]


def _garbage(conn: socket.socket) -> None:
    conn.recv(4096)
    conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")


def _hang_up(conn: socket.socket) -> None:
    conn.recv(4096)


@pytest.mark.parametrize(
    ("reply", "error"),
    [(_garbage, "tls: first record does not look like a TLS handshake"), (_hang_up, "EOF")],
)
def test_non_tls_peers(tmp_path: Path, reply: Any, error: str) -> None:
    with raw_server(reply) as host:
        assert (
            pull_error(client(tmp_path, True), f"{host}/bb:t")
            == f'Get "https://{host}/v2/": {error}'
        )


def _silent(conn: socket.socket) -> None:
    conn.recv(4096)
    time.sleep(1)


def test_tls_handshake_timeout(tmp_path: Path) -> None:
    made = client(tmp_path, secure=True)
    made.timeout = 0.3
    with raw_server(_silent) as host:
        error = pull_error(made, f"{host}/bb:t")
    assert error == f'Get "https://{host}/v2/": net/http: TLS handshake timeout'


@pytest.mark.parametrize(
    ("sans", "host", "problem"),
    [
        ([("IP Address", "198.51.100.1")], "198.51.100.1", None),
        ([("IP Address", "2001:DB8:0:0:0:0:0:1\n")], "2001:db8::1", None),
        ([("DNS", "reg.test")], "REG.test", None),
        ([("DNS", "*.lab.test")], "reg.lab.test", None),
        ([("DNS", "*.lab.test")], "a.reg.lab.test",
         "x509: certificate is valid for *.lab.test, not a.reg.lab.test"),
        ([("DNS", "reg.test")], "198.51.100.1",
         "x509: cannot validate certificate for 198.51.100.1 because it doesn't contain "
         "any IP SANs"),
        ([("IP Address", "198.51.100.2"), ("IP Address", "198.51.100.3")], "198.51.100.1",
         "x509: certificate is valid for 198.51.100.2, 198.51.100.3, not 198.51.100.1"),
        ([], "reg.test",
         "x509: certificate is not valid for any names, but wanted to match reg.test"),
    ],
)  # fmt: skip
def test_hostname_matching(sans: list[tuple[str, str]], host: str, problem: str | None) -> None:
    assert hostname_problem({"subjectAltName": tuple(sans)}, host) == problem


def test_certs_dir_client_pairs(tmp_path: Path, certs: dict[str, tuple[Path, Path]]) -> None:
    cert, key = certs["127.0.0.1"]
    directory = tmp_path / "127.0.0.1:5000"
    directory.mkdir()
    shutil.copy(cert, directory / "client.cert")
    with pytest.raises(ConfigError) as caught:
        tls_context(directory, verify=True)
    assert str(caught.value) == (
        "missing key client.key for client certificate client.cert. "
        f"CA certificates must use the extension .crt: {directory}"
    )
    (directory / "client.cert").rename(directory / "other.key")
    with pytest.raises(
        ConfigError, match=r"missing client certificate other\.cert for key other\.key"
    ):
        tls_context(directory, verify=True)
    shutil.copy(key, directory / "other.key")
    shutil.copy(cert, directory / "other.cert")
    (directory / "ca.crt").write_text("not a certificate\n")  # skipped, as Go skips it
    assert tls_context(directory, verify=True).verify_mode.name == "CERT_REQUIRED"
