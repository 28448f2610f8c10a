"""The network endpoints (reference.engine.api.networks) over HTTP, against an in-memory
controller: request checks, dockerd's statuses and wording, list filters, prune."""

from __future__ import annotations

import json
import re
import secrets
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fixtures.targets.engine_api import UnixHTTPConnection
from reference.engine.api.networks import NetworkRoutes
from reference.engine.api.server import Server
from reference.errors import ConflictError, NotFoundError
from reference.network.model import Endpoint, IpamConfig, Network
from reference.network.views import network_resource

BRIDGE_OPTIONS = {"com.docker.network.bridge.name": "refd0"}


class FakeController:
    """What the routes use of reference.network.controller.Controller, in memory."""

    def __init__(self) -> None:
        self.nets: list[Network] = [
            Network(
                "b" * 64,
                "bridge",
                "bridge",
                ipam=[IpamConfig("172.17.0.0/16", "172.17.0.1")],
                options=dict(BRIDGE_OPTIONS),
                created="2026-01-01T00:00:00.5Z",
            ),
            Network("h" * 64, "host", "host", created="2026-01-01T00:00:00Z"),
            Network("0" * 64, "none", "null", created="2026-01-01T00:00:00Z"),
        ]
        self.endpoints: list[Endpoint] = []
        self.calls: list[tuple[Any, ...]] = []

    def get(self, ref: str) -> Network:
        for net in self.nets:
            if ref in (net.id, net.name):
                return net
        found = [n for n in self.nets if n.id.startswith(ref)]
        if len(found) == 1:
            return found[0]
        raise NotFoundError(f"network {ref} not found")

    def networks(self) -> list[Network]:
        return list(self.nets)

    def attached(self, net: Network) -> list[Endpoint]:
        return [e for e in self.endpoints if e.network_id == net.id]

    def inspect(self, net: Network, verbose: bool = False) -> dict[str, Any]:
        self.calls.append(("inspect", net.name, verbose))
        return network_resource(self, net, verbose)  # type: ignore[arg-type]

    def create(
        self,
        name: str,
        driver: str = "bridge",
        ipam: list[IpamConfig] | None = None,
        options: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        internal: bool = False,
        attachable: bool = False,
        check_duplicate: bool = True,
    ) -> Network:
        self.calls.append(("create", name, driver, ipam, options, labels, internal, attachable))
        if driver not in ("bridge", "overlay"):
            raise NotFoundError(f'plugin "{driver}" not found')
        if check_duplicate and any(n.name == name for n in self.nets):
            raise ConflictError(f"network with name {name} already exists")
        net = Network(
            secrets.token_hex(32),
            name,
            driver,
            ipam=list(ipam or []),
            options=dict(options or {}),
            labels=dict(labels or {}),
            internal=internal,
            attachable=attachable,
            created="2026-02-01T00:00:00Z",
        )
        self.nets.append(net)
        return net

    def remove(self, ref: str) -> None:
        net = self.get(ref)
        if self.attached(net):
            raise ConflictError(f"network {net.name} has active endpoints")
        self.nets.remove(net)
        self.calls.append(("remove", net.name))

    def prune(self) -> list[str]:
        removed = [n.name for n in self.nets[3:] if not self.attached(n)]
        for name in removed:
            self.remove(name)
        return removed

    def connect(self, c: Any, ref: str, settings: dict[str, Any]) -> None:
        self.calls.append(("connect", c.id, self.get(ref).name, settings))

    def disconnect(self, c: Any, ref: str, force: bool) -> None:
        self.calls.append(("disconnect", c.id, self.get(ref).name, force))


class FakeContainers:
    def get(self, ref: str) -> Any:
        if ref in ("web", "c" * 64):
            return SimpleNamespace(id="c" * 64, name="/web")
        raise NotFoundError(f"No such container: {ref}")


@pytest.fixture(scope="module")
def daemon() -> SimpleNamespace:
    return SimpleNamespace(engine=SimpleNamespace(network=None, containers=FakeContainers()))


@pytest.fixture
def ctl(daemon: SimpleNamespace) -> FakeController:
    daemon.engine.network = FakeController()  # a fresh one for every test, one server
    return daemon.engine.network  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, daemon: SimpleNamespace) -> Iterator[Path]:
    routes = NetworkRoutes(daemon).routes()  # type: ignore[arg-type]
    table = [(m, re.compile(p), fn) for m, p, fn in routes]

    def router(method: str, path: str) -> tuple[Any, Any]:
        for route_method, pattern, fn in table:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return fn, match
        return None, None

    path = tmp_path_factory.mktemp("api") / "api.sock"
    srv = Server(str(path), router)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield path
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def api(server: Path, ctl: FakeController) -> Path:
    return server


