"""A small command-line parser for refrun, in the style of runc's (urfave/cli, Go's flag).

argparse costs ~10 ms to import and more to build parsers for 14 verbs; refrun runs many times
per container, so each verb declares its flags as a dict and this module does the rest.
Accepted spellings, as Go's flag package and runc accept them: `--name value`, `--name=value`,
`-name value` (one dash for a long name), `-n value`, `--flag`, `--flag=true|false`, and `--`
to end the flags. Flags may follow positional arguments unless the verb stops at the first one
(exec: everything after the container id belongs to the command).
"""

from __future__ import annotations

from reference.errors import ConfigError

BOOL, VALUE, MULTI = "bool", "value", "multi"

# spelling (e.g. "--bundle" or "-b") -> (destination key, kind)
FlagTable = dict[str, tuple[str, str]]


def flags(*entries: tuple[str, str, str]) -> FlagTable:
    """Build a table from `("--bundle|-b", "bundle", VALUE)` entries."""
    table: FlagTable = {}
    for spellings, dest, kind in entries:
        for spelling in spellings.split("|"):
            table[spelling] = (dest, kind)
    return table


def _lookup(table: FlagTable, name: str) -> tuple[str, str] | None:
    found = table.get(name)
    if found is None and not name.startswith("--") and len(name) > 2:
        found = table.get("-" + name)  # Go style: -bundle means --bundle
    return found


def _bool(value: str, name: str) -> bool:
    if value in ("true", "1", "t", "TRUE", "True"):
        return True
    if value in ("false", "0", "f", "FALSE", "False"):
        return False
    raise ConfigError(f"invalid boolean value {value!r}", obj=name)


def parse(
    argv: list[str], table: FlagTable, *, stop_at_positional: bool = False
) -> tuple[dict[str, object], list[str]]:
    """Split `argv` into {dest: value} and positional arguments. Unknown flags are ConfigErrors
    naming the flag; MULTI flags collect a list; absent flags are absent from the dict."""
    opts: dict[str, object] = {}
    positional: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positional.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            if stop_at_positional:
                positional.extend(argv[i:])
                break
            continue
        name, eq, value = arg.partition("=")
        found = _lookup(table, name)
        if found is None:
            raise ConfigError("flag provided but not defined", obj=name)
        dest, kind = found
        if kind == BOOL:
            opts[dest] = _bool(value, name) if eq else True
            continue
        if not eq:
            if i >= len(argv):
                raise ConfigError("flag needs an argument", obj=name)
            value = argv[i]
            i += 1
        if kind == MULTI:
            existing = opts.setdefault(dest, [])
            assert isinstance(existing, list)
            existing.append(value)
        else:
            opts[dest] = value
    return opts, positional


def one_id(positional: list[str], verb: str) -> str:
    """The single container id a verb takes; runc's wording when it is missing or doubled."""
    if len(positional) != 1:
        raise ConfigError(
            f'"{verb}" requires exactly 1 argument (the container id), got {len(positional)}',
            obj=verb,
        )
    return positional[0]


def string(opts: dict[str, object], key: str, default: str = "") -> str:
    value = opts.get(key, default)
    assert isinstance(value, str)
    return value


def strings(opts: dict[str, object], key: str) -> list[str]:
    value = opts.get(key, [])
    assert isinstance(value, list)
    return [str(v) for v in value]


def integer(opts: dict[str, object], key: str, flag: str) -> int | None:
    """An optional integer flag; a malformed value is a ConfigError naming the flag."""
    value = opts.get(key)
    if value is None:
        return None
    try:
        return int(str(value), 10)
    except ValueError:
        raise ConfigError(f"invalid integer {value!r}", obj=flag) from None
