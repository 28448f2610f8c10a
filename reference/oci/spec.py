"""Typed view of an OCI runtime-spec 1.x `config.json`, and its strict parser.

Only the fields a Linux runtime acts on are modelled; anything else is ignored so that a newer
config still loads (the spec promises compatibility within a major version). Parsing checks JSON
types only; meaning (known namespace names, absolute paths, ...) is `validate.py`'s job, the way
runc keeps `specconv` apart from `configs/validate`.

The parser is driven by the dataclass annotations, so a field is declared once: its Python name
in snake_case maps to the camelCase JSON key (or `metadata["json"]` when that does not fit), a
field without a default is REQUIRED, and `Annotated[int, _Range]` bounds integer widths.
"""

from __future__ import annotations

import copy
import functools
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from reference.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


@dataclass(frozen=True)
class _Range:
    lo: int
    hi: int


# The spec's integer widths: Go rejects out-of-range numbers, so do we.
U32 = Annotated[int, _Range(0, 2**32 - 1)]
U64 = Annotated[int, _Range(0, 2**64 - 1)]
I64 = Annotated[int, _Range(-(2**63), 2**63 - 1)]


def _json(name: str) -> Any:
    """Field metadata for a JSON key that the snake_case → camelCase rule cannot produce."""
    return {"json": name}


@dataclass(frozen=True)
class Root:
    path: str
    readonly: bool = False


@dataclass(frozen=True)
class ConsoleSize:
    height: U32
    width: U32


@dataclass(frozen=True)
class User:
    uid: U32
    gid: U32
    umask: U32 | None = None
    additional_gids: tuple[U32, ...] = ()


@dataclass(frozen=True)
class Capabilities:
    bounding: tuple[str, ...] = ()
    effective: tuple[str, ...] = ()
    inheritable: tuple[str, ...] = ()
    permitted: tuple[str, ...] = ()
    ambient: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rlimit:
    type: str
    hard: U64
    soft: U64


@dataclass(frozen=True)
class Process:
    user: User
    cwd: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    terminal: bool = False
    console_size: ConsoleSize | None = None
    capabilities: Capabilities | None = None
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privileges: bool = False
    apparmor_profile: str = ""
    # None and 0 differ: None leaves the inherited score alone.
    oom_score_adj: int | None = None
    selinux_label: str = ""


@dataclass(frozen=True)
class Mount:
    destination: str
    type: str = ""
    source: str = ""
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hook:
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None


@dataclass(frozen=True)
class Hooks:
    prestart: tuple[Hook, ...] = ()
    create_runtime: tuple[Hook, ...] = ()
    create_container: tuple[Hook, ...] = ()
    start_container: tuple[Hook, ...] = ()
    poststart: tuple[Hook, ...] = ()
    poststop: tuple[Hook, ...] = ()


@dataclass(frozen=True)
class Namespace:
    type: str
    path: str = ""


@dataclass(frozen=True)
class IDMapping:
    container_id: U32 = field(metadata=_json("containerID"))
    host_id: U32 = field(metadata=_json("hostID"))
    size: U32


@dataclass(frozen=True)
class Device:
    type: str
    path: str
    # REQUIRED unless type is "p"; that cross-field rule lives in validate.py.
    major: I64 | None = None
    minor: I64 | None = None
    file_mode: U32 | None = None
    uid: U32 | None = None
    gid: U32 | None = None


@dataclass(frozen=True)
class SeccompArg:
    index: U32
    value: U64
    op: str
    value_two: U64 = 0


@dataclass(frozen=True)
class SeccompSyscall:
    names: tuple[str, ...]
    action: str
    errno_ret: U32 | None = None
    args: tuple[SeccompArg, ...] = ()


@dataclass(frozen=True)
class Seccomp:
    default_action: str
    default_errno_ret: U32 | None = None
    architectures: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    syscalls: tuple[SeccompSyscall, ...] = ()


@dataclass(frozen=True)
class Personality:
    domain: str
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Linux:
    namespaces: tuple[Namespace, ...] = ()
    uid_mappings: tuple[IDMapping, ...] = ()
    gid_mappings: tuple[IDMapping, ...] = ()
    sysctl: Mapping[str, str] = field(default_factory=dict)
    # Kept raw: the cgroups package owns its schema and its validation.
    resources: Mapping[str, object] | None = None
    cgroups_path: str = ""
    rootfs_propagation: str = ""
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    devices: tuple[Device, ...] = ()
    seccomp: Seccomp | None = None
    mount_label: str = ""
    personality: Personality | None = None

    def namespace(self, ns_type: str) -> Namespace | None:
        """The entry for `ns_type`, or None when the container inherits the runtime's one."""
        return next((ns for ns in self.namespaces if ns.type == ns_type), None)


