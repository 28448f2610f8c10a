"""docker's flag syntax (spf13/pflag as the docker CLI configures it): `--name value`,
`--name=value`, `-n value`, `-nvalue`, grouped short booleans (`-dit`), `--bool=false`,
repeatable flags, and "interspersed=false" for verbs that take a command (run, exec): parsing
stops at the first positional, everything after it is the command.

Errors read like the docker CLI's and exit with its status for usage errors (125):
    unknown flag: --bogus
    See 'refctl run --help'.
"""

from __future__ import annotations

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; typing costs ms to import
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any


class UsageError(Exception):
    def __init__(self, verb: str, message: str) -> None:
        super().__init__(f"{message}\nSee 'refctl {verb} --help'.")


class Flag:
    __slots__ = ("default", "key", "kind", "names")

    def __init__(self, names: tuple[str, ...], key: str, kind: str, default: Any) -> None:
        self.names = names  # "--memory", "-m"
        self.key = key
        self.kind = kind  # value | bool | list
        self.default = default


def flag(names: str, kind: str = "value", default: Any = None, key: str | None = None) -> Flag:
    split = tuple(n.strip() for n in names.split(","))
    return Flag(split, key or split[0].lstrip("-").replace("-", "_"), kind, default)


def parse(
    verb: str, argv: Sequence[str], spec: Sequence[Flag], *, interspersed: bool = True
) -> tuple[dict[str, Any], list[str]]:
    by_name = {name: f for f in spec for name in f.names}
    values: dict[str, Any] = {f.key: ([] if f.kind == "list" else f.default) for f in spec}
    positional: list[str] = []
    i = 0

    def take(f: Flag, inline: str | None, shown: str) -> None:
        nonlocal i
        if f.kind == "bool":
            if inline is None or inline.lower() in ("true", "1", "t"):
                values[f.key] = True
            elif inline.lower() in ("false", "0", "f"):
                values[f.key] = False
            else:
                raise UsageError(
                    verb,
                    f'invalid argument "{inline}" for "{shown}" flag: '
                    f'strconv.ParseBool: parsing "{inline}": invalid syntax',
                )
            return
        if inline is None:
            if i >= len(argv):
                raise UsageError(verb, f"flag needs an argument: {shown}")
            inline = argv[i]
            i += 1
        if f.kind == "list":
            values[f.key].append(inline)
        else:
            values[f.key] = inline

    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positional += argv[i:]
            break
        if arg.startswith("--") and len(arg) > 2:
            name, eq, inline = arg.partition("=")
            f = by_name.get(name)
            if f is None:
                raise UsageError(verb, f"unknown flag: {name}")
            take(f, inline if eq else None, name)
            continue
        if arg.startswith("-") and len(arg) > 1:
            j = 1
            while j < len(arg):
                name = "-" + arg[j]
                f = by_name.get(name)
                if f is None:
                    raise UsageError(verb, f"unknown shorthand flag: '{arg[j]}' in {arg}")
                rest = arg[j + 1 :]
                if f.kind == "bool":
                    take(f, rest[1:] if rest.startswith("=") else None, name)
                    if rest.startswith("="):
                        break
                    j += 1
                    continue
                take(f, (rest[1:] if rest.startswith("=") else rest) or None, name)
                break
            continue
        positional.append(arg)
        if not interspersed:
            positional += argv[i:]
            break
    return values, positional


def parse_filters(verb: str, items: Sequence[str]) -> dict[str, dict[str, bool]]:
    """--filter name=value flags in the Engine API's `filters` shape; Docker's error otherwise."""
    filters: dict[str, dict[str, bool]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(verb, f'bad format of filter (expected name=value): "{item}"')
        filters.setdefault(key, {})[value] = True
    return filters
