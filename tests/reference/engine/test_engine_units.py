"""Sizes as the docker CLI parses and prints them."""

from __future__ import annotations

import re

import pytest

from reference.engine.units import bytes_size, human_size, memory_flag, ram_in_bytes
from reference.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("64m", 64 << 20),
        ("64M", 64 << 20),
        ("1g", 1 << 30),
        ("512", 512),
        ("1.5k", 1536),
        ("2GiB", 2 << 30),
        ("10mb", 10 << 20),
        ("100 k", 100 << 10),
    ],
)
def test_ram_in_bytes(text: str, value: int) -> None:
    assert ram_in_bytes(text) == value


@pytest.mark.parametrize("text", ["12x", "", "-1", "m", "1.2.3.4q"])
def test_bad_sizes_read_like_the_docker_cli(text: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"invalid size: '{text}'")):
        ram_in_bytes(text)


def test_unlimited_only_where_allowed() -> None:
    assert memory_flag("-1", allow_unlimited=True) == -1
    with pytest.raises(ConfigError):
        memory_flag("-1")


def test_human_units() -> None:
    assert bytes_size(64 << 20) == "64MiB"
    assert bytes_size(324 * 1024) == "324KiB"
    assert human_size(2_908_000) == "2.908MB"
    assert human_size(0) == "0B"


def test_a_dotted_non_number_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"invalid size: '1\.2\.3m'"):
        ram_in_bytes("1.2.3m")