def call(api: Path, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    conn = UnixHTTPConnection(str(api), timeout=10)
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, "/v1.41" + url, body=data, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    return response.status, (json.loads(raw) if raw.strip() else None)


def filters(**wanted: list[str]) -> str:
    return "?filters=" + urllib.parse.quote(
        json.dumps({k: dict.fromkeys(v, True) for k, v in wanted.items()})
    )


def last(ctl: FakeController) -> tuple[Any, ...]:
    return ctl.calls[-1]


def names(items: list[dict[str, Any]]) -> list[str]:
    return [i["Name"] for i in items]


# -- create ------------------------------------------------------------------------------
def test_create_passes_the_request_to_the_controller(api: Path, ctl: FakeController) -> None:
    body = {
        "Name": "n1",
        "CheckDuplicate": True,
        "Driver": "bridge",
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [
                {
                    "Subnet": "10.9.0.0/24",
                    "IPRange": "10.9.0.128/25",
                    "Gateway": "10.9.0.1",
                    "AuxiliaryAddresses": {"a": "10.9.0.5"},
                }
            ],
        },
        "Internal": True,
        "Attachable": True,
        "Options": {"com.docker.network.bridge.name": "br-x"},
        "Labels": {"l": "1"},
    }
    status, answer = call(api, "POST", "/networks/create", body)
    assert status == 201
    assert answer == {"Id": ctl.get("n1").id, "Warning": ""}
    ipam = [IpamConfig("10.9.0.0/24", "10.9.0.1", "10.9.0.128/25", {"a": "10.9.0.5"})]
    assert last(ctl) == (
        "create",
        "n1",
        "bridge",
        ipam,
        {"com.docker.network.bridge.name": "br-x"},
        {"l": "1"},
        True,
        True,
    )


def test_create_defaults_and_duplicates(api: Path, ctl: FakeController) -> None:
    assert call(api, "POST", "/networks/create", {"Name": "n1", "CheckDuplicate": True})[0] == 201
    assert last(ctl) == ("create", "n1", "bridge", None, {}, {}, False, False)
    status, answer = call(api, "POST", "/networks/create", {"Name": "n1", "CheckDuplicate": True})
    assert (status, answer) == (409, {"message": "network with name n1 already exists"})
    # without CheckDuplicate Docker makes a second one and warns
    status, answer = call(api, "POST", "/networks/create", {"Name": "n1"})
    first = ctl.nets[3].id
    assert status == 201
    assert answer["Warning"] == f"Network with name n1 (id : {first}) already exists"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"Name": "bridge"}, 403, "operation is not permitted on predefined bridge network "),
        ({"Name": "none"}, 403, "operation is not permitted on predefined none network "),
        ({"Name": "h", "Driver": "host"}, 403, 'only one instance of "host" network is allowed'),
        ({"Name": "n", "Driver": "nosuch"}, 404, 'plugin "nosuch" not found'),
        ({"Name": ""}, 400, "invalid name: "),
        (
            {"Name": "n", "EnableIPv6": True},
            400,
            "IPv6 networks are not supported by refd (EnableIPv6)",
        ),
        (
            {"Name": "n", "Ingress": True},
            400,
            "ingress networks need swarm mode, which refd does not have",
        ),
        (
            {"Name": "n", "IPAM": {"Config": [{"Subnet": "10.300.0.0/24"}]}},
            400,
            "Invalid subnet 10.300.0.0/24 : invalid CIDR address: 10.300.0.0/24",
        ),
        (
            {"Name": "n", "IPAM": {"Config": [{"Subnet": "10.1.0.0"}]}},
            400,
            "Invalid subnet 10.1.0.0 : invalid CIDR address: 10.1.0.0",
        ),
        (
            {"Name": "n", "IPAM": {"Config": [{"Subnet": "fd00::/64"}]}},
            400,
            "IPv6 is not supported by refd: subnet fd00::/64",
        ),
        (
            {"Name": "n", "IPAM": {"Config": [{"Subnet": "10.1.0.0/24", "Gateway": "x"}]}},
            400,
            "invalid gateway address x in Ipam configuration",
        ),
        (
            {"Name": "n", "IPAM": {"Config": [{"Subnet": "10.1.0.0/24", "IPRange": "10.1.0"}]}},
            400,
            "Invalid ip range 10.1.0 : invalid CIDR address: 10.1.0",
        ),
        (
            {"Name": "n", "IPAM": {"Config": [{"Gateway": "10.1.0.1"}]}},
            400,
            "every ip-range or gateway must have a corresponding subnet",
        ),
        (
            {"Name": "n", "IPAM": {"Driver": "plug"}},
            400,
            'IPAM driver "plug" is not supported by refd (only "default")',
        ),
        (
            {"Name": "n", "Options": {"k": 1}},
            400,
            "invalid JSON: Options must map strings to strings",
        ),
        (["n"], 400, "invalid JSON: the network config must be an object"),
    ],
)
def test_create_refusals(api: Path, body: Any, status: int, message: str) -> None:
    got, answer = call(api, "POST", "/networks/create", body)
    assert got == status, answer
    assert answer == {"message": message}


