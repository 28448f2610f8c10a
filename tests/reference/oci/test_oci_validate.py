"""Semantic validation: each rejected config names the field at fault."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reference.errors import ConfigError
from reference.oci.default import default_spec
from reference.oci.spec import parse_spec
from reference.oci.validate import CAPABILITIES, RLIMITS, validate

Config = dict[str, Any]
Mutator = Callable[[Config], None]


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "file").write_text("")
    return tmp_path


def _base() -> Config:
    return default_spec(cgroupns=False)


def _drop_ns(ns_type: str) -> Mutator:
    def f(c: Config) -> None:
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != ns_type]

    return f


def _sysctl(key: str, *drop: str) -> Mutator:
    def f(c: Config) -> None:
        for ns in drop:
            _drop_ns(ns)(c)
        c["linux"]["sysctl"] = {key: "1"}

    return f


def _set(*keys: str | int, value: object) -> Mutator:
    """Set the item at `keys`; an index one past the end of a list appends."""

    def f(c: Config) -> None:
        node: Any = c
        for k in keys[:-1]:
            node = node[k]
        if isinstance(node, list) and keys[-1] == len(node):
            node.append(value)
        else:
            node[keys[-1]] = value

    return f


def _all(*mutators: Mutator) -> Mutator:
    def f(c: Config) -> None:
        for m in mutators:
            m(c)

    return f


def _add_user_ns(c: Config) -> None:
    c["linux"]["namespaces"].append({"type": "user"})


_MAP = [{"containerID": 0, "hostID": 1000, "size": 1}]

BAD: list[tuple[str, Mutator, str]] = [
    ("version-major", _set("ociVersion", value="2.0.0"), "ociVersion"),
    ("version-not-semver", _set("ociVersion", value="1.0"), "ociVersion"),
    ("rootfs-missing", _set("root", "path", value="nope"), "root.path"),
    ("rootfs-is-file", _set("root", "path", value="file"), "root.path"),
    ("rootfs-empty", _set("root", "path", value=""), "root.path"),
    ("args-empty", _set("process", "args", value=[]), "process.args"),
    ("cwd-relative", _set("process", "cwd", value="tmp"), "process.cwd"),
    ("env-no-equals", _set("process", "env", 1, value="TERM"), "process.env[1]"),
    ("env-nul", _set("process", "env", 0, value="A=\0"), "process.env[0]"),
    ("cap-unknown", _set("process", "capabilities", "bounding", 1, value="CAP_FOO"),
     "process.capabilities.bounding[1]"),
    ("cap-lowercase", _set("process", "capabilities", "ambient", value=["chown"]),
     "process.capabilities.ambient[0]"),
    ("rlimit-type", _set("process", "rlimits", 0, "type", value="NOFILE"),
     "process.rlimits[0].type"),
    ("rlimit-soft-gt-hard", _set("process", "rlimits", 0, "soft", value=2048),
     "process.rlimits[0].soft"),
    ("rlimit-dup", _set("process", "rlimits", 1, value={"type": "RLIMIT_NOFILE", "hard": 1,
                                                       "soft": 1}), "process.rlimits[1].type"),
    ("oom-range", _set("process", "oomScoreAdj", value=1001), "process.oomScoreAdj"),
    ("ns-unknown", _set("linux", "namespaces", 1, "type", value="net"), "linux.namespaces[1].type"),
    ("ns-dup", _set("linux", "namespaces", 5, value={"type": "pid"}), "linux.namespaces[5].type"),
    ("ns-path-missing", _set("linux", "namespaces", 0, "path", value="/nonexistent/ns/pid"),
     "linux.namespaces[0].path"),
    ("ns-path-relative", _set("linux", "namespaces", 0, "path", value="proc/1/ns/pid"),
     "linux.namespaces[0].path"),
    ("hostname-no-uts", _drop_ns("uts"), "hostname"),
    ("domainname-no-uts",
     _all(_drop_ns("uts"), _set("hostname", value=""), _set("domainname", value="example.org")),
     "domainname"),
    ("uidmap-no-userns", _set("linux", "uidMappings", value=_MAP), "linux.uidMappings"),
    ("gidmap-no-userns", _set("linux", "gidMappings", value=_MAP), "linux.gidMappings"),
    ("userns-no-maps", _add_user_ns, "linux.uidMappings"),
    ("userns-no-gidmap", _all(_add_user_ns, _set("linux", "uidMappings", value=_MAP)),
     "linux.gidMappings"),
    ("map-size-zero",
     _all(_add_user_ns, _set("linux", "uidMappings", value=_MAP), _set(
         "linux", "gidMappings", value=[{"containerID": 0, "hostID": 1000, "size": 0}])),
     "linux.gidMappings[0].size"),
    ("sysctl-net-hostnet", _sysctl("net.ipv4.ip_forward", "network"),
     'linux.sysctl["net.ipv4.ip_forward"]'),
    ("sysctl-net-slash", _sysctl("net/ipv4/ip_forward", "network"),
     'linux.sysctl["net/ipv4/ip_forward"]'),
    ("sysctl-shm-hostipc", _sysctl("kernel.shmmax", "ipc"), 'linux.sysctl["kernel.shmmax"]'),
    ("sysctl-sem-hostipc", _sysctl("kernel.sem", "ipc"), 'linux.sysctl["kernel.sem"]'),
    ("sysctl-mqueue-hostipc", _sysctl("fs.mqueue.msg_max", "ipc"),
     'linux.sysctl["fs.mqueue.msg_max"]'),
    ("sysctl-domainname-hostuts",
     _all(_sysctl("kernel.domainname", "uts"), _set("hostname", value="")),
     'linux.sysctl["kernel.domainname"]'),
    ("sysctl-hostname-conflict", _sysctl("kernel.hostname"), 'linux.sysctl["kernel.hostname"]'),
    ("sysctl-not-namespaced", _sysctl("vm.swappiness"), 'linux.sysctl["vm.swappiness"]'),
    ("sysctl-kernel-other", _sysctl("kernel.pid_max"), 'linux.sysctl["kernel.pid_max"]'),
    ("mount-relative", _set("mounts", 2, "destination", value="dev/pts"),
     "mounts[2].destination"),
    ("bind-no-source", _set("mounts", 0, value={"destination": "/x", "options": ["rbind"]}),
     "mounts[0].source"),
    ("propagation", _set("linux", "rootfsPropagation", value="recursive"),
     "linux.rootfsPropagation"),
    ("masked-relative", _set("linux", "maskedPaths", 0, value="proc/kcore"),
     "linux.maskedPaths[0]"),
    ("readonly-relative", _set("linux", "readonlyPaths", 3, value="proc/sys"),
     "linux.readonlyPaths[3]"),
    ("masked-no-mountns", _drop_ns("mount"), "linux.maskedPaths"),
    ("device-type", _set("linux", "devices", value=[{"type": "x", "path": "/dev/x"}]),
     "linux.devices[0].type"),
    ("device-relative", _set("linux", "devices", value=[{"type": "p", "path": "dev/x"}]),
     "linux.devices[0].path"),
    ("device-no-minor",
     _set("linux", "devices", value=[{"type": "c", "path": "/dev/x", "major": 1}]),
     "linux.devices[0].minor"),
    ("seccomp-action", _set("linux", "seccomp", value={"defaultAction": "ALLOW"}),
     "linux.seccomp.defaultAction"),
    ("seccomp-errno-on-allow",
     _set("linux", "seccomp", value={"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}),
     "linux.seccomp.defaultErrnoRet"),
    ("seccomp-arch", _set("linux", "seccomp", value={"defaultAction": "SCMP_ACT_ALLOW",
                                                     "architectures": ["x86_64"]}),
     "linux.seccomp.architectures[0]"),
    ("seccomp-flag", _set("linux", "seccomp", value={"defaultAction": "SCMP_ACT_LOG",
                                                     "flags": ["TSYNC"]}),
     "linux.seccomp.flags[0]"),
    ("seccomp-no-names", _set("linux", "seccomp", value={
        "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_KILL"}]}),
     "linux.seccomp.syscalls[0].names"),
    ("seccomp-rule-errno", _set("linux", "seccomp", value={
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}),
     "linux.seccomp.syscalls[0].errnoRet"),
    ("seccomp-arg-index", _set("linux", "seccomp", value={
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}),
     "linux.seccomp.syscalls[0].args[0].index"),
    ("seccomp-arg-op", _set("linux", "seccomp", value={
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 0, "value": 0, "op": "=="}]}]}),
     "linux.seccomp.syscalls[0].args[0].op"),
    ("personality", _set("linux", "personality", value={"domain": "LINUX64"}),
     "linux.personality.domain"),
    ("hook-relative", _set("hooks", value={"createRuntime": [{"path": "bin/hook"}]}),
     "hooks.createRuntime[0].path"),
    ("hook-timeout", _set("hooks", value={"poststop": [{"path": "/h"}, {"path": "/h",
                                                                       "timeout": 0}]}),
     "hooks.poststop[1].timeout"),
    ("annotation-empty-key", _set("annotations", value={"": "x"}), "annotations"),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "obj"), [(m, o) for _, m, o in BAD], ids=[i for i, _, _ in BAD])
def test_error_names_field(bundle: Path, mutate: Mutator, obj: str) -> None:
    config = _base()
    mutate(config)
    spec = parse_spec(config)
    with pytest.raises(ConfigError) as exc:
        validate(spec, bundle)
    assert exc.value.obj == obj


GOOD: list[tuple[str, Mutator]] = [
    ("default", _all()),
    ("rootless-default", lambda c: c.update(default_spec(rootless=True, cgroupns=True))),
    ("net-sysctl-private-netns", _sysctl("net.ipv4.ip_forward")),
    ("ipc-sysctl-private-ipc", _sysctl("kernel.shm_rmid_forced")),
    ("mqueue-sysctl", _sysctl("fs.mqueue.queues_max")),
    ("domainname-sysctl", _sysctl("kernel.domainname")),
    ("hostname-sysctl-no-hostname", _all(_sysctl("kernel.hostname"), _set("hostname", value=""))),
    ("pipe-device-no-major", _set("linux", "devices", value=[{"type": "p", "path": "/dev/f"}])),
    ("ns-existing-path", _set("linux", "namespaces", 0, "path", value="/proc/self/ns/pid")),
    ("userns-path-no-maps", lambda c: c["linux"]["namespaces"].append(
        {"type": "user", "path": "/proc/self/ns/user"})),
    ("time-cgroup-ns", lambda c: c["linux"]["namespaces"].extend(
        [{"type": "time"}, {"type": "cgroup"}])),
    ("seccomp-errno", _set("linux", "seccomp", value={
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_MASKED_EQ",
                                "valueTwo": 1}]}]})),
    ("hooks", _set("hooks", value={"prestart": [{"path": "/bin/true", "timeout": 5}]})),
    ("rbind-propagation", _set("linux", "rootfsPropagation", value="rslave")),
]  # fmt: skip


@pytest.mark.parametrize("mutate", [m for _, m in GOOD], ids=[i for i, _ in GOOD])
def test_valid_configs_pass(bundle: Path, mutate: Mutator) -> None:
    config = _base()
    mutate(config)
    validate(parse_spec(config), bundle)


def test_absolute_rootfs_ignores_bundle(
    bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config = _base()
    config["root"]["path"] = str(bundle / "rootfs")
    validate(parse_spec(config), tmp_path_factory.mktemp("elsewhere"))


@pytest.mark.skipif(not os.path.exists("/proc/self/ns/net"), reason="no /proc/self/ns/net")
def test_net_sysctl_rejected_in_joined_host_netns(bundle: Path) -> None:
    config = _base()
    config["linux"]["namespaces"][1]["path"] = "/proc/self/ns/net"
    config["linux"]["sysctl"] = {"net.core.somaxconn": "256"}
    with pytest.raises(ConfigError) as exc:
        validate(parse_spec(config), bundle)
    assert exc.value.obj == 'linux.sysctl["net.core.somaxconn"]'


def test_capability_and_rlimit_tables() -> None:
    assert len(CAPABILITIES) == len(set(CAPABILITIES)) == 41
    assert CAPABILITIES[0] == "CAP_CHOWN"
    assert CAPABILITIES.index("CAP_SYS_ADMIN") == 21
    assert CAPABILITIES[-1] == "CAP_CHECKPOINT_RESTORE"
    assert RLIMITS.index("RLIMIT_NOFILE") == 7
    assert len(RLIMITS) == 16
