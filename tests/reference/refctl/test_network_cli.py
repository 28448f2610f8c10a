"""refctl's networking: run/create flags → create body, `network` verbs → requests and
output, `ps` PORTS and `port`, all without a daemon (a recording client stands in). The
expected bodies are what docker CLI 28 sent for the same flags at API 1.41."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pytest

from reference.cli import refctl
from reference.cli.ctl import netopts, networks, runopts
from reference.cli.ctl.client import ApiError
from reference.cli.ctl.common import Ctx
from reference.cli.ctl.containers import _ps_row
from reference.cli.ctl.flags import UsageError, parse


def build(*argv: str) -> dict[str, Any]:
    values, rest = parse("run", argv, runopts.RUN_FLAGS, interspersed=False)
    return runopts.build("run", values, rest[0], rest[1:])


# -- run/create --------------------------------------------------------------------------
def test_publish_expose_and_user_network_as_docker_sends_them() -> None:
    body = build(
        *("--network", "n1", "--ip", "10.1.0.5", "--network-alias", "a1", "--net-alias", "a2"),
        *("--mac-address", "02:42:ac:11:00:09", "-p", "8080:80"),
        *("-p", "127.0.0.1:9000-9001:90-91/udp", "-p", "7000-7005:70", "-p", "[::1]::60", "-P"),
        *("--expose", "100-101", "--expose", "102/udp", "img"),
    )
    hc = body["HostConfig"]
    assert hc["NetworkMode"] == "n1"
    assert hc["PublishAllPorts"] is True
    assert hc["PortBindings"] == {
        "60/tcp": [{"HostIp": "::1", "HostPort": ""}],
        "70/tcp": [{"HostIp": "", "HostPort": "7000-7005"}],
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "90/udp": [{"HostIp": "127.0.0.1", "HostPort": "9000"}],
        "91/udp": [{"HostIp": "127.0.0.1", "HostPort": "9001"}],
    }
    assert set(body["ExposedPorts"]) == {
        *("100/tcp", "101/tcp", "102/udp", "60/tcp", "70/tcp", "80/tcp", "90/udp", "91/udp")
    }
    assert body["MacAddress"] == "02:42:ac:11:00:09"
    assert body["NetworkingConfig"] == {
        "EndpointsConfig": {
            "n1": {"IPAMConfig": {"IPv4Address": "10.1.0.5"}, "Aliases": ["a1", "a2"]}
        }
    }


def test_network_modes_and_endpoints() -> None:
    def networking(*argv: str) -> tuple[str, dict[str, Any]]:
        body = build(*argv, "img")
        return body["HostConfig"]["NetworkMode"], body["NetworkingConfig"]["EndpointsConfig"]

    assert networking() == ("default", {})
    assert networking("--network", "host") == ("host", {})
    assert networking("--net=none") == ("none", {})
    # a lone network without options gets no entry (the engine makes it), as docker sends it
    assert networking("--network", "n1") == ("n1", {})
    assert networking("--network", "n1", "--network", "n2") == ("n1", {"n1": {}, "n2": {}})
    assert networking("--network=bridge", "--ip=172.17.0.9") == (
        "bridge",
        {"bridge": {"IPAMConfig": {"IPv4Address": "172.17.0.9"}}},
    )
    assert "MacAddress" not in build("img")
    assert build("img")["HostConfig"]["PublishAllPorts"] is False


def test_same_port_published_twice_keeps_both_bindings() -> None:
    hc = build("-p", "127.0.0.1:8081:80", "-p", "8082:80", "img")["HostConfig"]
    assert hc["PortBindings"] == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8081"}, {"HostIp": "", "HostPort": "8082"}]
    }


def test_publish_long_syntax() -> None:
    hc = build("-p", "target=80,published=8080,protocol=udp", "img")["HostConfig"]
    assert hc["PortBindings"] == {"80/udp": [{"HostIp": "", "HostPort": "8080"}]}


RANGES = "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"
ALIASES = "network-scoped aliases are only supported for user-defined networks"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-p", "abc"], "invalid containerPort: abc"),
        (["-p", "80:abc"], "invalid containerPort: abc"),
        (["-p", "70000"], "invalid containerPort: 70000"),
        (["-p", "80-79"], "invalid containerPort: 80-79"),
        (["-p", "127.0.0.1:80"], "invalid hostPort: 127.0.0.1"),
        (["-p", "1.2.3.4.5:80:80"], "invalid IP address: 1.2.3.4.5"),
        (["-p", "a:b:c:d"], "invalid IP address: a:b"),
        (["-p", "80/foo"], "invalid proto: foo"),
        (["-p", "8000-8001:80-82"], RANGES),
        (["-p", "target=80,bogus"], "invalid publish opts format (should be name=value but got"),
        (["--expose", "80:90"], "invalid port format for --expose: 80:90"),
        (
            ["--expose", "abc"],
            'invalid range format for --expose: abc, error: strconv.ParseUint: parsing "abc": '
            "invalid syntax",
        ),
        (
            ["--expose", "90-80"],
            "invalid range format for --expose: 90-80, error: invalid range specified for port: "
            "90-80",
        ),
        (["--ip", "1.2.3"], "invalid IPv4 address: 1.2.3"),
        (["--network-alias", "x"], ALIASES),
        (["--network", "host", "--network-alias", "x"], ALIASES),
        (["--network", "n1", "--network", "n1"], 'network "n1" is specified multiple times'),
        (["--network", "n1", "--network", "host"], "conflicting options: cannot attach both"),
        (["--mac-address", "zz"], "zz is not a valid mac address"),
    ],
)
def test_network_flag_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        build(*argv, "img")
    text = str(info.value)
    assert text.startswith(message), text
    assert text.endswith("\nSee 'refctl run --help'.")


def test_run_usage_errors_exit_125(capsys: pytest.CaptureFixture[str]) -> None:
    code = refctl.main(["-H", "unix:///nonexistent.sock", "run", "-p", "abc", "img"])
    assert code == 125
    assert (
        capsys.readouterr().err == "refctl: invalid containerPort: abc\nSee 'refctl run --help'.\n"
    )


# -- network create ----------------------------------------------------------------------
class Recorder:
    """A stand-in for client.Client: records requests, answers from a table."""

    def __init__(self, answers: dict[tuple[str, str], Any] | None = None) -> None:
        self.answers = answers or {}
        self.requests: list[tuple[str, str, Any, Any]] = []

    def _answer(self, method: str, path: str) -> Any:
        answer = self.answers.get((method, path))
        if isinstance(answer, ApiError):
            raise answer
        return answer

    def request(self, method: str, path: str, query: Any = None, body: Any = None, **_: Any) -> Any:
        self.requests.append((method, path, query, body))
        return self._answer(method, path)

    def get(self, path: str, query: Any = None) -> Any:
        return self.request("GET", path, query)

    def post(self, path: str, query: Any = None, body: Any = None) -> Any:
        return self.request("POST", path, query, body)


def recording(answers: dict[tuple[str, str], Any] | None = None) -> tuple[Ctx, Recorder]:
    client = Recorder(
        {("POST", "/networks/create"): {"Id": "f" * 64, "Warning": ""}, **(answers or {})}
    )
    return Ctx(client, "network"), client  # type: ignore[arg-type]


def test_network_create_body_and_output(capsys: pytest.CaptureFixture[str]) -> None:
    ctx, client = recording()
    argv = [
        *("create", "-d", "bridge", "--subnet", "10.9.0.0/24", "--gateway", "10.9.0.1"),
        *("--ip-range", "10.9.0.128/25", "--aux-address", "a=10.9.0.5", "--aux-address"),
        *("b=10.9.0.6", "-o", "k=v", "--opt=k2=v2", "--label", "l=1", "--internal"),
        *("--attachable", "n9"),
    ]
    assert networks.network(ctx, argv) == 0
    assert capsys.readouterr().out == "f" * 64 + "\n"
    method, path, _, body = client.requests[-1]
    assert (method, path) == ("POST", "/networks/create")
    assert body == {
        "Name": "n9",
        "CheckDuplicate": True,
        "Driver": "bridge",
        "Scope": "",
        "EnableIPv6": False,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [
                {
                    "Subnet": "10.9.0.0/24",
                    "IPRange": "10.9.0.128/25",
                    "Gateway": "10.9.0.1",
                    "AuxiliaryAddresses": {"a": "10.9.0.5", "b": "10.9.0.6"},
                }
            ],
        },
        "Internal": True,
        "Attachable": True,
        "Ingress": False,
        "ConfigOnly": False,
        "ConfigFrom": None,
        "Options": {"k": "v", "k2": "v2"},
        "Labels": {"l": "1"},
    }


def test_network_create_defaults_and_ipv6_go_to_the_daemon() -> None:
    ctx, client = recording()
    networks.network(ctx, ["create", "--ipv6", "n10"])
    body = client.requests[-1][3]
    assert (body["Driver"], body["EnableIPv6"], body["IPAM"]["Config"]) == ("bridge", True, [])


NO_SUBNET = "every ip-range or gateway must have a corresponding subnet"
TWO_SUBNETS = ("--subnet", "10.0.0.0/24", "--subnet", "10.0.1.0/24")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], '"refctl network create" requires exactly 1 argument.'),
        (["a", "b"], '"refctl network create" requires exactly 1 argument.'),
        (["--gateway", "10.0.0.1", "n"], NO_SUBNET),
        (["--ip-range", "10.0.0.0/25", "n"], NO_SUBNET),
        (["--subnet", "10.0.0.0/24", "--gateway", "10.0.0.1,10.0.0.2", "n"], NO_SUBNET),
        (["--aux-address", "foo", "n"], "no matching subnet for aux-address "),
        (
            ["--subnet", "10.0.0.0/24", "--gateway", "10.1.0.1", "n"],
            "no matching subnet for gateway 10.1.0.1",
        ),
        (
            ["--subnet", "10.0.0.0/24", "--ip-range", "10.1.0.0/25", "n"],
            "no matching subnet for range 10.1.0.0/25",
        ),
        (
            ["--subnet", "10.0.0.0/16", "--subnet", "10.0.1.0/24", "n"],
            "multiple overlapping subnet configuration is not supported",
        ),
        (
            [*TWO_SUBNETS, "--gateway", "10.0.0.1", "--gateway", "10.0.0.2", "n"],
            "cannot configure multiple gateways (10.0.0.2, 10.0.0.1) for the same subnet "
            "(10.0.0.0/24)",
        ),
        (
            [*TWO_SUBNETS, "--ip-range", "10.0.0.0/25", "--ip-range", "10.0.0.128/25", "n"],
            "cannot configure multiple ranges (10.0.0.128/25, 10.0.0.0/25) on the same subnet "
            "(10.0.0.0/24)",
        ),
        (
            ["--subnet", "10.0.0.0/24", "--gateway", "x", "n"],
            'invalid argument "x" for "--gateway" flag: invalid string being converted to IP '
            "address: x",
        ),
        (
            ["--subnet", "10.0.0.0/24", "--ip-range", "x", "n"],
            'invalid argument "x" for "--ip-range" flag: invalid CIDR address: x',
        ),
    ],
)
def test_network_create_errors(argv: list[str], message: str) -> None:
    ctx, client = recording()
    with pytest.raises(UsageError) as info:
        networks.network(ctx, ["create", *argv])
    assert str(info.value).startswith(message), str(info.value)
    assert str(info.value).endswith("See 'refctl network create --help'.")
    assert client.requests == []


def test_two_subnets_with_their_gateways() -> None:
    config = netopts.ipam_config(
        "network create", ["10.0.0.0/24", "10.0.1.0/24"], [], ["10.0.1.254", "10.0.0.254"], {}
    )
    assert config == [
        {"Subnet": "10.0.0.0/24", "AuxiliaryAddresses": {}, "Gateway": "10.0.0.254"},
        {"Subnet": "10.0.1.0/24", "AuxiliaryAddresses": {}, "Gateway": "10.0.1.254"},
    ]


# -- ls, inspect, rm, connect, disconnect, prune -----------------------------------------
def listed(name: str, net_id: str, driver: str, created: str, **more: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "Id": net_id * 32,
        "Driver": driver,
        "Scope": "local",
        "Created": created,
        **more,
    }


LISTED = [
    listed("none", "e4", "null", "2026-11-28T00:14:25.397294412Z"),
    listed("n10", "9e", "bridge", "2026-11-28T02:43:07Z", Labels={"a": "1"}),
    listed("n9", "8a", "bridge", "2026-11-28T02:42:02.4526344Z", Internal=True),
    listed("bridge", "ab", "bridge", "2026-11-28T00:00:00Z"),
]


def test_network_ls(capsys: pytest.CaptureFixture[str]) -> None:
    ctx, client = recording({("GET", "/networks"): LISTED})
    assert networks.network(ctx, ["ls"]) == 0
    assert capsys.readouterr().out == (
        "NETWORK ID     NAME     DRIVER   SCOPE\n"
        "abababababab   bridge   bridge   local\n"
        "8a8a8a8a8a8a   n9       bridge   local\n"
        "9e9e9e9e9e9e   n10      bridge   local\n"
        "e4e4e4e4e4e4   none     null     local\n"
    )
    networks.network(ctx, ["ls", "-q", "--no-trunc", "-f", "driver=bridge", "-f", "name=n"])
    assert capsys.readouterr().out.splitlines() == ["ab" * 32, "8a" * 32, "9e" * 32, "e4" * 32]
    assert client.requests[-1][2] == {
        "filters": '{"driver": {"bridge": true}, "name": {"n": true}}'
    }
    fmt = "{{.Name}} {{.IPv6}} {{.Internal}} {{.Labels}} {{.CreatedAt}}"
    networks.network(ctx, ["list", "--format", fmt])
    assert capsys.readouterr().out.splitlines() == [
        "bridge false false  2026-11-28 00:00:00 +0000 UTC",
        "n9 false true  2026-11-28 02:42:02.4526344 +0000 UTC",
        "n10 false false a=1 2026-11-28 02:43:07 +0000 UTC",
        "none false false  2026-11-28 00:14:25.397294412 +0000 UTC",
    ]
    networks.network(ctx, ["ls", "--format", "table {{.Name}}\t{{.Driver}}"])
    assert capsys.readouterr().out.splitlines()[0] == "NAME     DRIVER"


def test_network_inspect(capsys: pytest.CaptureFixture[str]) -> None:
    missing = ApiError(404, "network gone not found")
    ctx, client = recording(
        {("GET", "/networks/n9"): LISTED[2], ("GET", "/networks/gone"): missing}
    )
    assert networks.network(ctx, ["inspect", "n9"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('[\n    {\n        "Name": "n9",')
    assert (
        networks.network(ctx, ["inspect", "-v", "-f", "{{.Name}}/{{.Internal}}", "n9", "gone"]) == 1
    )
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (
        "n9/true\n",
        "Error response from daemon: network gone not found\n",
    )
    assert client.requests[-2][2] == {"verbose": True}
    assert networks.network(ctx, ["inspect", "gone"]) == 1
    assert capsys.readouterr().out == "[]\n"


def test_network_rm_connect_disconnect(capsys: pytest.CaptureFixture[str]) -> None:
    predefined = ApiError(403, "bridge is a pre-defined network and cannot be removed")
    gone = ApiError(404, "network gone not found")
    ctx, client = recording(
        {("DELETE", "/networks/bridge"): predefined, ("DELETE", "/networks/gone"): gone}
    )
    assert networks.network(ctx, ["rm", "n9", "bridge", "n10"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "n9\nn10\n"
    assert (
        captured.err
        == "Error response from daemon: bridge is a pre-defined network and cannot be removed\n"
    )
    assert networks.network(ctx, ["remove", "-f", "gone"]) == 0
    assert networks.network(ctx, ["connect", "--ip", "10.9.0.7", "--alias", "x", "n9", "c1"]) == 0
    assert client.requests[-1] == (
        "POST",
        "/networks/n9/connect",
        None,
        {
            "Container": "c1",
            "EndpointConfig": {
                "IPAMConfig": {"IPv4Address": "10.9.0.7"},
                "Links": None,
                "Aliases": ["x"],
                "DriverOpts": {},
            },
        },
    )
    assert networks.network(ctx, ["disconnect", "-f", "n9", "c1"]) == 0
    assert client.requests[-1][1:] == (
        "/networks/n9/disconnect",
        None,
        {"Container": "c1", "Force": True},
    )
    with pytest.raises(
        UsageError, match=r'"refctl network connect" requires exactly 2 arguments\.'
    ):
        networks.network(ctx, ["connect", "n9"])
    assert capsys.readouterr().out == ""


def test_network_prune(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, client = recording({("POST", "/networks/prune"): {"NetworksDeleted": ["n9", "n10"]}})
    assert networks.network(ctx, ["prune", "-f", "--filter", "label=a"]) == 0
    assert capsys.readouterr().out == "Deleted Networks:\nn9\nn10\n\n"
    assert client.requests[-1][2] == {"filters": '{"label": {"a": true}}'}
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert networks.network(ctx, ["prune"]) == 0
    assert capsys.readouterr().out == networks.PRUNE_WARNING
    assert len(client.requests) == 1  # refused: nothing sent


def test_network_dispatch(capsys: pytest.CaptureFixture[str]) -> None:
    assert refctl.main(["-H", "unix:///nonexistent.sock", "network"]) == 0
    assert "Manage networks" in capsys.readouterr().out
    assert refctl.main(["-H", "unix:///nonexistent.sock", "network", "bogus"]) == 1
    assert "'network bogus' is not a refctl command" in capsys.readouterr().err
    assert refctl.main(["-H", "unix:///nonexistent.sock", "network", "create"]) == 1
    assert capsys.readouterr().err == (
        '"refctl network create" requires exactly 1 argument.\n'
        "See 'refctl network create --help'.\n"
    )
    assert refctl.main(["-H", "unix:///nonexistent.sock", "network", "ls"]) == 1
    assert "Cannot connect to the refd daemon" in capsys.readouterr().err


# -- ps PORTS, port ----------------------------------------------------------------------
DOCKER_LISTED_PORTS = [
    {"IP": "127.0.0.1", "PrivatePort": 81, "PublicPort": 32768, "Type": "udp"},
    {"IP": "127.0.0.1", "PrivatePort": 90, "PublicPort": 18090, "Type": "tcp"},
    {"IP": "127.0.0.1", "PrivatePort": 91, "PublicPort": 18091, "Type": "tcp"},
    {"PrivatePort": 95, "Type": "tcp"},
    {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 18080, "Type": "tcp"},
]


@pytest.mark.parametrize(
    ("ports", "text"),
    [
        ([], ""),
        (
            DOCKER_LISTED_PORTS,  # what docker 20.10 listed and docker ps printed for them
            "95/tcp, 127.0.0.1:18080->80/tcp, 127.0.0.1:32768->81/udp, "
            "127.0.0.1:18090->90/tcp, 127.0.0.1:18091->91/tcp",
        ),
        (
            [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
            "0.0.0.0:8080->80/tcp",
        ),
        ([{"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}], "[::]:8080->80/tcp"),
        (
            [
                {"IP": "0.0.0.0", "PrivatePort": 81, "PublicPort": 81, "Type": "tcp"},
                {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 80, "Type": "tcp"},
                {"PrivatePort": 53, "Type": "udp"},
                {"PrivatePort": 54, "Type": "udp"},
                {"PrivatePort": 56, "Type": "udp"},
            ],
            "53-54/udp, 56/udp, 0.0.0.0:80-81->80-81/tcp",
        ),
    ],
)
def test_ps_ports_column(ports: Sequence[dict[str, Any]], text: str) -> None:
    assert netopts.displayable_ports(ports) == text
    item = {
        "Id": "c" * 64,
        "Ports": list(ports),
        "NetworkSettings": {"Networks": {"bridge": {}, "n1": {}}},
    }
    row = _ps_row(item, True)
    assert (row["Ports"], row["Networks"]) == (text, "bridge,n1")


INSPECT_PORTS = {
    "443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8443"}],
    "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}, {"HostIp": "::", "HostPort": "18080"}],
    "81/udp": [{"HostIp": "127.0.0.1", "HostPort": "32768"}],
    "95/tcp": None,
}


def test_port_verb(capsys: pytest.CaptureFixture[str]) -> None:
    answers = {("GET", "/containers/web/json"): {"NetworkSettings": {"Ports": INSPECT_PORTS}}}
    client = Recorder(answers)
    ctx = Ctx(client, "port")  # type: ignore[arg-type]
    assert networks.port(ctx, ["web"]) == 0
    assert capsys.readouterr().out == (
        "80/tcp -> 127.0.0.1:18080\n80/tcp -> [::]:18080\n81/udp -> 127.0.0.1:32768\n"
        "443/tcp -> 0.0.0.0:8443\n"
    )
    assert networks.port(ctx, ["web", "80"]) == 0
    assert capsys.readouterr().out == "127.0.0.1:18080\n[::]:18080\n"
    assert networks.port(ctx, ["web", "81/udp"]) == 0
    assert capsys.readouterr().out == "127.0.0.1:32768\n"
    for wanted, message in [
        ("81", "Error: No public port '81' published for web"),
        ("95", "Error: No public port '95' published for web"),
        ("abc", 'Error: invalid port (abc): strconv.ParseUint: parsing "abc": invalid syntax'),
    ]:
        assert networks.port(ctx, ["web", wanted]) == 1
        assert capsys.readouterr().err == message + "\n"
    with pytest.raises(UsageError, match="requires at least 1 and at most 2 arguments"):
        networks.port(ctx, [])
