"""The subset of Go's text/template that --format needs: literal text and actions holding a
pipeline of one function call or field chain, e.g.

    {{.State.Pid}}  {{json .State}}  {{.Id}}  {{index .Config.Labels "k"}}
    {{.Names}}\t{{.Status}}  {{upper .Name}}  {{join .Args ","}}  {{.Server.Version}}

Values print as Go prints them: true/false, integers, [a b] for lists, map[k:v] for maps,
"<no value>" for a missing map key. `table` at the start asks for a header row (output.py).
Anything else ({{range}}, {{if}}, variables) is a TemplateError naming the action.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any


class TemplateError(Exception):
    pass


_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)


def go_string(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + " ".join(go_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_string(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


def _field(value: Any, chain: str) -> Any:
    for part in [p for p in chain.split(".") if p]:
        if isinstance(value, Mapping):
            if part in value:
                value = value[part]
                continue
            return _Missing()
        raise TemplateError(f"can't evaluate field {part} in type {type(value).__name__}")
    return value


class _Missing:
    def __str__(self) -> str:
        return "<no value>"


def _json(value: Any) -> str:
    if isinstance(value, _Missing):
        return "null"
    return json.dumps(value, separators=(",", ":"))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "upper": lambda v: go_string(v).upper(),
    "lower": lambda v: go_string(v).lower(),
    "title": lambda v: go_string(v).title(),
    "len": lambda v: len(v),
    "join": lambda v, sep: sep.join(go_string(x) for x in v),
    "index": lambda v, *keys: _index(v, keys),
    "printf": lambda fmt, *args: _printf(fmt, args),
    "println": lambda *args: " ".join(go_string(a) for a in args) + "\n",
    "pad": lambda v, left, right: " " * int(left) + go_string(v) + " " * int(right),
}


def _index(value: Any, keys: tuple[Any, ...]) -> Any:
    for key in keys:
        value = value[key] if isinstance(value, (dict, list)) else None
    return value


def _printf(fmt: str, args: tuple[Any, ...]) -> str:
    return re.sub(r"%[vsdq]", "{}", fmt).format(*(go_string(a) for a in args))


def _argument(token: str, data: Any) -> Any:
    if token.startswith("."):
        return _field(data, token)
    if token.startswith('"') or token.startswith("`"):
        return token[1:-1]
    if re.fullmatch(r"-?\d+", token):
        return int(token)
    raise TemplateError(f"function {token!r} not defined")


def evaluate(action: str, data: Any) -> str:
    if action.startswith(("range", "if", "end", "else", "with", "$", "define", "template")):
        raise TemplateError(f"unsupported template action: {{{{{action}}}}}")
    try:
        tokens = shlex.split(action, posix=False)
    except ValueError as e:
        raise TemplateError(f"bad action {{{{{action}}}}}: {e}") from None
    if not tokens:
        return ""
    head, rest = tokens[0], tokens[1:]
    if head in FUNCTIONS:
        return go_string(FUNCTIONS[head](*(_argument(t, data) for t in rest)))
    if rest:
        raise TemplateError(f"can't give argument to non-function {head}")
    return go_string(_argument(head, data))


def render(template: str, data: Any) -> str:
    template = template.replace("\\t", "\t").replace("\\n", "\n")
    out, last = [], 0
    for match in _ACTION.finditer(template):
        out.append(template[last : match.start()])
        out.append(evaluate(match[1], data))
        last = match.end()
    out.append(template[last:])
    return "".join(out)


def is_table(template: str) -> bool:
    return template.startswith("table")


def strip_table(template: str) -> str:
    return template[len("table") :].lstrip() if is_table(template) else template
