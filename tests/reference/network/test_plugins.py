"""Plugin discovery (sockets and spec files, Docker's order) and the plugin client: headers,
bodies, the protocol's errors, timeouts and connect retries. No root, no kernel objects."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.remote_plugin import remote_plugin
from reference.errors import ConfigError, RefError, StateError, UnsupportedError
from reference.network.plugins import (
    ACCEPT,
    CONTENT_TYPE,
    Client,
    Discovery,
    Plugin,
    PluginError,
    PluginNotImplemented,
    PluginUnreachable,
    TlsConfig,
)
from tests.reference.network._scripted_plugin import HANG, scripted_plugin, scripted_tcp_plugin


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Unix socket paths are at most 107 bytes: pytest's tmp_path can be longer."""
    path = Path(tempfile.mkdtemp(prefix="rp", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def dirs(short_dir: Path) -> tuple[Path, Path, Path]:
    sockets, first, second = short_dir / "run", short_dir / "etc", short_dir / "lib"
    for d in (sockets, first, second):
        d.mkdir()
    return sockets, first, second


def discovery(dirs: tuple[Path, Path, Path]) -> Discovery:
    return Discovery((dirs[0],), (dirs[1], dirs[2]))


def bind(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    return sock


def client(plugin: Plugin, **options: float) -> Client:
    return Client(plugin, **{"call_timeout": 2.0, "retry_budget": 0.5, **options})


# -- discovery ----------------------------------------------------------------------------------
def test_defaults_are_refds_directories() -> None:
    found = Discovery()
    assert found.socket_dirs == (Path("/run/refd/plugins"),)
    assert found.spec_dirs == (Path("/etc/refd/plugins"), Path("/usr/lib/refd/plugins"))


def test_a_socket_is_found_by_name_and_wins_over_spec_files(dirs: tuple[Path, Path, Path]) -> None:
    (dirs[1] / "net.spec").write_text("tcp://127.0.0.1:9\n")
    with bind(dirs[0] / "net.sock"):
        plugin = discovery(dirs).find("net")
    assert plugin == Plugin("net", f"unix://{dirs[0]}/net.sock", dirs[0] / "net.sock")


def test_a_socket_in_a_directory_of_its_name(dirs: tuple[Path, Path, Path]) -> None:
    (dirs[0] / "net").mkdir()
    with bind(dirs[0] / "net" / "net.sock"):
        plugin = discovery(dirs).find("net")
    assert plugin is not None
    assert plugin.addr == f"unix://{dirs[0]}/net/net.sock"


def test_a_regular_file_named_like_a_socket_is_not_a_plugin(dirs: tuple[Path, Path, Path]) -> None:
    (dirs[0] / "net.sock").write_text("")
    assert discovery(dirs).find("net") is None


def test_spec_files_in_docker_order(dirs: tuple[Path, Path, Path]) -> None:
    (dirs[2] / "net.spec").write_text("tcp://127.0.0.1:3")
    (dirs[1] / "net.json").write_text(json.dumps({"Addr": "tcp://127.0.0.1:2"}))
    assert discovery(dirs).find("net") == Plugin(
        "net", "tcp://127.0.0.1:2", dirs[1] / "net.json", TlsConfig(insecure_skip_verify=True)
    )
    (dirs[1] / "net").mkdir()
    (dirs[1] / "net" / "net.spec").write_text("unix:///run/x.sock")
    found = discovery(dirs).find("net")
    assert found is not None
    assert found.addr == "unix:///run/x.sock"


def test_json_spec_tls_config(dirs: tuple[Path, Path, Path]) -> None:
    doc = {
        "Name": "other",
        "Addr": "https://127.0.0.1:8443",
        "TLSConfig": {"CAFile": "/ca.pem", "CertFile": "/c.pem", "KeyFile": "/k.pem"},
    }
    (dirs[1] / "net.json").write_text(json.dumps(doc))
    found = discovery(dirs).find("net")
    assert found is not None
    assert found.name == "net"
    assert found.tls is not None
    assert not found.tls.insecure_skip_verify
    assert (found.tls.ca_file, found.tls.cert_file, found.tls.key_file) == (
        "/ca.pem",
        "/c.pem",
        "/k.pem",
    )


@pytest.mark.parametrize("name", ["nothing", "", "..", "../run/x", "a/b"])
def test_unknown_or_pathlike_names_are_not_found(dirs: tuple[Path, Path, Path], name: str) -> None:
    (dirs[1] / "x.spec").write_text("tcp://127.0.0.1:1")
    assert discovery(dirs).find(name) is None


@pytest.mark.parametrize(
    ("file", "text", "complaint"),
    [
        ("net.spec", "/run/x.sock", "no protocol"),
        ("net.spec", "npipe:////./pipe/x", "unsupported protocol"),
        ("net.spec", "tcp://127.0.0.1", "needs host:port"),
        ("net.spec", "tcp://127.0.0.1:99999", "invalid plugin address"),
        ("net.spec", "unix://", "no socket path"),
        ("net.json", "{not json", "cannot read plugin spec"),
        ("net.json", '{"Name": "net"}', '"Addr"'),
        ("net.json", '{"Addr": "tcp://h:1", "TLSConfig": 3}', "TLSConfig"),
    ],
)
def test_bad_spec_files_are_config_errors_naming_the_file(
    dirs: tuple[Path, Path, Path], file: str, text: str, complaint: str
) -> None:
    (dirs[1] / file).write_text(text)
    with pytest.raises(ConfigError, match=complaint) as raised:
        discovery(dirs).find("net")
    assert str(dirs[1] / file) in str(raised.value)


# -- the client, against the suite's own plugin -------------------------------------------------
def test_activation_against_the_suites_plugin(short_dir: Path) -> None:
    with remote_plugin(short_dir) as served:
        found = Discovery((short_dir,), ()).find(served.name)
        assert found is not None
        talker = client(found)
        assert talker.activate("NetworkDriver") == ["NetworkDriver"]
        assert talker.call("NetworkDriver.GetCapabilities") == {
            "Scope": "local",
            "ConnectivityScope": "local",
        }
        assert [(c.method, c.body) for c in served.calls] == [
            ("Plugin.Activate", None),
            ("NetworkDriver.GetCapabilities", None),
        ]
        assert talker.peer_pid == os.getpid()  # the plugin serves from this process
        with pytest.raises(PluginNotImplemented, match=served.name) as raised:
            talker.call("NetworkDriver.NoSuchMethod", {})
        assert isinstance(raised.value, UnsupportedError)


# -- the client, against a scripted plugin ------------------------------------------------------
def test_headers_and_bodies(short_dir: Path) -> None:
    with scripted_plugin(short_dir / "p.sock") as plugin:
        talker = client(Plugin("p", f"unix://{short_dir}/p.sock", short_dir))
        talker.call("Plugin.Activate")
        talker.call("NetworkDriver.Leave", {"NetworkID": "n", "EndpointID": "e"})
    bare, full = plugin.requests
    assert bare.body is None
    assert bare.headers["Accept"] == ACCEPT
    assert "Content-Type" not in bare.headers
    assert full.body == {"NetworkID": "n", "EndpointID": "e"}
    assert full.headers["Content-Type"] == CONTENT_TYPE
    assert full.headers["Accept"] == ACCEPT


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        ({"Err": "no such network"}, r"plugin p: NetworkDriver\.Leave: no such network$"),
        ((500, {"Err": "boom"}), "HTTP 500: boom"),
        ((500, b"plain text trouble"), "HTTP 500: plain text trouble"),
        ((201, {}), "HTTP 201"),
        ((200, b"not json"), "not a JSON object"),
        ((200, b""), "not a JSON object"),
        ((200, b"[1]"), "not a JSON object"),
    ],
)
def test_failed_calls_name_the_plugin_and_the_method(
    short_dir: Path, answer: object, complaint: str
) -> None:
    with scripted_plugin(short_dir / "p.sock") as plugin:
        plugin.answers["NetworkDriver.Leave"] = answer
        talker = client(Plugin("p", f"unix://{short_dir}/p.sock", short_dir))
        with pytest.raises(PluginError, match=complaint) as raised:
            talker.call("NetworkDriver.Leave", {})
    assert not isinstance(raised.value, UnsupportedError)
    assert raised.value.plugin == "p"
    assert raised.value.method == "NetworkDriver.Leave"


def test_activation_must_list_network_driver(short_dir: Path) -> None:
    with scripted_plugin(short_dir / "p.sock") as plugin:
        plugin.answers["Plugin.Activate"] = {"Implements": ["IpamDriver"]}
        talker = client(Plugin("p", f"unix://{short_dir}/p.sock", short_dir))
        with pytest.raises(UnsupportedError, match="does not implement NetworkDriver"):
            talker.activate("NetworkDriver")


def test_a_hung_plugin_times_out_quickly(short_dir: Path) -> None:
    with scripted_plugin(short_dir / "p.sock") as plugin:
        plugin.answers["NetworkDriver.Join"] = HANG
        talker = client(Plugin("p", f"unix://{short_dir}/p.sock", short_dir), call_timeout=0.3)
        start = time.monotonic()
        with pytest.raises(PluginUnreachable, match=r"Join: no answer within 0\.3 s") as raised:
            talker.call("NetworkDriver.Join", {})
        assert time.monotonic() - start < 2
        assert plugin.methods() == ["NetworkDriver.Join"]  # sent once: never retried
    assert isinstance(raised.value, StateError)


def test_a_dead_socket_is_retried_with_back_off_then_given_up(short_dir: Path) -> None:
    with bind(short_dir / "p.sock"):  # bound, never listening: connection refused
        talker = client(
            Plugin("p", f"unix://{short_dir}/p.sock", short_dir),
            retry_budget=0.5,
            backoff_unit=0.05,
        )
        start = time.monotonic()
        with pytest.raises(PluginUnreachable, match="cannot connect to unix://"):
            talker.call("Plugin.Activate")
        elapsed = time.monotonic() - start
    # 0.05 + 0.1 + 0.2 slept; the next pause (0.4) would go past the budget.
    assert 0.3 <= elapsed < 0.5, elapsed


def test_a_plugin_that_starts_late_is_waited_for(short_dir: Path) -> None:
    path = short_dir / "p.sock"
    talker = client(Plugin("p", f"unix://{path}", short_dir), retry_budget=3, backoff_unit=0.1)
    ready, done = threading.Event(), threading.Event()

    def start_later() -> None:
        time.sleep(0.2)
        with scripted_plugin(path):
            ready.set()
            done.wait(5)

    thread = threading.Thread(target=start_later)
    thread.start()
    try:
        assert talker.activate("NetworkDriver") == ["NetworkDriver"]
        assert ready.is_set()
    finally:
        done.set()
        thread.join()


def test_tcp_plugin_from_a_spec_file(dirs: tuple[Path, Path, Path]) -> None:
    with scripted_tcp_plugin() as (plugin, port):
        (dirs[1] / "tp.spec").write_text(f"tcp://127.0.0.1:{port}\n")
        found = discovery(dirs).find("tp")
        assert found is not None
        talker = client(found)
        assert talker.activate("NetworkDriver") == ["NetworkDriver"]
        assert talker.peer_pid is None  # no credentials over TCP
    assert plugin.methods() == ["Plugin.Activate"]


def test_errors_are_ref_errors() -> None:
    for kind in (PluginError, PluginNotImplemented, PluginUnreachable):
        error = kind("p", "M", "d")
        assert isinstance(error, RefError)
        assert error.obj == "p"
        assert str(error) == "plugin p: M: d"
