"""`Resources.from_spec`: typed values out, ConfigError naming the JSON path for bad input."""

from __future__ import annotations

import copy

import pytest

from reference.cgroups.resources import (
    BlockIO,
    Cpu,
    DeviceRule,
    Memory,
    Pids,
    Resources,
    ThrottleDevice,
    WeightDevice,
)
from reference.errors import ConfigError

FULL: dict[str, object] = {
    "devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        {"allow": True, "type": "b", "major": 8, "minor": -1},
    ],
    "memory": {
        "limit": 64 << 20,
        "reservation": 32 << 20,
        "swap": 128 << 20,
        "kernel": 1 << 20,  # deprecated, ignored
        "kernelTCP": 1 << 20,
        "swappiness": 10,
        "disableOOMKiller": True,
        "useHierarchy": True,
    },
    "cpu": {
        "shares": 512,
        "quota": 50000,
        "period": 100000,
        "realtimeRuntime": 950000,
        "realtimePeriod": 1000000,
        "cpus": "0-1,3",
        "mems": "0",
        "idle": 0,
    },
    "pids": {"limit": 100},
    "blockIO": {
        "weight": 300,
        "leafWeight": 200,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 400}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 200}],
    },
    "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
    "futureKnob": {"x": 1},
}


def test_full_spec() -> None:
    r = Resources.from_spec(FULL)
    assert r.memory == Memory(64 << 20, 32 << 20, 128 << 20, 10, True)
    assert r.cpu == Cpu(512, 50000, 100000, 950000, 1000000, "0-1,3", "0")
    assert r.pids == Pids(100)
    assert r.block_io == BlockIO(
        weight=300,
        leaf_weight=200,
        weight_device=(WeightDevice(8, 0, 400),),
        throttle_read_bps_device=(ThrottleDevice(8, 0, 1048576),),
        throttle_write_bps_device=(ThrottleDevice(8, 0, 2097152),),
        throttle_read_iops_device=(ThrottleDevice(8, 16, 100),),
        throttle_write_iops_device=(ThrottleDevice(8, 16, 200),),
    )
    assert r.devices == (
        DeviceRule(False),
        DeviceRule(True, "c", 1, 3, "rw"),
        DeviceRule(True, "b", 8, None, "rwm"),
    )


def test_empty_and_none() -> None:
    assert Resources.from_spec(None) == Resources.from_spec({}) == Resources()


def test_zero_means_unset_and_pids_unlimited() -> None:
    r = Resources.from_spec(
        {
            "memory": {"limit": 0, "swap": 0, "reservation": 0},
            "cpu": {"shares": 0, "quota": 0, "period": 0, "cpus": ""},
            "pids": {"limit": 0},
            "blockIO": {"weight": 0},
        }
    )
    assert r.memory == Memory()
    assert r.cpu == Cpu()
    assert r.pids == Pids(None)
    assert r.block_io == BlockIO()
    assert Resources.from_spec({"pids": {"limit": -1}}).pids == Pids(None)


def test_unlimited_values() -> None:
    r = Resources.from_spec({"memory": {"limit": -1, "swap": -1}, "cpu": {"quota": -1}})
    assert r.memory == Memory(limit=-1, swap=-1)
    assert r.cpu == Cpu(quota=-1)


def test_device_rule_v1_line() -> None:
    assert DeviceRule(False).v1_line() == "a *:* rwm"
    assert DeviceRule(True, "c", 1, 3, "rw").v1_line() == "c 1:3 rw"
    assert DeviceRule(True, "b", 8, None, "m").v1_line() == "b 8:* m"


def _at(data: dict[str, object], keys: tuple[str | int, ...], value: object) -> dict[str, object]:
    data = copy.deepcopy(data)
    node: object = data
    for k in keys[:-1]:
        node = node[k]  # type: ignore[index]
    node[keys[-1]] = value  # type: ignore[index]
    return data


