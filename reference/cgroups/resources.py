"""OCI runtime-spec `linux.resources`, typed and validated.

`Resources.from_spec` takes the raw JSON object (the OCI parser keeps it raw so that this package
owns the schema) and returns frozen dataclasses, or raises `ConfigError` whose `obj` is the JSON
path of the offending field, e.g. `linux.resources.memory.limit`.

Conventions, chosen to match runc:
* `None` means "leave the kernel's value alone". Go's zero value means "unset" in runc, so a 0 in
  the numeric knobs where 0 makes no sense (limit, shares, period, weight, ...) is also `None`.
* -1 means unlimited where the spec allows it (memory limit/swap/reservation, cpu quota).
* Unknown keys are ignored (a newer spec must still load), and so are the deprecated kernel
  memory fields (`kernel`, `kernelTCP`): kernels since 5.4 ignore them and runc does too.
"""

from __future__ import annotations

# The ABCs without `import collections.abc` (which imports all of `collections`, ~3 ms):
# _collections_abc is what it re-exports, and `os` has loaded it already.
from _collections_abc import Mapping, Sequence

from reference.errors import ConfigError

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see reference/records.py
if TYPE_CHECKING:
    from dataclasses import dataclass
    from typing import Literal
else:
    from reference.records import dataclass

ROOT = "linux.resources"
I64_MIN, I64_MAX, U64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
# Kernel bounds (kernel/sched: MIN_SHARES/MAX_SHARES, cfs min/max period in µs; blkio weights).
SHARES_MIN, SHARES_MAX = 2, 262144
PERIOD_MIN, PERIOD_MAX = 1000, 1_000_000
QUOTA_MIN = 1000
BLKIO_WEIGHT_MIN, BLKIO_WEIGHT_MAX = 10, 1000
# Compiled on first use: `re` costs ~7 ms to import and few configs set cpus or mems.
_CPU_LIST = r"\d+(-\d+)?(,\d+(-\d+)?)*"


@dataclass(frozen=True)
class Memory:
    limit: int | None = None  # bytes; -1 unlimited
    reservation: int | None = None  # soft limit (v1) / memory.low (v2)
    swap: int | None = None  # memory + swap, bytes; -1 unlimited
    swappiness: int | None = None
    disable_oom_killer: bool | None = None


@dataclass(frozen=True)
class Cpu:
    shares: int | None = None
    quota: int | None = None  # µs per period; -1 unlimited
    period: int | None = None  # µs
    realtime_runtime: int | None = None
    realtime_period: int | None = None
    cpus: str | None = None
    mems: str | None = None


@dataclass(frozen=True)
class Pids:
    limit: int | None = None  # None: unlimited (the spec's -1 and 0)


@dataclass(frozen=True)
class WeightDevice:
    major: int
    minor: int
    weight: int | None = None
    leaf_weight: int | None = None


@dataclass(frozen=True)
class ThrottleDevice:
    major: int
    minor: int
    rate: int  # bytes/s or io/s


@dataclass(frozen=True)
class BlockIO:
    weight: int | None = None
    leaf_weight: int | None = None
    weight_device: tuple[WeightDevice, ...] = ()
    throttle_read_bps_device: tuple[ThrottleDevice, ...] = ()
    throttle_write_bps_device: tuple[ThrottleDevice, ...] = ()
    throttle_read_iops_device: tuple[ThrottleDevice, ...] = ()
    throttle_write_iops_device: tuple[ThrottleDevice, ...] = ()


if TYPE_CHECKING:
    DeviceType = Literal["a", "b", "c"]


@dataclass(frozen=True)
class DeviceRule:
    allow: bool
    type: DeviceType = "a"
    major: int | None = None  # None: any
    minor: int | None = None
    access: str = "rwm"

    def v1_line(self) -> str:
        """The line devices.allow / devices.deny expect: `c 1:3 rwm`, `a *:* rwm`."""
        major = "*" if self.major is None else str(self.major)
        minor = "*" if self.minor is None else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