@dataclass(frozen=True)
class Spec:
    oci_version: str
    root: Root | None = None
    process: Process | None = None
    hostname: str = ""
    domainname: str = ""
    mounts: tuple[Mount, ...] = ()
    hooks: Hooks | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    # An absent `linux` object means "no namespaces, nothing special", the same as `{}`.
    linux: Linux = field(default_factory=Linux)


T = TypeVar("T", bound="DataclassInstance")


def load_spec(path: Path, *, create: bool = True) -> Spec:
    """Read and parse `path` (a bundle's config.json)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError("spec file not found", obj=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read spec file ({e})", obj=str(path)) from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        # file:line:col, the form editors and terminals turn into a link.
        raise ConfigError(f"malformed JSON: {e.msg}", obj=f"{path}:{e.lineno}:{e.colno}") from e
    return parse_spec(data, create=create)


def parse_spec(data: object, *, create: bool = True) -> Spec:
    """Check `data` (decoded JSON) field by field and build a `Spec`.

    `create` demands what `create` needs (root and process); without it a partial config, e.g.
    one being edited or used for `state`/`delete` of an existing container, is accepted.
    """
    spec = _decode_obj(Spec, data, "")
    if create:
        if spec.root is None:
            raise ConfigError("missing required field", obj="root")
        if spec.process is None:
            raise ConfigError("missing required field", obj="process")
    return spec


def parse_process(data: object, path: str = "process") -> Process:
    """A `process` object on its own (what `exec --process FILE` reads); errors name `path`."""
    return _decode_obj(Process, data, path)


def spec_to_dict(obj: object) -> dict[str, object]:
    """The JSON form of a spec dataclass; optional fields equal to their default are omitted."""
    if not is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"not a spec dataclass: {obj!r}")
    out: dict[str, object] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if _has_default(f) and value == _default(f):
            continue  # Go's `omitempty`, which is how runc writes its configs
        out[_json_key(f)] = _encode(value)
    return out


def _encode(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        return spec_to_dict(value)
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, Mapping):
        return dict(value)
    return value


def _has_default(f: Field[Any]) -> bool:
    return f.default is not MISSING or f.default_factory is not MISSING


def _default(f: Field[Any]) -> object:
    if f.default_factory is not MISSING:
        return f.default_factory()
    return f.default


def _json_key(f: Field[Any]) -> str:
    if "json" in f.metadata:
        return str(f.metadata["json"])
    head, *rest = str(f.name).split("_")
    return head + "".join(w.capitalize() for w in rest)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _sub(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: object) -> str:
    """JSON's name for a decoded value's type, for messages a config author understands."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def _decode_obj(cls: type[T], value: object, path: str) -> T:
    if not isinstance(value, dict):
        raise ConfigError(f"expected object, got {_kind(value)}", obj=path or "(top level)")
    hints = _hints(cls)
    kwargs: dict[str, object] = {}
    for f in fields(cls):
        key = _json_key(f)
        fpath = _sub(path, key)
        raw = value.get(key)
        # Go decodes `null` as "not set", and runc-written configs contain e.g.
        # `"architectures": null`; treat it as absent rather than as a type error.
        if raw is None:
            if not _has_default(f):
                raise ConfigError("missing required field", obj=fpath)
            continue
        kwargs[f.name] = _decode(hints[f.name], raw, fpath)
    return cls(**kwargs)


def _decode(tp: Any, value: object, path: str) -> object:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *meta = typing.get_args(tp)
        decoded = _decode(base, value, path)
        for m in meta:
            if isinstance(m, _Range) and isinstance(decoded, int) and not m.lo <= decoded <= m.hi:
                raise ConfigError(f"{decoded} out of range [{m.lo}, {m.hi}]", obj=path)
        return decoded
    if origin in (typing.Union, types.UnionType):
        # Only `X | None` is used; None was already filtered out by the caller.
        (inner,) = (a for a in typing.get_args(tp) if a is not type(None))
        return _decode(inner, value, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"expected array, got {_kind(value)}", obj=path)
        item_tp = typing.get_args(tp)[0]
        return tuple(_decode(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, dict):
            raise ConfigError(f"expected object, got {_kind(value)}", obj=path)
        val_tp = typing.get_args(tp)[1]
        if val_tp is object:
            # Raw section handed on to its own parser; copied so the frozen Spec shares
            # nothing mutable with the caller's decoded JSON.
            return copy.deepcopy(value)
        return {k: _decode(val_tp, v, f"{path}[{json.dumps(k)}]") for k, v in value.items()}
    if is_dataclass(tp) and isinstance(tp, type):
        return _decode_obj(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"expected boolean, got {_kind(value)}", obj=path)
        return value
    if tp is int:
        # bool is an int subclass in Python but not a number in JSON.
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"expected integer, got {_kind(value)}", obj=path)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"expected string, got {_kind(value)}", obj=path)
        return value
    raise TypeError(f"spec.py cannot decode type {tp!r}")  # a bug in the declarations above
