"""`refrun update [flags] ID`: change a container's cgroup limits while it runs.

Flags as runc's: memory sizes take 1024-based suffixes (64m, 1g) or -1 for unlimited;
`-r FILE` (or `-r -` for stdin) reads a linux.resources JSON object, and flags override it.
Values go through `Resources.from_spec`, so a bad one is an error naming the field.
"""

from __future__ import annotations

import sys

from reference.errors import ConfigError
from reference.oci import args, fastjson, lifecycle, store
from reference.oci.runlog import Globals

FLAGS = args.flags(
    ("--resources|-r", "resources", args.VALUE),
    ("--memory", "memory", args.VALUE),
    ("--memory-swap", "memory-swap", args.VALUE),
    ("--memory-reservation", "memory-reservation", args.VALUE),
    ("--kernel-memory", "kernel-memory", args.VALUE),
    ("--kernel-memory-tcp", "kernel-memory-tcp", args.VALUE),
    ("--pids-limit", "pids-limit", args.VALUE),
    ("--cpu-quota", "cpu-quota", args.VALUE),
    ("--cpu-period", "cpu-period", args.VALUE),
    ("--cpu-shares", "cpu-shares", args.VALUE),
    ("--cpu-rt-period", "cpu-rt-period", args.VALUE),
    ("--cpu-rt-runtime", "cpu-rt-runtime", args.VALUE),
    ("--cpuset-cpus", "cpuset-cpus", args.VALUE),
    ("--cpuset-mems", "cpuset-mems", args.VALUE),
    ("--blkio-weight", "blkio-weight", args.VALUE),
)

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}

# flag -> (section, key, is a memory size)
_NUMERIC = {
    "memory": ("memory", "limit", True),
    "memory-swap": ("memory", "swap", True),
    "memory-reservation": ("memory", "reservation", True),
    "pids-limit": ("pids", "limit", False),
    "cpu-quota": ("cpu", "quota", False),
    "cpu-period": ("cpu", "period", False),
    "cpu-shares": ("cpu", "shares", False),
    "cpu-rt-period": ("cpu", "realtimePeriod", False),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", False),
    "blkio-weight": ("blockIO", "weight", False),
}


def ram_in_bytes(text: str, flag: str) -> int:
    """docker/go-units RAMInBytes: `512`, `64m`, `1.5g`, `2GiB`-style; -1 means unlimited."""
    if text.strip() == "-1":
        return -1
    s = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = s[-1:] if s[-1:] in _UNITS and s[-1:] else ""
    number = s[: len(s) - len(unit)].strip()
    try:
        value = float(number) if "." in number else int(number)
    except ValueError:
        raise ConfigError(f"invalid size {text!r}", obj=flag) from None
    if value < 0:
        raise ConfigError(f"invalid size {text!r}", obj=flag)
    return int(value * _UNITS[unit])


def _read_resources(source: str) -> dict[str, object]:
    try:
        if source == "-":
            text = sys.stdin.read()
        else:
            with open(source, encoding="utf-8") as f:
                text = f.read()
        data = fastjson.loads(text)
    except OSError as e:
        raise ConfigError(f"cannot read resources ({e.strerror})", obj=source) from None
    except ValueError as e:
        raise ConfigError(f"malformed JSON: {e}", obj=source) from None
    if not isinstance(data, dict):
        raise ConfigError("must be a JSON object (linux.resources)", obj=source)
    return data


def resources_from(opts: dict[str, object]) -> dict[str, object]:
    """The linux.resources object the flags (and -r) describe."""
    res: dict[str, object] = {}
    if "resources" in opts:
        res = _read_resources(args.string(opts, "resources"))
    for flag, (section, key, size) in _NUMERIC.items():
        if flag not in opts:
            continue
        text = args.string(opts, flag)
        value = ram_in_bytes(text, f"--{flag}") if size else args.integer(opts, flag, f"--{flag}")
        sec = res.setdefault(section, {})
        assert isinstance(sec, dict)
        sec[key] = value
    for flag, key in (("cpuset-cpus", "cpus"), ("cpuset-mems", "mems")):
        if flag in opts:
            sec = res.setdefault("cpu", {})
            assert isinstance(sec, dict)
            sec[key] = args.string(opts, flag)
    return res


def main(g: Globals, verb: str, argv: list[str]) -> int:
    opts, positional = args.parse(argv, FLAGS)
    cid = args.one_id(positional, verb)
    rec = store.require(g, cid)
    lifecycle.check_transition("update", rec.status(), cid)
    from reference.cgroups.resources import Resources

    resources = Resources.from_spec(resources_from(opts))
    rec.manager().set(resources)
    return 0
