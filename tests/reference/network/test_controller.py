"""The controller's bookkeeping and call order, with a recording driver and the sandbox
functions replaced: no root, no kernel objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reference.engine.config import DaemonConfig
from reference.engine.create import wanted_networks
from reference.engine.store import Container
from reference.errors import ConfigError, ConflictError, NotFoundError, RefError
from reference.network import attachments, sandbox
from reference.network.controller import Controller, PredefinedError
from reference.network.model import Endpoint, IpamConfig, JoinInfo, Network


class Recorder:
    name = "rec"

    def __init__(self, fail: str = "") -> None:
        self.calls: list[str] = []
        self.fail = fail

    def _call(self, what: str) -> None:
        self.calls.append(what)
        if what == self.fail:
            raise RefError(f"{what} failed", obj="rec")

    def scope(self) -> str:
        return "local"

    def create_network(self, network: Network) -> None:
        self._call("create_network")

    def delete_network(self, network: Network) -> None:
        self._call("delete_network")

    def create_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        self._call("create_endpoint")
        endpoint.mac = "02:42:00:00:00:01"

    def join(self, network: Network, endpoint: Endpoint, sandbox_key: str) -> JoinInfo:
        self._call("join")
        return JoinInfo("tmp0", gateway=network.ipam[0].gateway)

    def program(self, network: Network, endpoint: Endpoint) -> None:
        self._call("program")

    def leave(self, network: Network, endpoint: Endpoint) -> None:
        self._call("leave")

    def delete_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        self._call("delete_endpoint")

    def restore(self, networks: list[Network], endpoints: list[Endpoint]) -> None:
        self._call("restore")

    def close(self) -> None:
        pass


@pytest.fixture
def ctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Controller:
    monkeypatch.setattr("reference.network.controller.host_routes", lambda: [])
    config = DaemonConfig(data_root=tmp_path / "data", exec_root=tmp_path / "exec", bridge="none")
    controller = Controller(config)
    controller.start()
    return controller


@pytest.fixture
def fake_sandbox(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    made: list[str] = []
    monkeypatch.setattr(sandbox, "exists", lambda key: str(key) in made)
    monkeypatch.setattr(sandbox, "create", lambda key: made.append(str(key)))
    monkeypatch.setattr(
        sandbox, "delete", lambda key: made.remove(str(key)) if str(key) in made else None
    )
    monkeypatch.setattr(sandbox, "plumb", lambda info, ep, key: "eth0")
    monkeypatch.setattr(sandbox, "unplumb", lambda ep, give_back=False: None)
    return made


def container(networks: dict[str, dict[str, Any]]) -> Container:
    c = Container({"ID": "ab" * 32, "Name": "/web", "Config": {"Hostname": "abab"}}, {})
    c.networks = networks
    return c


def test_predefined_networks_and_lookup(ctl: Controller) -> None:
    assert {n.name for n in ctl.networks()} == {"host", "none"}
    host = ctl.get("host")
    assert ctl.get(host.id[:6]) is host
    with pytest.raises(NotFoundError, match="network mynet not found"):
        ctl.get("mynet")
    with pytest.raises(PredefinedError, match="pre-defined"):
        ctl.remove("none")


def test_unknown_network_mode_is_not_found_at_create(ctl: Controller) -> None:
    class EngineStub:
        network = ctl

    with pytest.raises(NotFoundError, match="network mynet not found"):
        wanted_networks(EngineStub(), {"NetworkMode": "mynet"}, None)  # type: ignore[arg-type]
    # without a default bridge, "default" is none
    assert list(wanted_networks(EngineStub(), {}, None)) == ["none"]  # type: ignore[arg-type]


def test_create_persists_and_refuses_duplicates(ctl: Controller) -> None:
    ctl._drivers["rec"] = Recorder()
    net = ctl.create("n1", "rec", [IpamConfig("10.9.0.0/24")], labels={"a": "b"})
    assert (ctl.root / "networks" / f"{net.id}.json").is_file()
    assert net.ipam[0].gateway == "10.9.0.1"
    with pytest.raises(ConflictError, match="already exists"):
        ctl.create("n1", "rec", [IpamConfig("10.10.0.0/24")])
    with pytest.raises(ConflictError, match="overlaps"):
        ctl.create("n2", "rec", [IpamConfig("10.9.0.0/25")])
    with pytest.raises(ConfigError, match="invalid network name"):
        ctl.create("bad name", "rec")
    doc = ctl.inspect(net)
    assert doc["IPAM"]["Config"] == [{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1"}]
    assert doc["Labels"] == {"a": "b"}


def test_attach_detach_follow_libnetworks_order(ctl: Controller, fake_sandbox: list[str]) -> None:
    rec = Recorder()
    ctl._drivers["rec"] = rec
    net = ctl.create("n1", "rec", [IpamConfig("10.9.0.0/24")])
    c = container({"n1": {}})
    key = ctl.attach(c)
    assert key == str(ctl.netns_dir / c.id[:12])
    assert rec.calls == ["create_network", "create_endpoint", "join", "program"]
    assert c.networks["n1"]["IPAddress"] == "10.9.0.2"
    assert ctl.inspect(net)["Containers"][c.id]["IPv4Address"] == "10.9.0.2/24"
    with pytest.raises(ConflictError, match="active endpoints"):
        ctl.remove("n1")
    assert ctl.detach(c) == []
    assert rec.calls[4:] == ["leave", "delete_endpoint"]
    assert fake_sandbox == []
    assert c.networks["n1"]["IPAddress"] == ""
    ctl.remove("n1")
    assert not (ctl.root / "networks" / f"{net.id}.json").exists()


def test_a_failed_join_leaves_nothing(ctl: Controller, fake_sandbox: list[str]) -> None:
    rec = Recorder(fail="join")
    ctl._drivers["rec"] = rec
    net = ctl.create("n1", "rec", [IpamConfig("10.9.0.0/24")])
    with pytest.raises(RefError, match="join failed"):
        ctl.attach(container({"n1": {}}))
    assert rec.calls[-1] == "delete_endpoint"
    assert ctl.attached(net) == []
    assert fake_sandbox == []
    assert ctl.ipam.request_address(net.id) == "10.9.0.2/24"  # released


def test_restart_restores_records_and_allocations(ctl: Controller, fake_sandbox: list[str]) -> None:
    ctl._drivers["rec"] = Recorder()
    net = ctl.create("n1", "rec", [IpamConfig("10.9.0.0/24")])
    c = container({"n1": {}})
    ctl.attach(c)
    again = Controller(ctl.config)
    rec = Recorder()
    again._drivers["rec"] = rec
    again.start()
    assert "restore" in rec.calls
    assert again.get("n1").id == net.id
    assert again.ipam.request_address(net.id) == "10.9.0.3/24"
    again.forget_stale(set())  # the container is not running any more
    assert again.attached(again.get("n1")) == []


def test_port_bindings_are_checked() -> None:
    found = attachments.port_bindings({"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}})
    assert [(p.proto, p.container_port, p.host_port) for p in found] == [("tcp", 80, 8080)]
    bads: list[dict[str, list[dict[str, str]]]] = [
        {"x/tcp": []},
        {"80/sctp": []},
        {"80/tcp": [{"HostPort": "http"}]},
    ]
    for bad in bads:
        with pytest.raises(ConfigError):
            attachments.port_bindings({"PortBindings": bad})
