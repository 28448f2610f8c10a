"""refrun's command line: the flag parser, global flags, and the verbs' own parsing helpers."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from reference.cli import refrun
from reference.errors import ConfigError
from reference.oci import args
from reference.oci.spec import parse_process
from reference.oci.teardown import parse_signal
from reference.oci.verbs import exec as exec_verb
from reference.oci.verbs import update

TABLE = args.flags(
    ("--bundle|-b", "bundle", args.VALUE),
    ("--detach|-d", "detach", args.BOOL),
    ("--env|-e", "env", args.MULTI),
)


@pytest.mark.parametrize(
    "argv",
    [
        ["--bundle", "/b", "c1"],
        ["--bundle=/b", "c1"],
        ["-b", "/b", "c1"],
        ["-bundle", "/b", "c1"],  # Go's flag package: one dash for a long name
        ["c1", "--bundle", "/b"],  # flags may follow positionals
    ],
)
def test_value_flag_spellings(argv: list[str]) -> None:
    assert args.parse(argv, TABLE) == ({"bundle": "/b"}, ["c1"])


def test_bool_and_multi_flags() -> None:
    opts, pos = args.parse(["-d", "-e", "A=1", "--env=B=2", "--detach=false", "x"], TABLE)
    assert opts == {"detach": False, "env": ["A=1", "B=2"]}
    assert pos == ["x"]


def test_double_dash_ends_flags() -> None:
    assert args.parse(["--", "-d", "x"], TABLE) == ({}, ["-d", "x"])


def test_stop_at_positional_keeps_the_command_intact() -> None:
    opts, pos = args.parse(["-d", "c1", "sh", "-c", "--bundle"], TABLE, stop_at_positional=True)
    assert opts == {"detach": True}
    assert pos == ["c1", "sh", "-c", "--bundle"]


@pytest.mark.parametrize(
    ("argv", "obj"),
    [(["--nope"], "--nope"), (["--bundle"], "--bundle"), (["-d=maybe"], "-d")],
)
def test_bad_flags_name_the_flag(argv: list[str], obj: str) -> None:
    with pytest.raises(ConfigError) as e:
        args.parse(argv, TABLE)
    assert e.value.obj == obj


def test_one_id() -> None:
    assert args.one_id(["c1"], "state") == "c1"
    with pytest.raises(ConfigError, match="exactly 1 argument"):
        args.one_id([], "state")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert refrun.main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("refrun version ")
    assert "spec: 1." in out


def test_unknown_verb_and_flag_fail(capsys: pytest.CaptureFixture[str]) -> None:
    assert refrun.main(["frobnicate"]) == 1
    assert "unknown command: frobnicate" in capsys.readouterr().err
    assert refrun.main(["--frob", "state", "x"]) == 1
    assert "--frob" in capsys.readouterr().err


def test_systemd_cgroup_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert refrun.main(["--systemd-cgroup", "state", "x"]) == 1
    assert "systemd cgroup driver is not supported" in capsys.readouterr().err


def test_bad_log_format(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert refrun.main(["--root", str(tmp_path), "--log-format", "xml", "list"]) == 1
    assert "--log-format" in capsys.readouterr().err


def test_global_flags_reach_the_verb(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = tmp_path / "log"
    code = refrun.main(
        ["--root", str(tmp_path), "--log", str(log), "--log-format=json", "state", "c1"]
    )
    assert code == 1
    assert "container does not exist: c1" in capsys.readouterr().err
    assert '"level":"error"' in log.read_text()


@pytest.mark.parametrize(
    ("text", "num"),
    [("KILL", 9), ("SIGKILL", 9), ("9", 9), ("term", 15), ("SIGRTMIN+2", signal.SIGRTMIN + 2)],
)
def test_signals(text: str, num: int) -> None:
    assert parse_signal(text) == num


@pytest.mark.parametrize("text", ["NOPE", "0", "999", "SIG_DFL", "KILL+1"])
def test_bad_signal(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_signal(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("-1", -1),
        ("1024", 1024),
        ("64m", 64 << 20),
        ("1g", 1 << 30),
        ("2KiB", 2048),
        ("1.5k", 1536),
    ],
)
def test_ram_in_bytes(text: str, value: int) -> None:
    assert update.ram_in_bytes(text, "--memory") == value


def test_update_flags_make_a_resources_object(tmp_path: Path) -> None:
    extra = tmp_path / "r.json"
    extra.write_text('{"cpu": {"shares": 512}, "pids": {"limit": 5}}')
    opts, _ = args.parse(
        ["-r", str(extra), "--memory=64m", "--memory-swap", "-1", "--pids-limit=10",
         "--cpu-quota", "50000", "--cpuset-cpus", "0", "c1"],
        update.FLAGS,
    )  # fmt: skip
    assert update.resources_from(opts) == {
        "cpu": {"shares": 512, "quota": 50000, "cpus": "0"},
        "pids": {"limit": 10},
        "memory": {"limit": 64 << 20, "swap": -1},
    }


def test_update_bad_number_names_the_flag() -> None:
    opts, _ = args.parse(["--pids-limit=lots", "c1"], update.FLAGS)
    with pytest.raises(ConfigError) as e:
        update.resources_from(opts)
    assert e.value.obj == "--pids-limit"


BASE = parse_process(
    {
        "user": {"uid": 0, "gid": 0},
        "cwd": "/",
        "args": ["sleep"],
        "env": ["PATH=/bin", "A=1"],
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]},
    }
)


def test_exec_process_from_flags() -> None:
    opts, pos = args.parse(
        ["-e", "A=2", "--cwd", "/tmp", "-u", "1000:1000", "-g", "10", "--cap", "CAP_CHOWN",
         "--no-new-privs", "c1", "id", "-u"],
        exec_verb.FLAGS,
        stop_at_positional=True,
    )  # fmt: skip
    proc = exec_verb.build_process(opts, pos[1:], BASE)
    assert proc.args == ("id", "-u")
    assert proc.env == ("PATH=/bin", "A=2")
    assert proc.cwd == "/tmp"
    assert (proc.user.uid, proc.user.gid, proc.user.additional_gids) == (1000, 1000, (10,))
    assert proc.capabilities is not None
    assert proc.capabilities.bounding == ("CAP_KILL", "CAP_CHOWN")
    assert proc.no_new_privileges


def test_exec_process_file(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text('{"user": {"uid": 5, "gid": 6}, "cwd": "/", "args": ["true"]}')
    proc = exec_verb.build_process({"process": str(f)}, [], BASE)
    assert (proc.user.uid, proc.args) == (5, ("true",))
    f.write_text('{"user": {"uid": "x", "gid": 6}, "cwd": "/", "args": ["true"]}')
    with pytest.raises(ConfigError) as e:
        exec_verb.build_process({"process": str(f)}, [], BASE)
    assert e.value.obj == "process.user.uid"


def test_exec_without_command() -> None:
    with pytest.raises(ConfigError, match="command is required"):
        exec_verb.build_process({}, [], BASE)
