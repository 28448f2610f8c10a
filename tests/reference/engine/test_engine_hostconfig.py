"""HostConfig checks, defaults and warnings, with dockerd's messages."""

from __future__ import annotations

from typing import Any

import pytest

from reference.engine.hostconfig import SysInfo, check_modes, check_resources, parse_cpuset
from reference.errors import ConfigError

FULL = SysInfo(swap_limit=True, oom_kill_disable=True, blkio_weight=True, cpus="0-1", ncpu=2)
BARE = SysInfo(swap_limit=False, oom_kill_disable=False, blkio_weight=False, cpus="0-1", ncpu=2)
MIB = 1 << 20


def test_swap_defaults_to_twice_the_memory() -> None:
    hc: dict[str, Any] = {"Memory": 64 * MIB}
    assert check_resources(hc, FULL) == []
    assert hc["MemorySwap"] == 128 * MIB


def test_without_swap_accounting_the_swap_limit_is_dropped() -> None:
    hc: dict[str, Any] = {"Memory": 64 * MIB, "MemorySwap": 100 * MIB}
    warnings = check_resources(hc, BARE)
    assert hc["MemorySwap"] == -1
    assert any("swap limit capabilities" in w for w in warnings)


@pytest.mark.parametrize(
    ("hc", "message"),
    [
        ({"Memory": 1 * MIB}, "Minimum memory limit allowed is 6MB"),
        ({"MemorySwap": 64 * MIB}, "You should always set the Memory limit when using Memoryswap"),
        ({"Memory": 64 * MIB, "MemorySwap": 32 * MIB}, "Minimum memoryswap limit should be larger"),
        ({"NanoCpus": 5 * 10**9}, "Range of CPUs is from 0.01 to 2.00"),
        ({"NanoCpus": 10**9, "CpuPeriod": 100000}, "Nano CPUs and CPU Period"),
        ({"CpuPeriod": 10}, "CPU cfs period can not be less than 1ms"),
        ({"CpuQuota": 10}, "CPU cfs quota can not be less than 1ms"),
        ({"CpusetCpus": "0-7"}, "Requested CPUs are not available - requested 0-7"),
        ({"CpusetCpus": "x"}, "Invalid value x for cpuset cpus"),
        ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
        ({"MemorySwappiness": 101}, "valid memory swappiness range is 0-100"),
        ({"Memory": "64m"}, "expected an integer"),
    ],
)
def test_refused_resources(hc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_resources(hc, FULL)


def test_kernel_gaps_become_warnings() -> None:
    hc: dict[str, Any] = {"BlkioWeight": 300, "OomKillDisable": True}
    warnings = check_resources(hc, BARE)
    assert hc["BlkioWeight"] == 0
    assert hc["OomKillDisable"] is False
    assert any("Block I/O weight" in w for w in warnings)


def test_oom_kill_disable_without_memory_warns() -> None:
    warnings = check_resources({"OomKillDisable": True}, FULL)
    assert any("no memory limit is set" in w for w in warnings)


def test_update_does_not_invent_a_swap_limit() -> None:
    hc: dict[str, Any] = {"Memory": 128 * MIB}
    check_resources(hc, FULL, update=True)
    assert "MemorySwap" not in hc


@pytest.mark.parametrize(
    ("hc", "config", "message"),
    [
        ({}, {"Hostname": "a" * 65}, 'hostname "a{65}" is too long \\(maximum 64 bytes\\)'),
        ({"UTSMode": "host"}, {"Hostname": "x"}, "conflicting options: hostname and the UTS mode"),
        ({"IpcMode": "weird"}, {}, "invalid IPC mode: weird"),
        ({"PidMode": "container"}, {}, "invalid PID mode: container"),
        ({"CgroupnsMode": "both"}, {}, "invalid cgroup namespace mode: both"),
        ({"RestartPolicy": {"Name": "always"}}, {}, "restart policy 'always' is not supported"),
        ({"ShmSize": -1}, {}, "SHM size can not be less than 0"),
        ({"OomScoreAdj": 2000}, {}, "range for oom score adj is \\[-1000, 1000\\]"),
    ],
)
def test_refused_modes(hc: dict[str, Any], config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_modes(hc, config)


def test_a_64_byte_hostname_is_fine() -> None:
    check_modes({}, {"Hostname": "a" * 64})


def test_cpuset_parsing() -> None:
    assert parse_cpuset("0-2,4") == {0, 1, 2, 4}
    with pytest.raises(ConfigError):
        parse_cpuset("3-1")