@dataclass(frozen=True)
class Resources:
    memory: Memory | None = None
    cpu: Cpu | None = None
    pids: Pids | None = None
    block_io: BlockIO | None = None
    devices: tuple[DeviceRule, ...] = ()

    @classmethod
    def from_spec(cls, spec: Mapping[str, object] | None, *, path: str = ROOT) -> Resources:
        if spec is None:
            return cls()
        obj = _Obj(spec, path)
        return cls(
            memory=_memory(obj.sub("memory")),
            cpu=_cpu(obj.sub("cpu")),
            pids=_pids(obj.sub("pids")),
            block_io=_block_io(obj.sub("blockIO")),
            devices=tuple(_device(o) for o in obj.subs("devices")),
        )


class _Obj:
    """A JSON object plus its path, with typed getters that raise ConfigError naming the field."""

    def __init__(self, value: object, path: str) -> None:
        if not isinstance(value, Mapping):
            raise ConfigError(f"must be an object, not {_jtype(value)}", obj=path)
        self.d: Mapping[str, object] = value
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def sub(self, key: str) -> _Obj | None:
        value = self.d.get(key)
        return None if value is None else _Obj(value, self.at(key))

    def subs(self, key: str) -> list[_Obj]:
        value = self.d.get(key)
        if value is None:
            return []
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise ConfigError(f"must be an array, not {_jtype(value)}", obj=self.at(key))
        return [_Obj(v, f"{self.at(key)}[{i}]") for i, v in enumerate(value)]

    def integer(
        self, key: str, lo: int = I64_MIN, hi: int = I64_MAX, *, required: bool = False
    ) -> int | None:
        value = self.d.get(key)
        if value is None:
            if required:
                raise ConfigError("is required", obj=self.at(key))
            return None
        # bool is an int subclass in Python but not a number in JSON.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"must be an integer, not {_jtype(value)}", obj=self.at(key))
        if not lo <= value <= hi:
            raise ConfigError(f"{value} is out of range [{lo}, {hi}]", obj=self.at(key))
        return value

    def req_int(self, key: str, lo: int = I64_MIN, hi: int = I64_MAX) -> int:
        value = self.integer(key, lo, hi, required=True)
        assert value is not None
        return value

    def boolean(self, key: str, *, required: bool = False) -> bool | None:
        value = self.d.get(key)
        if value is None:
            if required:
                raise ConfigError("is required", obj=self.at(key))
            return None
        if not isinstance(value, bool):
            raise ConfigError(f"must be a boolean, not {_jtype(value)}", obj=self.at(key))
        return value

    def string(self, key: str) -> str | None:
        value = self.d.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConfigError(f"must be a string, not {_jtype(value)}", obj=self.at(key))
        return value


