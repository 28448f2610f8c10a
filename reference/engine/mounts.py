"""User mounts: HostConfig.Binds (-v SRC:DST[:OPTS]) and HostConfig.Mounts (--mount), checked
with moby's volume/mounts parser wording and normalized into inspect's `Mounts` entries.

Bind mounts default to rprivate propagation (moby's DefaultPropagationMode); -v creates a
missing source directory, --mount type=bind refuses one. Named volumes are not implemented.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reference.errors import ConfigError

PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
DEFAULT_PROPAGATION = "rprivate"


def _bad(kind: str, detail: str) -> ConfigError:
    return ConfigError(f'invalid mount config for type "{kind}": {detail}')


def _target(kind: str, target: str) -> str:
    if not target:
        raise _bad(kind, "field Target must not be empty")
    if not target.startswith("/"):
        raise _bad(kind, f"invalid mount path: '{target}' mount path must be absolute")
    return os.path.normpath(target)


def from_mount(spec: dict[str, Any]) -> dict[str, Any]:
    kind = spec.get("Type") or ""
    target = _target(kind or "bind", spec.get("Target") or "")
    read_only = bool(spec.get("ReadOnly"))
    if kind == "bind":
        source = spec.get("Source") or ""
        if not source:
            raise _bad(kind, "field Source must not be empty")
        if not source.startswith("/"):
            raise _bad(kind, f"invalid mount path: '{source}' mount path must be absolute")
        if not os.path.exists(source):
            raise _bad(kind, f"bind source path does not exist: {source}")
        options = spec.get("BindOptions") or {}
        propagation = options.get("Propagation") or DEFAULT_PROPAGATION
        if propagation not in PROPAGATIONS:
            raise _bad(kind, f"invalid propagation mode: {propagation}")
        return {
            "Type": "bind",
            "Source": os.path.normpath(source),
            "Destination": target,
            "Mode": "",
            "RW": not read_only,
            "Propagation": propagation,
            "NonRecursive": bool(options.get("NonRecursive")),
        }
    if kind == "tmpfs":
        if spec.get("Source"):
            raise _bad(kind, "field Source must not be specified")
        options = spec.get("TmpfsOptions") or {}
        return {
            "Type": "tmpfs",
            "Source": "",
            "Destination": target,
            "Mode": "",
            "RW": not read_only,
            "Propagation": "",
            "SizeBytes": int(options.get("SizeBytes") or 0),
            "TmpfsMode": int(options.get("Mode") or 0),
        }
    if kind == "volume":
        raise ConfigError("named volumes are not supported by refd")
    raise ConfigError(f"mount type unknown: {kind!r}")


def from_bind(spec: str) -> dict[str, Any]:
    """-v SRC:DST[:OPTS] with OPTS a comma list of ro, rw, z, Z, nocopy and a propagation."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise ConfigError(f"invalid volume specification: '{spec}'")
    source, target = parts[0], parts[1]
    if not source.startswith("/"):
        raise ConfigError(f"named volumes are not supported by refd: {source}")
    target = _target("bind", target)
    read_only, propagation = False, DEFAULT_PROPAGATION
    for option in parts[2].split(",") if len(parts) == 3 and parts[2] else []:
        if option in ("ro", "rw"):
            read_only = option == "ro"
        elif option in PROPAGATIONS:
            propagation = option
        elif option not in ("z", "Z", "nocopy", "consistent", "cached", "delegated"):
            raise ConfigError(f"invalid mode: {option}")
    Path(source).mkdir(parents=True, exist_ok=True)  # -v makes a missing source, as Docker
    return {
        "Type": "bind",
        "Source": os.path.normpath(source),
        "Destination": target,
        "Mode": parts[2] if len(parts) == 3 else "",
        "RW": not read_only,
        "Propagation": propagation,
        "NonRecursive": False,
    }


def parse(host_config: dict[str, Any]) -> list[dict[str, Any]]:
    """All user mounts of a create request, in order; duplicates refused."""
    found = [from_bind(b) for b in host_config.get("Binds") or []]
    found += [from_mount(m) for m in host_config.get("Mounts") or []]
    for tmpfs_target, options in (host_config.get("Tmpfs") or {}).items():
        found.append(
            {
                "Type": "tmpfs",
                "Source": "",
                "Destination": _target("tmpfs", tmpfs_target),
                "Mode": options,
                "RW": True,
                "Propagation": "",
            }
        )
    seen: set[str] = set()
    for mount in found:
        if mount["Destination"] in seen:
            raise ConfigError(f"Duplicate mount point: {mount['Destination']}")
        seen.add(mount["Destination"])
    return found
