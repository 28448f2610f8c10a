"""refctl's flag parser, Go-template subset, run options → create body, and tables."""

from __future__ import annotations

from typing import Any

import pytest

from reference.cli.ctl import output, runopts, template
from reference.cli.ctl.common import split_ref
from reference.cli.ctl.flags import UsageError, flag, parse, parse_filters

SPEC = [
    flag("--detach,-d", "bool", False),
    flag("--name"),
    flag("--env,-e", "list"),
    flag("--interactive,-i", "bool", False),
    flag("--memory,-m"),
]


def test_long_short_inline_and_grouped_flags() -> None:
    values, rest = parse(
        "run",
        ["-di", "--name=web", "-e", "A=1", "-eB=2", "-m64m", "img", "x"],
        SPEC,
        interspersed=False,
    )
    assert values == {
        "detach": True,
        "interactive": True,
        "name": "web",
        "env": ["A=1", "B=2"],
        "memory": "64m",
    }
    assert rest == ["img", "x"]


def test_command_flags_are_not_ours_after_the_image() -> None:
    values, rest = parse("run", ["img", "sh", "-c", "--name"], SPEC, interspersed=False)
    assert (values["name"], rest) == (None, ["img", "sh", "-c", "--name"])
    values, rest = parse("ps", ["a", "-d", "b"], SPEC)
    assert (values["detach"], rest) == (True, ["a", "b"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus"], "unknown flag: --bogus"),
        (["-z"], "unknown shorthand flag: 'z' in -z"),
        (["--name"], "flag needs an argument: --name"),
        (
            ["--detach=maybe"],
            'invalid argument "maybe" for "--detach" flag: strconv.ParseBool: '
            'parsing "maybe": invalid syntax',
        ),
    ],
)
def test_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse("run", argv, SPEC)
    assert str(info.value) == f"{message}\nSee 'refctl run --help'."


STATE: dict[str, Any] = {
    "Id": "abc",
    "State": {"Pid": 42, "Running": True, "Paused": False},
    "Config": {"Labels": {"k": "v"}, "Cmd": ["a", "b"]},
    "Empty": None,
}


@pytest.mark.parametrize(
    ("fmt", "out"),
    [
        ("{{.State.Pid}}", "42"),
        ("{{.Id}}", "abc"),
        ("{{json .State}}", '{"Pid":42,"Running":true,"Paused":false}'),
        ("{{.State.Running}}/{{.State.Paused}}", "true/false"),
        ('{{index .Config.Labels "k"}}', "v"),
        ("{{.Config.Cmd}}", "[a b]"),
        ('{{join .Config.Cmd ","}}', "a,b"),
        ("{{upper .Id}}", "ABC"),
        ("{{.Missing}}", "<no value>"),
        ("{{.Config.Labels}}", "map[k:v]"),
        ("{{.Empty}}", "<nil>"),
        ("id={{ .Id }}\\t.", "id=abc\t."),
    ],
)
def test_templates(fmt: str, out: str) -> None:
    assert template.render(fmt, STATE) == out


def test_unsupported_template_actions_are_named() -> None:
    with pytest.raises(template.TemplateError, match="unsupported template action"):
        template.render("{{range .Config.Cmd}}x{{end}}", STATE)
    with pytest.raises(template.TemplateError, match="can't evaluate field Pid"):
        template.render("{{.Id.Pid}}", STATE)


def test_table_format_and_plain_tables() -> None:
    rows = [{"Names": "web", "ID": "abc"}, {"Names": "db-long", "ID": "d"}]
    text = output.formatted(
        "table {{.ID}}\t{{.Names}}", rows, {"ID": "CONTAINER ID", "Names": "NAMES"}
    )
    assert text.splitlines() == [
        "CONTAINER ID   NAMES",
        "abc            web",
        "d              db-long",
    ]
    assert output.formatted("{{.Names}}", rows, {}) == "web\ndb-long\n"


