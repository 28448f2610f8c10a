"""Human sizes and Docker's names for them, shared by refd and refctl.

`ram_in_bytes` is go-units' RAMInBytes (binary multipliers: 1k = 1024), what the docker CLI
uses for -m, --memory-swap and --shm-size; `human_size` prints like go-units' HumanSize
(decimal, 4 significant digits), `bytes_size` like BytesSize (binary units: "64MiB").
"""

from __future__ import annotations

from reference.errors import ConfigError

_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DECIMAL = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


def _split(text: str) -> tuple[str, str] | None:
    """(number, unit letter) as go-units' pattern ^(\\d+(\\.\\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$
    reads `text`, or None where it does not match. By hand, not with `re`: refctl imports this
    on every run and create, and `re` alone costs it ~10 ms."""
    rest = text[:-1] if text.endswith("\n") else text  # `$` also matches before a final \n
    if rest[-1:] in ("b", "B"):
        rest = rest[:-1]
    if rest[-1:] in ("i", "I"):
        rest = rest[:-1]
    unit = ""
    if rest[-1:] and rest[-1] in "kKmMgGtTpP":
        rest, unit = rest[:-1], rest[-1]
    if rest[-1:] == " ":
        rest = rest[:-1]
    parts = rest.split(".")
    if not all(part and part.isdecimal() for part in parts):
        return None
    return rest, unit


def _parse(text: str, table: dict[str, int]) -> int:
    split = _split(text)
    if split is None:
        raise ConfigError(f"invalid size: '{text}'")
    try:
        number = float(split[0])
    except ValueError:  # "1.2.3" passes the pattern, as in go-units, but is no number
        raise ConfigError(f"invalid size: '{text}'") from None
    unit = split[1].lower()
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
