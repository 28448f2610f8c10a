"""Human sizes and Docker's names for them, shared by refd and refctl.

`ram_in_bytes` is go-units' RAMInBytes (binary multipliers: 1k = 1024), what the docker CLI
uses for -m, --memory-swap and --shm-size; `human_size` prints like go-units' HumanSize
(decimal, 4 significant digits), `bytes_size` like BytesSize (binary units: "64MiB").
"""

from __future__ import annotations

import re

from reference.errors import ConfigError

_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DECIMAL = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


def _parse(text: str, table: dict[str, int]) -> int:
    match = _SIZE.match(text)
    if match is None:
        raise ConfigError(f"invalid size: '{text}'")
    try:
        number = float(match[1])
    except ValueError:  # "1.2.3" passes the pattern, as in go-units, but is no number
        raise ConfigError(f"invalid size: '{text}'") from None
    unit = (match[2] or "").lower()
    return int(number * table[unit]) if unit else int(number)


def ram_in_bytes(text: str) -> int:
    """'64m' → 67108864; ConfigError "invalid size: '12x'" like the docker CLI."""
    return _parse(text, _BINARY)


def from_human_size(text: str) -> int:
    """'64MB' → 64000000 (decimal multipliers)."""
    return _parse(text, _DECIMAL)


def memory_flag(text: str, *, allow_unlimited: bool = False) -> int:
    """A -m / --memory-swap value: a size, or -1 (unlimited) where the flag allows it."""
    if allow_unlimited and text.strip() == "-1":
        return -1
    return ram_in_bytes(text)


def _format(size: float, base: float, units: tuple[str, ...]) -> str:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return f"{size:.4g}{units[i]}"


def human_size(size: float) -> str:
    """go-units HumanSize: 1000-based, e.g. '7.34MB'."""
    return _format(size, 1000.0, ("B", "kB", "MB", "GB", "TB", "PB"))


def bytes_size(size: float) -> str:
    """go-units BytesSize: 1024-based, e.g. '64MiB'."""
    return _format(size, 1024.0, ("B", "KiB", "MiB", "GiB", "TiB", "PiB"))
