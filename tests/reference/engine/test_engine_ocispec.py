"""Config + HostConfig → the OCI config.json, as dockerd builds it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from reference.engine import ocispec
from reference.errors import ConfigError

MIB = 1 << 20


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
    )
    (root / "etc" / "group").write_text("root:x:0:\napp:x:1000:\nwheel:x:10:app\n")
    return root


def inputs(
    rootfs: Path,
    config: Mapping[str, Any] = {},
    hc: Mapping[str, Any] = {},
    mounts: list[dict[str, Any]] | None = None,
) -> ocispec.SpecInputs:
    base = {"Hostname": "abc123", "Cmd": ["sleep", "1"], "Env": ["A=1"], **config}
    return ocispec.SpecInputs(
        cid="c" * 64,
        config=base,
        host_config=dict(hc),
        mounts=mounts or [],
        rootfs=rootfs,
        etc_files={n: Path(f"/data/{n}") for n in ("hostname", "hosts", "resolv.conf")},
        shm_path=None,
        cgroups_path="/refd/" + "c" * 64,
        seccomp_supported=True,
        cgroupns_default="host",
    )


def no_join(kind: str, mode: str) -> tuple[int, Mapping[str, Any]]:
    raise AssertionError("nothing to join")


def build(i: ocispec.SpecInputs) -> dict[str, Any]:
    return ocispec.build(i, no_join)


def test_default_spec(rootfs: Path) -> None:
    spec = build(inputs(rootfs))
    assert spec["hostname"] == "abc123"
    assert spec["process"]["args"] == ["sleep", "1"]
    assert spec["process"]["env"] == [f"PATH={ocispec.DEFAULT_PATH}", "HOSTNAME=abc123", "A=1"]
    assert spec["process"]["user"] == {"uid": 0, "gid": 0}
    assert spec["process"]["noNewPrivileges"] is False
    kinds = [ns["type"] for ns in spec["linux"]["namespaces"]]
    assert sorted(kinds) == ["ipc", "mount", "network", "pid", "uts"]  # cgroupns host on v1
    assert spec["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"] == "0"
    assert spec["linux"]["cgroupsPath"] == "/refd/" + "c" * 64
    assert "/proc/kcore" in spec["linux"]["maskedPaths"]
    assert "/proc/sys" in spec["linux"]["readonlyPaths"]
    assert spec["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    shm = [m for m in spec["mounts"] if m["destination"] == "/dev/shm"]
    assert shm[0]["options"][-1] == f"size={64 * MIB}"
    etc = {m["destination"]: m for m in spec["mounts"] if m["destination"].startswith("/etc/")}
    assert etc["/etc/hosts"] == {
        "destination": "/etc/hosts",
        "type": "bind",
        "source": "/data/hosts",
        "options": ["rbind", "rprivate"],
    }


def test_resources(rootfs: Path) -> None:
    hc = {
        "Memory": 64 * MIB,
        "MemorySwap": 128 * MIB,
        "NanoCpus": 300_000_000,
        "CpuShares": 512,
        "CpusetCpus": "0",
        "PidsLimit": 50,
        "BlkioWeight": 300,
        "OomKillDisable": True,
    }
    resources = build(inputs(rootfs, hc=hc))["linux"]["resources"]
    assert resources["memory"] == {"limit": 64 * MIB, "swap": 128 * MIB, "disableOOMKiller": True}
    assert resources["cpu"] == {"shares": 512, "period": 100_000, "quota": 30_000, "cpus": "0"}
    assert resources["pids"] == {"limit": 50}
    assert resources["blockIO"] == {"weight": 300}
    assert resources["devices"] == [{"allow": False, "access": "rwm"}]


def test_host_modes_drop_namespaces(rootfs: Path) -> None:
    hc = {
        "PidMode": "host",
        "IpcMode": "host",
        "UTSMode": "host",
        "NetworkMode": "host",
        "CgroupnsMode": "private",
    }
    spec = build(inputs(rootfs, hc=hc))
    assert sorted(ns["type"] for ns in spec["linux"]["namespaces"]) == ["cgroup", "mount"]
    assert "hostname" not in spec
    assert "net.ipv4.ip_unprivileged_port_start" not in spec["linux"]["sysctl"]
    shm = [m for m in spec["mounts"] if m["destination"] == "/dev/shm"]
    assert shm[0]["source"] == "/dev/shm"


def test_joining_a_donor(rootfs: Path) -> None:
    def joined(kind: str, mode: str) -> tuple[int, Mapping[str, Any]]:
        assert (kind, mode) == ("ipc", "container:donor")
        return 4242, {"IpcMode": "shareable"}

    spec = ocispec.build(inputs(rootfs, hc={"IpcMode": "container:donor"}), joined)
    assert {"type": "ipc", "path": "/proc/4242/ns/ipc"} in spec["linux"]["namespaces"]


def test_domainname_and_ipc_none(rootfs: Path) -> None:
    spec = build(inputs(rootfs, {"Domainname": "ex.test"}, {"IpcMode": "none"}))
    assert spec["linux"]["sysctl"]["kernel.domainname"] == "ex.test"
    assert not [m for m in spec["mounts"] if m["destination"] == "/dev/shm"]


def test_binds_set_rootfs_propagation(rootfs: Path) -> None:
    mounts = [
        {
            "Type": "bind",
            "Source": "/a",
            "Destination": "/x/y",
            "RW": False,
            "Propagation": "rslave",
        },
        {"Type": "bind", "Source": "/b", "Destination": "/x", "RW": True, "Propagation": "rshared"},
    ]
    spec = build(inputs(rootfs, mounts=mounts))
    assert spec["linux"]["rootfsPropagation"] == "shared"
    user = [m for m in spec["mounts"] if m["source"] in ("/a", "/b")]
    assert [m["destination"] for m in user] == ["/x", "/x/y"]  # parents first
    assert user[1]["options"] == ["rbind", "ro", "rslave"]


def test_privileged_and_security_opts(rootfs: Path) -> None:
    spec = build(inputs(rootfs, hc={"Privileged": True}))
    assert "seccomp" not in spec["linux"]
    assert "maskedPaths" not in spec["linux"]
    assert spec["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    spec = build(inputs(rootfs, hc={"SecurityOpt": ["no-new-privileges", "seccomp=unconfined"]}))
    assert spec["process"]["noNewPrivileges"] is True
    assert "seccomp" not in spec["linux"]


def test_users(rootfs: Path) -> None:
    assert ocispec.resolve_user(rootfs, "app") == {"uid": 1000, "gid": 1000, "additionalGids": [10]}
    assert ocispec.resolve_user(rootfs, "1000:10") == {"uid": 1000, "gid": 10}
    assert ocispec.resolve_user(rootfs, "4242") == {"uid": 4242, "gid": 0}
    with pytest.raises(ConfigError, match="unable to find user nobody"):
        ocispec.resolve_user(rootfs, "nobody")
    with pytest.raises(ConfigError, match="unable to find group staff"):
        ocispec.resolve_user(rootfs, "app:staff")


def test_env_overrides_the_defaults(rootfs: Path) -> None:
    spec = build(inputs(rootfs, {"Env": ["PATH=/opt", "HOSTNAME=mine"]}))
    assert spec["process"]["env"] == ["PATH=/opt", "HOSTNAME=mine"]


def test_devices(rootfs: Path) -> None:
    hc = {
        "Devices": [
            {"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rw"}
        ]
    }
    spec = build(inputs(rootfs, hc=hc))
    (node,) = spec["linux"]["devices"]
    assert (node["path"], node["type"], node["major"], node["minor"]) == ("/dev/mynull", "c", 1, 3)
    assert spec["linux"]["resources"]["devices"][-1] == {
        "allow": True,
        "type": "c",
        "major": 1,
        "minor": 3,
        "access": "rw",
    }
    with pytest.raises(ConfigError, match='adding custom device "/dev/nope"'):
        build(inputs(rootfs, hc={"Devices": [{"PathOnHost": "/dev/nope"}]}))
