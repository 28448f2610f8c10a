"""Typed view of an OCI runtime-spec 1.x `config.json`, and its strict parser.

Only the fields a Linux runtime acts on are modelled; anything else is ignored so that a newer
config still loads (the spec promises compatibility within a major version). Parsing checks JSON
types only; meaning (known namespace names, absolute paths, ...) is `validate.py`'s job, the way
runc keeps `specconv` apart from `configs/validate`.

The parser is driven by the class declarations, so a field is declared once: its Python name in
snake_case maps to the camelCase JSON key (or `metadata["json"]` when that does not fit), a
field without a default is REQUIRED, and the aliases `U32`, `U64`, `I64` bound integer widths.

Every `refrun create` loads this module, so it stays cheap to import: the classes are
`reference.records` dataclasses (real dataclasses to mypy), and the parser reads the annotations
as the strings `from __future__ import annotations` leaves, without `typing` or `dataclasses`.
"""

from __future__ import annotations

import os

from reference.errors import ConfigError, NotFoundError
from reference.oci import fastjson
from reference.oci.spec_decode import decode_obj, json_key
from reference.records import MISSING, fields, is_record

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see reference/records.py
if TYPE_CHECKING:
    from collections.abc import Mapping
    from dataclasses import dataclass, field
    from typing import Any, TypeAlias

    # The spec's integer widths, checked by the parser (spec_decode.RANGES has the bounds).
    U32: TypeAlias = int
    U64: TypeAlias = int
    I64: TypeAlias = int
else:
    from reference.records import dataclass, field


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


def load_spec(path: str | os.PathLike[str], *, create: bool = True) -> Spec:
    """Read and parse `path` (a bundle's config.json)."""
    return parse_spec(load_json(path), create=create)


def load_json(path: str | os.PathLike[str]) -> object:
    """The decoded JSON of `path`; errors name the file (and line:column if malformed)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise NotFoundError("spec file not found", obj=os.fspath(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read spec file ({e})", obj=os.fspath(path)) from e
    try:
        return fastjson.loads(text)
    except ValueError:
        pass
    # Malformed: only now pay for `json`, whose error has the line and column.
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        # file:line:col, the form editors and terminals turn into a link.
        raise ConfigError(
            f"malformed JSON: {e.msg}", obj=f"{os.fspath(path)}:{e.lineno}:{e.colno}"
        ) from e


def parse_spec(data: object, *, create: bool = True) -> Spec:
    """Check `data` (decoded JSON) field by field and build a `Spec`.

    `create` demands what `create` needs (root and process); without it a partial config, e.g.
    one being edited or used for `state`/`delete` of an existing container, is accepted.
    `data` is not kept: raw sections (linux.resources) are copied.
    """
    spec = decode_obj(Spec, data, "")
    if create:
        if spec.root is None:
            raise ConfigError("missing required field", obj="root")
        if spec.process is None:
            raise ConfigError("missing required field", obj="process")
    return spec


def parse_process(data: object, path: str = "process") -> Process:
    """A `process` object on its own (what `exec --process FILE` reads); errors name `path`."""
    return decode_obj(Process, data, path)


def spec_to_dict(obj: object) -> dict[str, object]:
    """The JSON form of a spec dataclass; optional fields equal to their default are omitted."""
    if not is_record(obj) or isinstance(obj, type):
        raise TypeError(f"not a spec dataclass: {obj!r}")
    out: dict[str, object] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.default is not MISSING and value == f.default:
            continue  # Go's `omitempty`, which is how runc writes its configs
        if f.default_factory is not MISSING and value == f.default_factory():
            continue
        out[json_key(f.name, f.metadata)] = _encode(value)
    return out


def _encode(value: object) -> object:
    if is_record(value) and not isinstance(value, type):
        return spec_to_dict(value)
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return dict(value)
    return value