# -- list, inspect -----------------------------------------------------------------------
def test_list_shows_every_network_without_its_containers(api: Path, ctl: FakeController) -> None:
    ctl.endpoints.append(Endpoint("e" * 64, "b" * 64, "c" * 64, "web", "172.17.0.2/16"))
    status, items = call(api, "GET", "/networks")
    assert status == 200
    assert names(items) == ["bridge", "host", "none"]
    assert all(i["Containers"] == {} for i in items)
    bridge = items[0]
    assert bridge["IPAM"]["Config"] == [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]
    assert (bridge["Driver"], bridge["Scope"], bridge["Options"]) == (
        "bridge",
        "local",
        BRIDGE_OPTIONS,
    )


def test_list_filters(api: Path, ctl: FakeController) -> None:
    ctl.create("front", labels={"tier": "web", "env": "prod"})
    ctl.create("back", labels={"tier": "db"})
    ctl.endpoints.append(Endpoint("e" * 64, ctl.get("back").id, "c" * 64, "web"))

    def listed(query: str) -> list[str]:
        status, items = call(api, "GET", "/networks" + query)
        assert status == 200, items
        return names(items)

    assert listed(filters(driver=["bridge"])) == ["bridge", "front", "back"]
    assert listed(filters(name=["^b"])) == ["bridge", "back"]
    assert listed(filters(name=["front", "none"])) == ["none", "front"]
    assert listed(filters(type=["custom"])) == ["front", "back"]
    assert listed(filters(type=["builtin"])) == ["bridge", "host", "none"]
    assert listed(filters(label=["tier"])) == ["front", "back"]
    assert listed(filters(label=["tier=web", "env=prod"])) == ["front"]
    assert listed(filters(label=["tier=web", "env=dev"])) == []
    assert listed(filters(id=[ctl.get("front").id[:10]])) == ["front"]
    assert listed(filters(scope=["local"], driver=["null"])) == ["none"]
    assert listed(filters(dangling=["true"])) == ["front"]
    assert listed(filters(dangling=["false"])) == ["bridge", "host", "none", "back"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (filters(bogus=["x"]), "Invalid filter 'bogus'"),
        (filters(type=["bogus"]), "invalid filter: 'type'='bogus'"),
        (filters(dangling=["maybe"]), "invalid filter 'dangling=maybe'"),
        ("?filters=%7Bbad", "invalid filters"),
    ],
)
def test_list_filter_errors(api: Path, query: str, message: str) -> None:
    status, answer = call(api, "GET", "/networks" + query)
    assert status == 400
    assert answer["message"].startswith(message)


def test_inspect(api: Path, ctl: FakeController) -> None:
    ctl.endpoints.append(Endpoint("e" * 64, "b" * 64, "c" * 64, "web", "172.17.0.2/16", mac="m"))
    status, doc = call(api, "GET", "/networks/bridge?verbose=1")
    assert status == 200
    assert last(ctl) == ("inspect", "bridge", True)
    assert doc["Containers"] == {
        "c" * 64: {
            "Name": "web",
            "EndpointID": "e" * 64,
            "MacAddress": "m",
            "IPv4Address": "172.17.0.2/16",
            "IPv6Address": "",
        }
    }
    assert call(api, "GET", "/networks/" + "b" * 12)[1]["Name"] == "bridge"
    assert call(api, "GET", "/networks/nosuch") == (404, {"message": "network nosuch not found"})
    assert call(api, "GET", "/networks/bridge?scope=global")[0] == 404
    assert call(api, "GET", "/networks/bridge?scope=local")[0] == 200