BAD = [
    (("memory",), "64m", "linux.resources.memory"),
    (("memory", "limit"), "64m", "linux.resources.memory.limit"),
    (("memory", "limit"), True, "linux.resources.memory.limit"),
    (("memory", "limit"), 1.5, "linux.resources.memory.limit"),
    (("memory", "limit"), -2, "linux.resources.memory.limit"),
    (("memory", "limit"), 2**63, "linux.resources.memory.limit"),
    (("memory", "swap"), 1 << 20, "linux.resources.memory.swap"),  # below the 64 MiB limit
    (("memory", "reservation"), -5, "linux.resources.memory.reservation"),
    (("memory", "swappiness"), 101, "linux.resources.memory.swappiness"),
    (("memory", "disableOOMKiller"), "yes", "linux.resources.memory.disableOOMKiller"),
    (("cpu", "shares"), 1, "linux.resources.cpu.shares"),
    (("cpu", "shares"), 262145, "linux.resources.cpu.shares"),
    (("cpu", "shares"), -1, "linux.resources.cpu.shares"),
    (("cpu", "quota"), 500, "linux.resources.cpu.quota"),
    (("cpu", "period"), 999, "linux.resources.cpu.period"),
    (("cpu", "period"), 1_000_001, "linux.resources.cpu.period"),
    (("cpu", "cpus"), "0-a", "linux.resources.cpu.cpus"),
    (("cpu", "mems"), 0, "linux.resources.cpu.mems"),
    (("cpu", "realtimePeriod"), -1, "linux.resources.cpu.realtimePeriod"),
    (("pids", "limit"), -2, "linux.resources.pids.limit"),
    (("pids", "limit"), "10", "linux.resources.pids.limit"),
    (("blockIO", "weight"), 5, "linux.resources.blockIO.weight"),
    (("blockIO", "leafWeight"), 1001, "linux.resources.blockIO.leafWeight"),
    (("blockIO", "weightDevice"), {}, "linux.resources.blockIO.weightDevice"),
    (("blockIO", "weightDevice", 0), 8, "linux.resources.blockIO.weightDevice[0]"),
    (
        ("blockIO", "weightDevice", 0, "major"),
        None,
        "linux.resources.blockIO.weightDevice[0].major",
    ),
    (("blockIO", "weightDevice", 0, "weight"), 1, "linux.resources.blockIO.weightDevice[0].weight"),
    (
        ("blockIO", "throttleReadBpsDevice", 0, "rate"),
        -1,
        "linux.resources.blockIO.throttleReadBpsDevice[0].rate",
    ),
    (
        ("blockIO", "throttleWriteIOPSDevice", 0, "minor"),
        -3,
        "linux.resources.blockIO.throttleWriteIOPSDevice[0].minor",
    ),
    (("devices",), "all", "linux.resources.devices"),
    (("devices", 0, "allow"), None, "linux.resources.devices[0].allow"),
    (("devices", 1, "type"), "x", "linux.resources.devices[1].type"),
    (("devices", 1, "major"), "1", "linux.resources.devices[1].major"),
    (("devices", 2, "access"), "rwx", "linux.resources.devices[2].access"),
    (("devices", 2, "access"), "rr", "linux.resources.devices[2].access"),
    (("devices", 2, "access"), "", "linux.resources.devices[2].access"),
]


@pytest.mark.parametrize(
    ("keys", "value", "field"), BAD, ids=[b[2] + "=" + repr(b[1]) for b in BAD]
)
def test_bad_field_names_the_json_path(
    keys: tuple[str | int, ...], value: object, field: str
) -> None:
    with pytest.raises(ConfigError) as e:
        Resources.from_spec(_at(FULL, keys, value))
    assert e.value.obj == field


def test_resources_not_an_object() -> None:
    with pytest.raises(ConfigError) as e:
        Resources.from_spec([])  # type: ignore[arg-type]
    assert e.value.obj == "linux.resources"
