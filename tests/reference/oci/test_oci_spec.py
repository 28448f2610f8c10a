"""Parsing config.json: round trip of the default spec, and type errors naming the JSON path."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from reference.errors import ConfigError, NotFoundError
from reference.oci.default import DOCKER_DEFAULT_CAPS, default_spec
from reference.oci.spec import Namespace, Rlimit, load_spec, parse_spec, spec_to_dict
from reference.oci.validate import CAPABILITIES

_DELETE = object()


def _mutate(data: dict[str, object], keys: tuple[str | int, ...], value: object) -> None:
    """Set (or delete, with _DELETE) the item at `keys` inside a decoded config."""
    node: object = data
    for k in keys[:-1]:
        node = node[k]  # type: ignore[index]
    if value is _DELETE:
        del node[keys[-1]]  # type: ignore[attr-defined]
    else:
        node[keys[-1]] = value  # type: ignore[index]


@pytest.mark.parametrize(
    ("rootless", "cgroupns"),
    [(False, False), (False, True), (True, True)],
    ids=["plain", "cgroupns", "rootless"],
)
def test_default_spec_round_trip(rootless: bool, cgroupns: bool) -> None:
    data = default_spec(rootless=rootless, cgroupns=cgroupns)
    spec = parse_spec(data)
    assert spec_to_dict(spec) == data


def test_default_spec_fields() -> None:
    spec = parse_spec(default_spec(cgroupns=False))
    assert spec.oci_version == "1.2.0"
    assert spec.root is not None
    assert (spec.root.path, spec.root.readonly) == ("rootfs", True)
    assert spec.process is not None
    assert spec.process.terminal
    assert spec.process.args == ("sh",)
    assert spec.process.user.uid == 0
    assert spec.process.rlimits == (Rlimit("RLIMIT_NOFILE", 1024, 1024),)
    assert spec.process.capabilities is not None
    assert spec.process.capabilities.bounding == (
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
    )
    assert [m.destination for m in spec.mounts] == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
    ]
    assert [ns.type for ns in spec.linux.namespaces] == ["pid", "network", "ipc", "uts", "mount"]
    assert spec.linux.namespace("uts") == Namespace("uts")
    assert spec.linux.namespace("user") is None
    assert spec.linux.resources == {"devices": [{"allow": False, "access": "rwm"}]}
    assert "/proc/kcore" in spec.linux.masked_paths
    assert "/proc/sys" in spec.linux.readonly_paths


def test_default_spec_args_and_rootless() -> None:
    data = default_spec(["echo", "hi"], rootless=True, cgroupns=False)
    spec = parse_spec(data)
    assert spec.process is not None
    assert spec.process.args == ("echo", "hi")
    assert [ns.type for ns in spec.linux.namespaces] == ["pid", "ipc", "uts", "mount", "user"]
    assert len(spec.linux.uid_mappings) == len(spec.linux.gid_mappings) == 1
    assert spec.linux.resources is None
    sys_mount = next(m for m in spec.mounts if m.destination == "/sys")
    assert (sys_mount.type, sys_mount.source) == ("none", "/sys")
    assert "rbind" in sys_mount.options
    assert not any(o.startswith(("uid=", "gid=")) for m in spec.mounts for o in m.options)


def test_default_spec_is_fresh_each_call() -> None:
    first = default_spec(cgroupns=False)
    _mutate(first, ("process", "args", 0), "bash")
    assert default_spec(cgroupns=False)["process"]["args"] == ["sh"]  # type: ignore[index]


def test_docker_default_caps() -> None:
    assert len(DOCKER_DEFAULT_CAPS) == len(set(DOCKER_DEFAULT_CAPS)) == 14
    assert set(DOCKER_DEFAULT_CAPS) <= set(CAPABILITIES)


@pytest.mark.parametrize(
    ("keys", "value", "obj"),
    [
        (("ociVersion",), _DELETE, "ociVersion"),
        (("ociVersion",), 1, "ociVersion"),
        (("root",), _DELETE, "root"),
        (("root", "path"), _DELETE, "root.path"),
        (("root", "readonly"), "yes", "root.readonly"),
        (("process",), _DELETE, "process"),
        (("process",), [], "process"),
        (("process", "args", 0), 1, "process.args[0]"),
        (("process", "args"), "sh", "process.args"),
        (("process", "terminal"), 1, "process.terminal"),
        (("process", "cwd"), _DELETE, "process.cwd"),
        (("process", "user"), _DELETE, "process.user"),
        (("process", "user", "uid"), _DELETE, "process.user.uid"),
        (("process", "user", "uid"), -1, "process.user.uid"),
        (("process", "user", "gid"), 2**32, "process.user.gid"),
        (("process", "user", "gid"), True, "process.user.gid"),
        (("process", "user", "gid"), 0.0, "process.user.gid"),
        (("process", "user", "additionalGids"), [1, "2"], "process.user.additionalGids[1]"),
        (("process", "consoleSize"), {"height": 1}, "process.consoleSize.width"),
        (("process", "capabilities", "effective", 2), None, "process.capabilities.effective[2]"),
        (("process", "rlimits", 0, "hard"), 2**64, "process.rlimits[0].hard"),
        (("process", "rlimits", 0, "soft"), _DELETE, "process.rlimits[0].soft"),
        (("process", "oomScoreAdj"), "0", "process.oomScoreAdj"),
        (("hostname",), 7, "hostname"),
        (("mounts", 1, "options"), "ro", "mounts[1].options"),
        (("mounts", 2, "destination"), _DELETE, "mounts[2].destination"),
        (("hooks",), {"prestart": [{"args": []}]}, "hooks.prestart[0].path"),
        (("hooks",), {"poststop": [{"path": "/x", "timeout": "1"}]}, "hooks.poststop[0].timeout"),
        (("annotations",), {"a": 1}, 'annotations["a"]'),
        (("linux",), [], "linux"),
        (("linux", "namespaces", 2, "type"), 5, "linux.namespaces[2].type"),
        (("linux", "namespaces", 2), "uts", "linux.namespaces[2]"),
        (("linux", "sysctl"), {"net.ipv4.ip_forward": 1}, 'linux.sysctl["net.ipv4.ip_forward"]'),
        (("linux", "resources"), [], "linux.resources"),
        (("linux", "uidMappings"), [{"containerID": 0, "size": 1}], "linux.uidMappings[0].hostID"),
        (("linux", "devices"), [{"type": "c"}], "linux.devices[0].path"),
        (
            ("linux", "devices"),
            [{"type": "c", "path": "/d", "major": "1"}],
            "linux.devices[0].major",
        ),
        (("linux", "seccomp"), {"syscalls": []}, "linux.seccomp.defaultAction"),
        (
            ("linux", "seccomp"),
            {"defaultAction": "A", "syscalls": [{"names": ["x"], "action": "A", "args": [{}]}]},
            "linux.seccomp.syscalls[0].args[0].index",
        ),
        (("linux", "personality"), {"flags": []}, "linux.personality.domain"),
        (("linux", "rootfsPropagation"), False, "linux.rootfsPropagation"),
    ],
)
def test_type_errors_name_the_json_path(
    keys: tuple[str | int, ...], value: object, obj: str
) -> None:
    data = copy.deepcopy(default_spec(cgroupns=False))
    _mutate(data, keys, value)
    with pytest.raises(ConfigError) as exc:
        parse_spec(data)
    assert exc.value.obj == obj


@pytest.mark.parametrize("data", [[], "x", None, 3])
def test_top_level_must_be_object(data: object) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_spec(data)
    assert exc.value.obj == "(top level)"


def test_partial_config_without_create() -> None:
    spec = parse_spec({"ociVersion": "1.0.0"}, create=False)
    assert (spec.root, spec.process, spec.linux.namespaces) == (None, None, ())


def test_unknown_fields_ignored_and_null_is_absent() -> None:
    data = default_spec(cgroupns=False)
    data["vm"] = {"hypervisor": {}}
    _mutate(data, ("process", "ioPriority"), {"class": "IOPRIO_CLASS_IDLE"})
    _mutate(data, ("linux", "seccomp"), {"defaultAction": "SCMP_ACT_ALLOW", "architectures": None})
    spec = parse_spec(data)
    assert spec.linux.seccomp is not None
    assert spec.linux.seccomp.architectures == ()


def test_load_spec(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(default_spec(cgroupns=False), indent=2))
    assert load_spec(path) == parse_spec(default_spec(cgroupns=False))


def test_malformed_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{\n  "ociVersion": "1.0.0",\n  "root": {"path": "rootfs",}\n}\n')
    with pytest.raises(ConfigError) as exc:
        load_spec(path)
    assert exc.value.obj == f"{path}:3:29"
    assert str(path) in str(exc.value)
    assert "malformed JSON" in str(exc.value)


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as exc:
        load_spec(tmp_path / "config.json")
    assert exc.value.obj == str(tmp_path / "config.json")


def test_every_spec_field_has_a_decoder() -> None:
    """The decoder reads annotations as strings; a form it does not know would fail only when
    a config sets that field, so build every class's plan up front."""
    from reference.oci import spec as spec_module
    from reference.oci.spec_decode import RANGES, _plan
    from reference.records import is_record

    classes = [c for c in vars(spec_module).values() if isinstance(c, type) and is_record(c)]
    assert len(classes) == 18  # Root ... Spec
    for cls in classes:
        assert len(_plan(cls)) == len(cls.__record_fields__)  # type: ignore[attr-defined]
    assert set(RANGES) == {"U32", "U64", "I64"}
