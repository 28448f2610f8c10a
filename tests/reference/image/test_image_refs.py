"""Image references: Docker's grammar, familiar names, id prefixes."""

from __future__ import annotations

import pytest

from reference.errors import ConfigError
from reference.image import refs


@pytest.mark.parametrize(
    ("given", "normal", "domain", "path"),
    [
        ("bb", "bb:latest", "docker.io", "library/bb"),
        ("bb:1.0", "bb:1.0", "docker.io", "library/bb"),
        ("docker.io/library/bb", "bb:latest", "docker.io", "library/bb"),
        ("docker.io/bb:x", "bb:x", "docker.io", "library/bb"),
        ("library/bb", "bb:latest", "docker.io", "library/bb"),
        ("me/app", "me/app:latest", "docker.io", "me/app"),
        ("127.0.0.1:5000/bb:t", "127.0.0.1:5000/bb:t", "127.0.0.1:5000", "bb"),
        ("localhost/a/b", "localhost/a/b:latest", "localhost", "a/b"),
        ("Registry.Example:5443/x_y.z-w", "Registry.Example:5443/x_y.z-w:latest",
         "Registry.Example:5443", "x_y.z-w"),
    ],
)  # fmt: skip
def test_parse_and_normalize(given: str, normal: str, domain: str, path: str) -> None:
    ref = refs.parse(given)
    assert str(ref) == refs.normalize(given) == normal
    assert (ref.domain, ref.path) == (domain, path)


def test_digest_references() -> None:
    digest = "sha256:" + "a" * 64
    ref = refs.parse(f"bb@{digest}")
    assert (ref.name, ref.tag, ref.digest) == ("bb", None, digest)
    assert refs.parse("bb", default_tag=False).tag is None


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("Bb", "must be lowercase"),
        ("UP/bb", "must be lowercase"),
        ("a b", "invalid reference format"),
        ("bb:", "invalid reference format"),
        ("bb::x", "invalid reference format"),
        ("-bb", "invalid reference format"),
        ("bb@sha256:short", "invalid reference format"),
        ("a/" * 130 + "b", "more than 255"),
    ],
)
def test_invalid_references_name_themselves(bad: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as info:
        refs.parse(bad)
    assert info.value.obj == bad


def test_ids() -> None:
    assert refs.is_id_prefix("abc123")
    assert refs.is_id_prefix("sha256:abc")
    assert not refs.is_id_prefix("bb:latest")
    assert refs.short_id("sha256:" + "0123456789ab" * 5 + "cdef") == "0123456789ab"
