"""JSON for the refrun CLI without `import json`.

`import json` pulls in `re` and `enum` (~15 ms here), more than the rest of a `refrun state`.
The C accelerator `_json` that the json package itself uses does the scanning and string
escaping; only the thin glue and an indenting printer (the C encoder cannot indent on 3.11)
live here. Decoding errors come out as ValueError with the position, as json's do.
"""

from __future__ import annotations

import _json


class _ScanContext:
    """The attributes `_json.make_scanner` reads from a json.JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # NaN / Infinity, as json.loads accepts them
    memo: dict[str, str] = {}  # noqa: RUF012  (read by _json like json.JSONDecoder's)


_scan = _json.make_scanner(_ScanContext())  # type: ignore[arg-type]  # duck-typed decoder
_WS = " \t\n\r"


def loads(text: str) -> object:
    """Decode one JSON document; ValueError names the offset of the first problem."""
    start = len(text) - len(text.lstrip(_WS))
    try:
        value, end = _scan(text, start)
    except StopIteration as e:
        raise ValueError(f"expecting value at offset {e.value}") from None
    except SystemError:
        # _json raises its syntax errors as json.decoder.JSONDecodeError, which it looks up in
        # sys.modules only: unless json was imported it raises nothing, and the call fails
        # with SystemError. Only now, on malformed input, import it and decode again.
        import json.decoder  # noqa: F401

        value, end = _scan(text, start)  # raises JSONDecodeError, a ValueError
    if text[end:].strip(_WS):
        raise ValueError(f"extra data at offset {end}")
    return value


# No `default` hook (None): only JSON types are ever encoded here.
_compact = _json.make_encoder(
    None,
    None,  # type: ignore[arg-type]
    _json.encode_basestring_ascii,
    None,
    ":",
    ",",
    False,
    False,
    True,
)


def dumps(value: object, indent: int | None = None) -> str:
    """Encode `value` (dicts, lists, str, int, float, bool, None). `indent` pretty-prints with
    that many spaces per level, as json.dumps(indent=...) does."""
    if indent is None:
        return "".join(_compact(value, 0))
    out: list[str] = []
    _pretty(value, out, " " * indent, "\n")
    return "".join(out)


def _pretty(value: object, out: list[str], step: str, nl: str) -> None:
    inner = nl + step
    if isinstance(value, dict) and value:
        out.append("{")
        for i, (k, v) in enumerate(value.items()):
            out.append(("," if i else "") + inner + _json.encode_basestring_ascii(str(k)) + ": ")
            _pretty(v, out, step, inner)
        out.append(nl + "}")
    elif isinstance(value, list | tuple) and value:
        out.append("[")
        for i, v in enumerate(value):
            out.append(("," if i else "") + inner)
            _pretty(v, out, step, inner)
        out.append(nl + "]")
    else:
        out.append("".join(_compact(value, 0)))
