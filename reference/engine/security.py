"""A container's confinement as Docker 20.10 sets it: capabilities, seccomp, masked paths.

Capabilities: Docker's 14 defaults, cut to the host's bounding set (a runtime cannot grant
what refd itself lacks; this host has no CAP_SYS_RESOURCE), then --cap-add/--cap-drop (ALL
allowed), as moby's caps.TweakCapabilities does. The inheritable and ambient sets stay empty
(CVE-2022-24769, Docker since 20.10.14).

Seccomp: Docker's default profile, converted the way moby's profiles/seccomp setupSeccomp
does for the native architecture and the container's capabilities. The profile file
(seccomp_default.json beside this module) is moby/profiles' seccomp/default.json, Apache-2.0,
copyright Docker, Inc.; it is the newer copy (with defaultErrnoRet, which Docker 20.10's lacks:
same EPERM), the one refrun's tests use as well.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from reference.errors import ConfigError
from reference.linux.syscall import CAPS
from reference.oci.default import DOCKER_DEFAULT_CAPS

PROFILE = Path(__file__).with_name("seccomp_default.json")

# moby oci/defaults.go (20.10.27: powercap masked since GHSA-jq35-85cj-fj4p).
MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)
# Go's GOARCH names, as the profile's includes/excludes use them, and the seccomp arch.
_MACHINES = {"x86_64": ("amd64", "SCMP_ARCH_X86_64"), "aarch64": ("arm64", "SCMP_ARCH_AARCH64")}


def host_bounding_set() -> frozenset[str]:
    status = Path("/proc/self/status").read_text()
    for line in status.splitlines():
        if line.startswith("CapBnd:"):
            mask = int(line.split()[1], 16)
            return frozenset(name for name, bit in CAPS.items() if mask >> bit & 1)
    return frozenset(CAPS)


def _normalize(cap: str) -> str:
    name = cap.upper()
    return name if name.startswith("CAP_") or name == "ALL" else f"CAP_{name}"


def capabilities(
    cap_add: Iterable[str], cap_drop: Iterable[str], privileged: bool = False
) -> list[str]:
    """The container's bounding = permitted = effective set, in Docker's order."""
    bounding = host_bounding_set()
    adds = [_normalize(c) for c in cap_add]
    drops = [_normalize(c) for c in cap_drop]
    for cap, verb in [(c, "add") for c in adds] + [(c, "drop") for c in drops]:
        if cap != "ALL" and cap not in CAPS:
            raise ConfigError(f'Unknown capability to {verb}: "{cap}"')
    if privileged or "ALL" in adds:
        base = sorted(CAPS, key=CAPS.__getitem__)
    else:
        base = [*DOCKER_DEFAULT_CAPS, *(c for c in adds if c not in DOCKER_DEFAULT_CAPS)]
    if "ALL" in drops:
        base = [c for c in adds if c != "ALL"]
    else:
        base = [c for c in base if c not in drops]
    # Defaults the host lacks are dropped silently; an explicit add of one the host lacks is
    # left in, so that the runtime refuses it as runc does ("unable to apply caps").
    return [c for c in base if c in bounding or c in adds]


def native_arch() -> tuple[str, str]:
    machine = platform.machine()
    if machine not in _MACHINES:
        raise ConfigError(f"no seccomp architecture known for {machine}", obj="seccomp")
    return _MACHINES[machine]


def _kernel_at_least(version: str) -> bool:
    def numbers(text: str) -> tuple[int, ...]:
        parts = []
        for part in text.split("-")[0].split(".")[:3]:
            digits = "".join(ch for ch in part if ch.isdigit())
            parts.append(int(digits or 0))
        return tuple(parts)

    return numbers(os.uname().release) >= numbers(version)


@cache
def default_profile() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(PROFILE.read_text())
    return document


def seccomp_section(profile: dict[str, Any], caps: Sequence[str]) -> dict[str, Any]:
    """A Docker-format profile → the OCI linux.seccomp for this machine and these caps."""
    goarch, scmp = native_arch()
    section: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
    if "defaultErrnoRet" in profile:
        section["defaultErrnoRet"] = profile["defaultErrnoRet"]
    arches: list[str] = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == scmp:
            arches = [scmp, *(entry.get("subArchitectures") or [])]
    section["architectures"] = arches
    have = set(caps)
    rules = []
    for rule in profile.get("syscalls") or []:
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        if inc.get("arches") and goarch not in inc["arches"]:
            continue
        if goarch in (exc.get("arches") or []):
            continue
        if not set(inc.get("caps") or []) <= have or set(exc.get("caps") or []) & have:
            continue
        if inc.get("minKernel") and not _kernel_at_least(inc["minKernel"]):
            continue
        if exc.get("minKernel") and _kernel_at_least(exc["minKernel"]):
            continue
        names = list(rule.get("names") or ([rule["name"]] if rule.get("name") else []))
        out: dict[str, Any] = {"names": names, "action": rule["action"]}
        for key in ("errnoRet", "args"):
            if rule.get(key) is not None:
                out[key] = rule[key]
        rules.append(out)
    section["syscalls"] = rules
    return section


def parse_security_opts(opts: Iterable[str]) -> dict[str, Any]:
    """--security-opt values: no-new-privileges[:|=bool], seccomp=unconfined|<profile JSON>,
    apparmor=... and label=... (accepted: this host has neither AppArmor nor SELinux)."""
    result: dict[str, Any] = {"no_new_privileges": False, "seccomp": None}
    for opt in opts:
        if opt in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"):
            result["no_new_privileges"] = True
            continue
        if opt in ("no-new-privileges:false", "no-new-privileges=false"):
            continue
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        if not sep:
            raise ConfigError(f'Invalid --security-opt: "{opt}"')
        if key == "seccomp":
            if value == "unconfined":
                result["seccomp"] = "unconfined"
            else:
                try:
                    result["seccomp"] = json.loads(value)
                except ValueError as e:
                    raise ConfigError(f"decoding seccomp profile failed: {e}") from None
        elif key in ("apparmor", "label", "systempaths"):
            if key == "systempaths" and value == "unconfined":
                result["systempaths_unconfined"] = True
        else:
            raise ConfigError(f'Invalid --security-opt: "{opt}"')
    return result