def _jtype(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "object"
    return names.get(type(value), type(value).__name__)


def _unset_zero(value: int | None) -> int | None:
    return None if value == 0 else value


def _unlimited_or_positive(o: _Obj, key: str) -> int | None:
    """An int64 byte count where -1 is unlimited, 0 unset, and anything else below 0 invalid."""
    value = o.integer(key)
    if value is not None and value < -1:
        raise ConfigError(f"{value} is invalid (use -1 for unlimited)", obj=o.at(key))
    return _unset_zero(value)


def _weight(o: _Obj, key: str) -> int | None:
    value = _unset_zero(o.integer(key, 0, 2**16 - 1))
    if value is not None and not BLKIO_WEIGHT_MIN <= value <= BLKIO_WEIGHT_MAX:
        raise ConfigError(
            f"{value} is out of range [{BLKIO_WEIGHT_MIN}, {BLKIO_WEIGHT_MAX}]", obj=o.at(key)
        )
    return value


def _memory(o: _Obj | None) -> Memory | None:
    if o is None:
        return None
    limit = _unlimited_or_positive(o, "limit")
    swap = _unlimited_or_positive(o, "swap")
    # The spec's swap is memory+swap, so it cannot be below the memory limit (the kernel's
    # memsw check would reject it later with a bare EINVAL).
    if limit is not None and limit > 0 and swap is not None and 0 < swap < limit:
        raise ConfigError(
            f"{swap} is below memory.limit {limit} (swap counts memory+swap)", obj=o.at("swap")
        )
    return Memory(
        limit=limit,
        reservation=_unlimited_or_positive(o, "reservation"),
        swap=swap,
        swappiness=o.integer("swappiness", 0, 100),
        disable_oom_killer=o.boolean("disableOOMKiller"),
    )


def _cpu_list(o: _Obj, key: str) -> str | None:
    value = o.string(key)
    if not value:
        return None
    import re

    if not re.fullmatch(_CPU_LIST, value):
        raise ConfigError(f"{value!r} is not a list like '0-3,5'", obj=o.at(key))
    return value


def _cpu(o: _Obj | None) -> Cpu | None:
    if o is None:
        return None
    shares = _unset_zero(o.integer("shares", 0, U64_MAX))
    if shares is not None and not SHARES_MIN <= shares <= SHARES_MAX:
        raise ConfigError(
            f"{shares} is out of range [{SHARES_MIN}, {SHARES_MAX}]", obj=o.at("shares")
        )
    quota = _unset_zero(o.integer("quota"))
    if quota is not None and quota != -1 and quota < QUOTA_MIN:
        raise ConfigError(
            f"{quota} is below {QUOTA_MIN} µs (use -1 for unlimited)", obj=o.at("quota")
        )
    period = _unset_zero(o.integer("period", 0, U64_MAX))
    if period is not None and not PERIOD_MIN <= period <= PERIOD_MAX:
        raise ConfigError(
            f"{period} is out of range [{PERIOD_MIN}, {PERIOD_MAX}]", obj=o.at("period")
        )
    return Cpu(
        shares=shares,
        quota=quota,
        period=period,
        realtime_runtime=_unset_zero(o.integer("realtimeRuntime", -1)),
        realtime_period=_unset_zero(o.integer("realtimePeriod", 0, U64_MAX)),
        cpus=_cpu_list(o, "cpus"),
        mems=_cpu_list(o, "mems"),
    )


def _pids(o: _Obj | None) -> Pids | None:
    if o is None:
        return None
    limit = o.integer("limit", -1)
    return Pids(limit=None if limit is None or limit <= 0 else limit)


def _throttle(o: _Obj) -> ThrottleDevice:
    return ThrottleDevice(
        o.req_int("major", 0), o.req_int("minor", 0), o.req_int("rate", 0, U64_MAX)
    )


def _block_io(o: _Obj | None) -> BlockIO | None:
    if o is None:
        return None
    return BlockIO(
        weight=_weight(o, "weight"),
        leaf_weight=_weight(o, "leafWeight"),
        weight_device=tuple(
            WeightDevice(
                d.req_int("major", 0),
                d.req_int("minor", 0),
                _weight(d, "weight"),
                _weight(d, "leafWeight"),
            )
            for d in o.subs("weightDevice")
        ),
        throttle_read_bps_device=tuple(_throttle(d) for d in o.subs("throttleReadBpsDevice")),
        throttle_write_bps_device=tuple(_throttle(d) for d in o.subs("throttleWriteBpsDevice")),
        throttle_read_iops_device=tuple(_throttle(d) for d in o.subs("throttleReadIOPSDevice")),
        throttle_write_iops_device=tuple(_throttle(d) for d in o.subs("throttleWriteIOPSDevice")),
    )


def _device_number(o: _Obj, key: str) -> int | None:
    value = o.integer(key, -1)
    return None if value == -1 else value  # runc also reads -1 as the wildcard


def _device(o: _Obj) -> DeviceRule:
    allow = o.boolean("allow", required=True)
    assert allow is not None
    dtype = o.string("type") or "a"
    if dtype not in ("a", "b", "c"):
        raise ConfigError(f"{dtype!r} is not one of 'a', 'b', 'c'", obj=o.at("type"))
    access = o.string("access")
    access = "rwm" if access is None else access
    if not access or set(access) - set("rwm") or len(set(access)) != len(access):
        raise ConfigError(f"{access!r} is not a combination of 'r', 'w', 'm'", obj=o.at("access"))
    return DeviceRule(
        allow=allow,
        type=dtype,  # type: ignore[arg-type]  # checked against "a", "b", "c" above
        major=_device_number(o, "major"),
        minor=_device_number(o, "minor"),
        access=access,
    )