def build(argv: list[str]) -> dict[str, Any]:
    values, rest = parse("run", argv, runopts.RUN_FLAGS, interspersed=False)
    return runopts.build("run", values, rest[0], rest[1:])


def test_run_options_build_the_create_body(tmp_path: Any) -> None:
    body = build(
        [
            "-d",
            "--rm",
            "-h",
            "web",
            "--domainname",
            "ex.test",
            "-m",
            "64m",
            "--memory-swap",
            "-1",
            "--cpus",
            "0.5",
            "--cpu-shares",
            "512",
            "--cpuset-cpus",
            "0",
            "--pids-limit",
            "20",
            "--oom-kill-disable",
            "--ipc",
            "shareable",
            "--pid",
            "host",
            "--uts",
            "host",
            "--network",
            "none",
            "--cgroupns",
            "private",
            "--dns",
            "198.51.100.53",
            "--dns-search",
            "a.test",
            "--dns-option",
            "ndots:2",
            "--add-host",
            "db:198.51.100.7",
            "-e",
            "A=1",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "KILL",
            "--security-opt",
            "no-new-privileges",
            "--read-only",
            "--shm-size",
            "128m",
            "--mount",
            f"type=bind,source={tmp_path},target=/data,readonly,bind-propagation=rshared",
            "-p",
            "8080:80",
            "img",
            "sleep",
            "1",
        ]
    )
    hc = body["HostConfig"]
    assert (body["Image"], body["Cmd"], body["Hostname"], body["Domainname"]) == (
        "img",
        ["sleep", "1"],
        "web",
        "ex.test",
    )
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["CpuShares"]) == (
        64 << 20,
        -1,
        500_000_000,
        512,
    )
    assert (hc["PidsLimit"], hc["OomKillDisable"], hc["AutoRemove"], hc["ShmSize"]) == (
        20,
        True,
        True,
        128 << 20,
    )
    assert (hc["IpcMode"], hc["PidMode"], hc["UTSMode"], hc["NetworkMode"], hc["CgroupnsMode"]) == (
        "shareable",
        "host",
        "host",
        "none",
        "private",
    )
    assert hc["Mounts"] == [
        {
            "Type": "bind",
            "Source": str(tmp_path),
            "Target": "/data",
            "ReadOnly": True,
            "BindOptions": {"Propagation": "rshared"},
        }
    ]
    assert hc["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert (hc["Dns"], hc["DnsSearch"], hc["DnsOptions"], hc["ExtraHosts"]) == (
        ["198.51.100.53"],
        ["a.test"],
        ["ndots:2"],
        ["db:198.51.100.7"],
    )
    assert hc["SecurityOpt"] == ["no-new-privileges"]
    assert hc["ReadonlyRootfs"] is True
    assert body["Env"] == ["A=1"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["-m", "12x", "img"],
            'invalid argument "12x" for "-m, --memory" flag: invalid size: \'12x\'',
        ),
        (["--pids-limit", "many", "img"], 'invalid argument "many" for "--pids-limit" flag'),
        (["--cpus", "lots", "img"], 'invalid argument "lots" for "--cpus" flag'),
        (["-t", "img"], "a terminal (-t) is not supported by refd yet"),
        (["-p", "x:y", "img"], "invalid containerPort: y"),
    ],
)
def test_run_option_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build(argv)


def test_split_ref() -> None:
    assert split_ref("127.0.0.1:5000/bb:t") == ("127.0.0.1:5000/bb", "t")
    assert split_ref("127.0.0.1:5000/bb") == ("127.0.0.1:5000/bb", "")
    assert split_ref("bb") == ("bb", "")


def test_filters_take_the_engine_api_shape_and_refuse_a_missing_value() -> None:
    assert parse_filters("ps", ["name=a", "name=b", "status=exited"]) == {
        "name": {"a": True, "b": True},
        "status": {"exited": True},
    }
    with pytest.raises(UsageError, match="expected name=value"):
        parse_filters("images", ["dangling"])
