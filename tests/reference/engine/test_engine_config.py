"""refd's configuration: daemon.json + flags, refused like dockerd refuses them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reference.engine.config import DaemonConfig, load, parse_flags, reload, validate
from reference.errors import ConfigError


def write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(document))
    return path


def test_defaults_without_a_file(tmp_path: Path) -> None:
    config = load([], default_file=tmp_path / "absent.json")
    assert config.data_root == Path("/var/lib/refd")
    assert config.default_runtime == "refrun"
    assert "refrun" in config.runtimes
    assert config.hosts == ["unix:///var/run/refd.sock"]


def test_file_and_flags_are_merged(tmp_path: Path) -> None:
    path = write(tmp_path, {"dns": ["198.51.100.53"], "live-restore": True, "mtu": 1400})
    config = load(
        [
            "--config-file",
            str(path),
            "--data-root",
            str(tmp_path / "d"),
            "-H",
            "unix:///tmp/x.sock",
            "--insecure-registry",
            "127.0.0.1:5000",
        ]
    )
    assert config.dns == ["198.51.100.53"]
    assert config.live_restore is True
    assert config.mtu == 1400
    assert config.data_root == tmp_path / "d"
    assert config.hosts == ["unix:///tmp/x.sock"]
    assert config.insecure_registries == ["127.0.0.1:5000"]


def test_unknown_key_is_named_in_dockers_words(tmp_path: Path) -> None:
    path = write(tmp_path, {"bogus-key": 1, "dns": []})
    with pytest.raises(ConfigError) as info:
        load(["--config-file", str(path)])
    assert "the following directives don't match any configuration option: bogus-key" in str(
        info.value
    )


def test_bridge_and_bip_exclude_each_other(tmp_path: Path) -> None:
    path = write(tmp_path, {"bridge": "br-x", "bip": "10.88.0.1/24"})
    with pytest.raises(ConfigError, match="You specified -b & --bip, mutually exclusive options"):
        load(["--config-file", str(path)])


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ({"mtu": "big"}, "mtu"),
        ({"mtu": 10}, "mtu"),
        ({"live-restore": "yes"}, "live-restore"),
        ({"bip": "10.0.0.1"}, "bip"),
        ({"fixed-cidr": "nope"}, "fixed-cidr"),
        ({"dns": ["not-an-ip"]}, "dns"),
        ({"log-level": "loud"}, "log-level"),
        ({"default-runtime": "crun-missing"}, "default-runtime"),
        ({"insecure-registries": ["http://x:5000"]}, "insecure-registries"),
        ({"runtimes": {"x": {}}}, "runtimes.x"),
        ({"hosts": ["tcp://127.0.0.1:2375"]}, "hosts"),
        ({"userns-remap": "default"}, "userns-remap"),
        ({"cgroup-parent": "relative"}, "cgroup-parent"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, document: dict[str, object], key: str) -> None:
    path = write(tmp_path, document)
    with pytest.raises(ConfigError) as info:
        load(["--config-file", str(path)])
    assert info.value.obj == key, str(info.value)


def test_tcp_needs_tls_settings() -> None:
    config = DaemonConfig(hosts=["tcp://127.0.0.1:2376"], tlscert="c.pem", tlskey="k.pem")
    validate(config)  # with a certificate it is allowed
    config.tlsverify = True
    with pytest.raises(ConfigError, match="tlscacert"):
        validate(config)


def test_flag_and_file_may_not_both_set_a_key(tmp_path: Path) -> None:
    path = write(tmp_path, {"mtu": 1400})
    with pytest.raises(ConfigError, match="specified both as a flag and in the configuration"):
        load(["--config-file", str(path), "--mtu", "1300"])


def test_flags_parse_like_dockerd() -> None:
    values, config_file = parse_flags(
        [
            "--live-restore",
            "--iptables=false",
            "--dns",
            "1.1.1.1",
            "--dns=8.8.8.8",
            "--add-runtime",
            "crun=/usr/bin/crun",
            "--config-file=/x.json",
        ]
    )
    assert values == {
        "live-restore": True,
        "iptables": False,
        "dns": ["1.1.1.1", "8.8.8.8"],
        "runtimes": {"crun": {"path": "/usr/bin/crun"}},
    }
    assert config_file == Path("/x.json")
    with pytest.raises(ConfigError, match="unknown flag"):
        parse_flags(["--bogus"])


def test_runtimes_extend_the_builtin_ones(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "runtimes": {"mine": {"path": "/bin/true", "runtimeArgs": ["--x"]}},
            "default-runtime": "mine",
        },
    )
    config = load(["--config-file", str(path)])
    assert config.runtime().path == "/bin/true"
    assert config.runtime().args == ("--x",)
    assert "refrun" in config.runtimes


def test_sighup_reload_applies_only_reloadable_keys(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({"mtu": 1400, "debug": True}))
    config = load(["--config-file", str(path)], None)
    path.write_text(json.dumps({"mtu": 1300, "insecure-registries": ["reg:5000"]}))
    applied = reload(config)
    assert config.insecure_registries == ["reg:5000"]
    assert config.debug is False  # gone from the file: back to the default
    assert config.mtu == 1400  # not reloadable: as refd started
    assert applied["insecure-registries"] == ["reg:5000"]
    path.write_text(json.dumps({"insecure-registries": ["http://bad"]}))
    with pytest.raises(ConfigError, match="should not contain"):
        reload(config)
    assert config.insecure_registries == ["reg:5000"]  # a bad file changes nothing
