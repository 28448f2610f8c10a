"""Unit tests of reference parsing for registries and of insecure-registry matching (no network:
name resolution is a fake)."""

from __future__ import annotations

import pytest

from reference.errors import ConfigError, UnsupportedError
from reference.image.registry_ref import (
    InsecureRegistries,
    parse_reference,
    split_domain,
    target,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("ref", "domain", "path", "tag", "digest"),
    [
        ("127.0.0.1:5000/bb:t", "127.0.0.1:5000", "bb", "t", None),
        ("127.0.0.1:5000/bb", "127.0.0.1:5000", "bb", "latest", None),
        ("localhost/team/app:1.0", "localhost", "team/app", "1.0", None),
        ("localhost:5000/bb", "localhost:5000", "bb", "latest", None),
        ("Registry.Example:443/a/b/c", "Registry.Example:443", "a/b/c", "latest", None),
        (f"198.51.100.1:5000/bb@{DIGEST}", "198.51.100.1:5000", "bb", None, DIGEST),
        (f"198.51.100.1:5000/bb:t@{DIGEST}", "198.51.100.1:5000", "bb", "t", DIGEST),
    ],
)
def test_parse_reference(
    ref: str, domain: str, path: str, tag: str | None, digest: str | None
) -> None:
    parsed = parse_reference(ref)
    assert (parsed.domain, parsed.path, parsed.tag, parsed.digest) == (domain, path, tag, digest)
    assert parsed.name == f"{domain}/{path}"
    # A digest wins over a tag, as in Docker.
    assert target(parsed) == (digest or tag)


@pytest.mark.parametrize(
    "ref",
    [
        "bb",
        "bb:latest",
        "library/bb",
        "team/app:1",
        "docker.io/library/bb",
        "index.docker.io/library/bb:1",
        "registry-1.docker.io/team/app",
        "Docker.IO/team/app",
    ],
)
def test_docker_hub_refused(ref: str) -> None:
    with pytest.raises(UnsupportedError) as caught:
        parse_reference(ref)
    message = str(caught.value)
    assert "Docker Hub" in message
    assert "never contacts public registries" in message
    assert caught.value.obj == ref


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("127.0.0.1:5000/BB", "invalid reference format: repository name must be lowercase"),
        ("127.0.0.1:5000/bb:", "invalid reference format"),
        ("127.0.0.1:5000/-bb", "invalid reference format"),
        ("127.0.0.1:5000/bb@sha256:abc", "invalid reference format"),
        (f"127.0.0.1:5000/bb@sha256:{'0' * 63}", "invalid checksum digest length"),
        (f"127.0.0.1:5000/bb@sha256:{'0' * 65}", "invalid checksum digest length"),
        (f"127.0.0.1:5000/bb@sha256:{'A' * 64}", "invalid checksum digest format"),
        (f"127.0.0.1:5000/bb@sha512:{'0' * 128}", "unsupported digest algorithm"),
        (
            "127.0.0.1:5000/" + "a" * 250,
            "invalid reference format: repository name must not be more than 255 characters",
        ),
    ],
)
def test_malformed_reference(ref: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_reference(ref)
    assert str(caught.value) == f"{message}: {ref}"


@pytest.mark.parametrize(
    ("domain", "split"),
    [
        ("127.0.0.1:5000", ("127.0.0.1", 5000)),
        ("localhost", ("localhost", None)),
        ("[::1]:5000", ("::1", 5000)),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),
    ],
)
def test_split_domain(domain: str, split: tuple[str, int | None]) -> None:
    assert split_domain(domain) == split


# -- insecure-registries -----------------------------------------------------------------

HOSTS = {
    "localhost": ["127.0.0.1", "::1"],
    "lab.test": ["198.51.100.7"],
    "v6only.test": ["::1"],
    "elsewhere.test": ["203.0.113.9"],
}


def fake_resolve(host: str) -> list[str]:
    """/etc/hosts for the tests; IP literals resolve to themselves, unknown names to nothing."""
    if host in HOSTS:
        return HOSTS[host]
    return [host] if host[:1].isdigit() or ":" in host else []


def insecure(*entries: str, domain: str) -> bool:
    return InsecureRegistries.parse(entries).is_insecure(domain, fake_resolve)


def test_loopback_is_insecure_by_default() -> None:
    for domain in ("127.0.0.1:5000", "127.8.9.10", "localhost:5000", "localhost", "v6only.test"):
        assert insecure(domain=domain), domain
    for domain in ("198.51.100.1:5000", "lab.test:5000", "unknown.test:5000"):
        assert not insecure(domain=domain), domain
    assert InsecureRegistries.parse([]).listed() == ["127.0.0.0/8", "::1/128"]


def test_host_port_entry_matches_exactly() -> None:
    # isSecureIndex looks the registry name up as written: the port is part of it.
    assert insecure("198.51.100.1:5000", domain="198.51.100.1:5000")
    assert not insecure("198.51.100.1:5000", domain="198.51.100.1:5443")
    assert not insecure("198.51.100.1", domain="198.51.100.1:5000")
    assert insecure("198.51.100.1", domain="198.51.100.1")
    assert insecure("lab.test:5000", domain="lab.test:5000")
    assert not insecure("lab.test:5000", domain="198.51.100.7:5000")


def test_cidr_entry_matches_resolved_addresses() -> None:
    assert insecure("198.51.100.0/24", domain="198.51.100.1:5000")
    assert insecure("198.51.100.0/24", domain="198.51.100.1:5443")
    assert insecure("198.51.100.0/24", domain="lab.test:5000")  # resolves into the network
    assert not insecure("198.51.100.0/24", domain="elsewhere.test:5000")
    assert not insecure("198.51.100.0/24", domain="unknown.test:5000")
    assert not insecure("198.51.100.0/25", domain="198.51.100.200:5000")
    # Go's ParseCIDR keeps only the network of an address with host bits.
    assert insecure("198.51.100.77/24", domain="198.51.100.1:5000")
    assert insecure("2001:db8::/32", domain="[2001:db8::5]:5000")


def test_entry_forms() -> None:
    parsed = InsecureRegistries.parse(
        ["http://198.51.100.1:5000", "HTTPS://lab.test", "198.51.100.0/24", "198.51.100.0/24"]
    )
    assert parsed.listed() == [
        "198.51.100.1:5000",
        "lab.test",
        "198.51.100.0/24",
        "127.0.0.0/8",
        "::1/128",
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("ftp://198.51.100.1", "insecure registry ftp://198.51.100.1 should not contain '://'"),
        ("tcp://lab.test:5000", "insecure registry tcp://lab.test:5000 should not contain '://'"),
        ("bad_host:5000", 'insecure registry bad_host:5000 is not valid: invalid host "bad_host"'),
        ("lab.test:99999", 'insecure registry lab.test:99999 is not valid: invalid port "99999"'),
        ("-lab.test", 'insecure registry -lab.test is not valid: invalid host "-lab.test"'),
    ],
)
def test_invalid_entries(entry: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        InsecureRegistries.parse([entry])
    assert str(caught.value) == f"{message}: insecure-registries"
