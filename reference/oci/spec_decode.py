"""The decoder behind `reference.oci.spec`: JSON values -> the spec's record classes.

It reads each class's field annotations as the strings `from __future__ import annotations`
leaves (`"U32 | None"`, `"tuple[Mount, ...]"`, `"Mapping[str, str]"`, a class name) and builds
one decoder per field on first use, so neither `typing` nor `dataclasses` is imported: this runs
on every `refrun create`. Only the annotation forms spec.py uses are understood; anything else
is a TypeError, a bug in the declarations. Errors in the data are ConfigErrors naming the JSON
path of the field, e.g. `process.user.uid` or `linux.sysctl["net.ipv4.ip_forward"]`.
"""

from __future__ import annotations

import sys

from reference.errors import ConfigError
from reference.oci import fastjson
from reference.records import MISSING, fields

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see reference/records.py
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import TypeAlias, TypeVar

    T = TypeVar("T")
    _Decoder: TypeAlias = Callable[[object, str], object]

# Annotation name -> (lo, hi) for spec.py's integer aliases (Go rejects out-of-range numbers).
RANGES: dict[str, tuple[int, int]] = {
    "U32": (0, 2**32 - 1),
    "U64": (0, 2**64 - 1),
    "I64": (-(2**63), 2**63 - 1),
}


def json_key(name: str, metadata: Mapping[str, object]) -> str:
    if "json" in metadata:
        return str(metadata["json"])
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


def _sub(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def kind(value: object) -> str:
    """JSON's name for a decoded value's type, for messages a config author understands."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


# class -> ((attribute, JSON key, required, decoder), ...), built on first use from the
# class's annotations (strings under `from __future__ import annotations`).
_PLANS: dict[type, tuple[tuple[str, str, bool, _Decoder], ...]] = {}


def _plan(cls: type) -> tuple[tuple[str, str, bool, _Decoder], ...]:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = tuple(
            (
                f.name,
                json_key(f.name, f.metadata),
                f.default is MISSING and f.default_factory is MISSING,
                _decoder(str(f.type), cls.__module__),
            )
            for f in fields(cls)
        )
        _PLANS[cls] = plan
    return plan


def decode_obj(cls: type[T], value: object, path: str) -> T:
    if not isinstance(value, dict):
        raise ConfigError(f"expected object, got {kind(value)}", obj=path or "(top level)")
    kwargs: dict[str, object] = {}
    for name, key, required, decode in _plan(cls):
        raw = value.get(key)
        # Go decodes `null` as "not set", and runc-written configs contain e.g.
        # `"architectures": null`; treat it as absent rather than as a type error.
        if raw is None:
            if required:
                raise ConfigError("missing required field", obj=_sub(path, key))
            continue
        kwargs[name] = decode(raw, _sub(path, key))
    return cls(**kwargs)


def _decoder(tp: str, module: str) -> _Decoder:
    """A decoder for the annotation `tp` of a class in `module`, where class names are
    looked up; only the forms spec.py uses are known."""
    tp = tp.strip()
    if tp.endswith("| None"):
        # `X | None`: None was already filtered out by the caller.
        return _decoder(tp[: -len("| None")], module)
    if tp.startswith("tuple[") and tp.endswith(", ...]"):
        return _tuple_of(_decoder(tp[len("tuple[") : -len(", ...]")], module))
    if tp.startswith("Mapping[str, ") and tp.endswith("]"):
        value_tp = tp[len("Mapping[str, ") : -1]
        return _raw_object if value_tp == "object" else _mapping_of(_decoder(value_tp, module))
    if tp in RANGES:
        return _ranged(*RANGES[tp])
    simple = _SIMPLE.get(tp)
    if simple is not None:
        return simple
    cls = vars(sys.modules[module]).get(tp)
    if isinstance(cls, type) and hasattr(cls, "__record_fields__"):
        return lambda value, path: decode_obj(cls, value, path)
    raise TypeError(f"spec.py cannot decode type {tp!r}")  # a bug in its declarations


def _tuple_of(item: _Decoder) -> _Decoder:
    def decode(value: object, path: str) -> object:
        if not isinstance(value, list):
            raise ConfigError(f"expected array, got {kind(value)}", obj=path)
        return tuple(item(v, f"{path}[{i}]") for i, v in enumerate(value))

    return decode


def _mapping_of(item: _Decoder) -> _Decoder:
    def decode(value: object, path: str) -> object:
        if not isinstance(value, dict):
            raise ConfigError(f"expected object, got {kind(value)}", obj=path)
        return {k: item(v, f"{path}[{fastjson.dumps(k)}]") for k, v in value.items()}

    return decode


def _raw_object(value: object, path: str) -> object:
    """A raw section handed on to its own parser, copied so that the frozen Spec shares
    nothing mutable with the caller's decoded JSON."""
    if not isinstance(value, dict):
        raise ConfigError(f"expected object, got {kind(value)}", obj=path)
    return _copy_json(value)


def _copy_json(value: object) -> object:
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value  # str, int, float, bool, None: immutable


def _ranged(lo: int, hi: int) -> _Decoder:
    def decode(value: object, path: str) -> object:
        decoded = _int(value, path)
        if not lo <= decoded <= hi:
            raise ConfigError(f"{decoded} out of range [{lo}, {hi}]", obj=path)
        return decoded

    return decode


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"expected boolean, got {kind(value)}", obj=path)
    return value


def _int(value: object, path: str) -> int:
    # bool is an int subclass in Python but not a number in JSON.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"expected integer, got {kind(value)}", obj=path)
    return value


def _str(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"expected string, got {kind(value)}", obj=path)
    return value


_SIMPLE: dict[str, _Decoder] = {"bool": _bool, "int": _int, "str": _str}