# -- remove, prune -----------------------------------------------------------------------
def test_remove(api: Path, ctl: FakeController) -> None:
    net = ctl.create("n1")
    assert call(api, "DELETE", "/networks/n1") == (204, None)
    assert last(ctl) == ("remove", "n1")
    assert call(api, "DELETE", "/networks/n1") == (404, {"message": "network n1 not found"})
    status, answer = call(api, "DELETE", "/networks/bridge")
    assert (status, answer["message"]) == (
        403,
        "bridge is a pre-defined network and cannot be removed",
    )
    assert call(api, "DELETE", "/networks/host")[0] == 403
    net = ctl.create("n2")
    ctl.endpoints.append(Endpoint("e" * 64, net.id, "c" * 64, "web"))
    status, answer = call(api, "DELETE", "/networks/n2")
    assert status == 403
    assert answer["message"] == (
        f"error while removing network: network n2 id {net.id} has active endpoints"
    )


def test_prune(api: Path, ctl: FakeController) -> None:
    assert call(api, "POST", "/networks/prune") == (200, {"NetworksDeleted": None})
    ctl.create("keep", labels={"keep": "1"})
    ctl.create("gone")
    busy = ctl.create("busy")
    ctl.endpoints.append(Endpoint("e" * 64, busy.id, "c" * 64, "web"))
    status, answer = call(api, "POST", "/networks/prune" + filters(**{"label!": ["keep"]}))
    assert (status, answer) == (200, {"NetworksDeleted": ["gone"]})
    assert call(api, "POST", "/networks/prune" + filters(until=["2026-01-15T00:00:00Z"])) == (
        200,
        {"NetworksDeleted": None},
    )
    assert call(api, "POST", "/networks/prune") == (200, {"NetworksDeleted": ["keep"]})
    assert names(call(api, "GET", "/networks")[1]) == ["bridge", "host", "none", "busy"]
    status, answer = call(api, "POST", "/networks/prune" + filters(driver=["bridge"]))
    assert (status, answer["message"]) == (400, "Invalid filter 'driver'")


# -- connect, disconnect -----------------------------------------------------------------
def test_connect_and_disconnect(api: Path, ctl: FakeController) -> None:
    ctl.create("n1")
    body = {
        "Container": "web",
        "EndpointConfig": {
            "IPAMConfig": {"IPv4Address": "10.9.0.7"},
            "Links": None,
            "Aliases": ["x"],
            "MacAddress": "",
            "DriverOpts": {},
            "NetworkID": "",
            "IPAddress": "",
        },
    }
    assert call(api, "POST", "/networks/n1/connect", body) == (200, None)
    settings = {"IPAMConfig": {"IPv4Address": "10.9.0.7"}, "Aliases": ["x"]}
    assert last(ctl) == ("connect", "c" * 64, "n1", settings)
    assert call(api, "POST", "/networks/n1/connect", {"Container": "web"})[0] == 200
    assert last(ctl) == ("connect", "c" * 64, "n1", {})
    force = {"Container": "web", "Force": True}
    assert call(api, "POST", "/networks/n1/disconnect", force) == (200, None)
    assert last(ctl) == ("disconnect", "c" * 64, "n1", True)


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/networks/n1/connect", {"Container": "gone"}, 404, "No such container: gone"),
        ("/networks/nosuch/connect", {"Container": "web"}, 404, "network nosuch not found"),
        ("/networks/n1/disconnect", {}, 400, 'invalid name or ID supplied: ""'),
        (
            "/networks/n1/connect",
            {"Container": "web", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "1.2.3"}}},
            400,
            "invalid IPv4 address: 1.2.3",
        ),
        (
            "/networks/n1/connect",
            {"Container": "web", "EndpointConfig": {"IPAMConfig": {"IPv6Address": "fd00::9"}}},
            400,
            "IPv6 and link-local addresses are not supported by refd",
        ),
    ],
)
def test_connect_refusals(
    api: Path, ctl: FakeController, path: str, body: Any, status: int, message: str
) -> None:
    ctl.create("n1")
    assert call(api, "POST", path, body) == (status, {"message": message})
