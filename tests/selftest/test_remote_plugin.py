"""The remote-plugin suite must catch an engine that leaves containers off the plugin's network,
and its plugin must speak the protocol by itself (no engine involved).

The broken engine is the real Docker behind a CLI wrapper that drops --network=<user network>
(broken_docker.py, mutation no-user-networks): the network tests pass, exactly the three
container tests fail."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import IPRoute

from fixtures.remote_plugin import DST_PREFIX, remote_plugin
from tests.selftest.harness import broken_docker_env, failed, run_suite

SUITE = "suites/network/test_remote_plugin.py"
MODULE = "suites.network.test_remote_plugin"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=5)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(self.path))


def post(path: Path, method: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    connection = UnixHTTPConnection(path)
    try:
        payload = json.dumps(body).encode() if body is not None else b""
        connection.request("POST", f"/{method}", body=payload)
        response = connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if response.status == 200 else None
    finally:
        connection.close()


def link_exists(name: str) -> bool:
    with IPRoute() as ipr:
        return bool(ipr.link_lookup(ifname=name))


def test_plugin_speaks_the_protocol_without_an_engine(tmp_path: Path) -> None:
    with remote_plugin(tmp_path) as plugin:
        sock = plugin.socket
        assert post(sock, "Plugin.Activate") == (200, {"Implements": ["NetworkDriver"]})
        assert post(sock, "NetworkDriver.GetCapabilities")[1]["Scope"] == "local"
        assert post(sock, "NetworkDriver.Unknown")[0] == 404
        ids = {"NetworkID": "n1", "EndpointID": "e1"}
        interface = {"Address": "10.213.0.2/24", "AddressIPv6": "", "MacAddress": ""}
        created = post(sock, "NetworkDriver.CreateEndpoint", {**ids, "Interface": interface})
        assert created == (200, {"Interface": {}})  # the engine's IPAM address is kept
        status, joined = post(sock, "NetworkDriver.Join", {**ids, "SandboxKey": "/x"})
        assert status == 200
        assert joined["InterfaceName"]["DstPrefix"] == DST_PREFIX
        veth = plugin.veths["e1"]
        assert joined["InterfaceName"]["SrcName"] == veth.peer
        assert link_exists(veth.host)
        assert link_exists(veth.peer)
        assert post(sock, "NetworkDriver.Leave", ids) == (200, {})
        assert post(sock, "NetworkDriver.DeleteEndpoint", ids) == (200, {})
        assert not link_exists(veth.host)
        assert plugin.methods()[-2:] == ["NetworkDriver.Leave", "NetworkDriver.DeleteEndpoint"]
    assert not sock.exists(), "the plugin's socket outlived it"


@pytest.mark.skipif(
    shutil.which("docker") is None or not Path("/var/run/docker.sock").exists(),
    reason="no Docker engine on /var/run/docker.sock",
)
def test_engine_ignoring_user_networks_fails_exactly_the_container_tests(tmp_path: Path) -> None:
    env = broken_docker_env("no-user-networks", tmp_path)
    outcomes = run_suite("docker", tmp_path / "junit.xml", SUITE, env=env)
    assert failed(outcomes) == {
        f"{MODULE}::test_container_joins_the_sandbox_through_the_plugin[docker]",
        f"{MODULE}::test_container_removal_leaves_and_deletes_the_endpoint[docker]",
        f"{MODULE}::test_container_frames_leave_through_the_plugin_veth[docker]",
    }, outcomes
    passed = {name for name, verdict in outcomes.items() if verdict == "passed"}
    assert f"{MODULE}::test_network_create_and_remove_reach_the_plugin[docker]" in passed
    assert f"{MODULE}::cleanup[docker]" in passed, outcomes  # the containers still went away
