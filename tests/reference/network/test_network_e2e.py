"""refd's networking end to end, on bad input: every refusal is a clear error with a non-zero
exit (refctl) or the status dockerd answers (API), and leaves nothing half-made in refd's
engine host: no network or endpoint record, no bridge or veth, no firewall rule, no sandbox
(exec-root/netns).

Each test drives a private refd (tests.reference.engine._refd), which runs in a network
namespace of its own; the refusals share one per module (every test checks that its refusal
changed nothing, so they cannot disturb each other). Failed starts, restarts and purges are
in test_network_restart.py. Needs root.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures.session import link_name, unique_name
from fixtures.targets.reference import REFCTL
from reference.network.plugins import CALL_TIMEOUT
from tests.reference.engine._refd import Refd, needs_root, running_refd
from tests.reference.network._scripted_plugin import HANG, ScriptedPlugin, scripted_plugin

pytestmark = pytest.mark.skipif(needs_root(), reason="needs root: refd, netns, iptables")

PLUGIN_DIR = Path("/run/refd/plugins")  # where refd finds plugin sockets (plugins.SOCKET_DIR)
BASE = "e2e-base"  # the module's user network, made once
BASE_SUBNET = "10.200.0.0/24"
SLEEP = ["sleep", "300"]


# -- refd's engine host, seen from outside --------------------------------------------------
def in_host(refd: Refd, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a command in refd's network namespace."""
    enter = ["nsenter", f"--net={refd.driver.netns}", "--"]
    return subprocess.run([*enter, *argv], capture_output=True, text=True, timeout=timeout)


def links(refd: Refd) -> frozenset[str]:
    listed = in_host(refd, "ip", "-o", "link", "show").stdout
    return frozenset(ln.split(": ")[1].split("@")[0] for ln in listed.splitlines() if ": " in ln)


def rules(refd: Refd) -> Counter[str]:
    """Every chain and rule of refd's namespace as `<table> <line>` (counters left out)."""
    found: Counter[str] = Counter()
    table = ""
    for line in in_host(refd, "iptables-save").stdout.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            found[f"{table} {line.split()[0]}"] += 1
        elif line.startswith("-A "):
            found[f"{table} {line}"] += 1
    return found


def names(directory: Path) -> frozenset[str]:
    return frozenset(p.name for p in directory.iterdir()) if directory.is_dir() else frozenset()


@dataclass(frozen=True)
class Footprint:
    """What refd's networking holds: kernel objects in its namespace and its records."""

    links: frozenset[str]
    rules: tuple[tuple[str, int], ...]
    networks: frozenset[str]  # data-root/network/networks/<id>.json
    endpoints: frozenset[str]  # data-root/network/endpoints/<id>.json
    sandboxes: frozenset[str]  # exec-root/netns/<key>
    sandbox_mounts: tuple[str, ...]  # nsfs bind mounts under exec-root/netns


def footprint(refd: Refd) -> Footprint:
    netns_dir = refd.root / "exec" / "netns"
    return Footprint(
        links=links(refd),
        rules=tuple(sorted(rules(refd).items())),
        networks=names(refd.data / "network" / "networks"),
        endpoints=names(refd.data / "network" / "endpoints"),
        sandboxes=names(netns_dir),
        sandbox_mounts=tuple(m for m in refd.mounts() if f" {netns_dir}/" in m),
    )


def network_names(refd: Refd) -> list[str]:
    return refd.ctl("network", "ls", "--format", "{{.Name}}").stdout.split()


def refused(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode != 0, done
    assert message in done.stderr, done.stderr


def api_json(refd: Refd, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    return refd.api(method, path, json.dumps(body).encode())


def run(refd: Refd, *args: str) -> subprocess.CompletedProcess[str]:
    return refd.ctl("run", "-d", "--pull=never", *args)


def settings(refd: Refd, cid: str, network: str) -> dict[str, Any]:
    found = refd.ctl("inspect", "-f", "{{json .NetworkSettings.Networks}}", cid).stdout
    value: dict[str, Any] = json.loads(found)[network]
    return value


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def refd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Refd]:
    with running_refd(tmp_path_factory.mktemp("net")) as daemon:
        made = daemon.ctl("network", "create", "--subnet", BASE_SUBNET, BASE)
        assert made.returncode == 0, made.stderr
        try:
            yield daemon
        finally:
            daemon.ctl("network", "rm", BASE)


@pytest.fixture
def plugin() -> Iterator[tuple[str, ScriptedPlugin]]:
    """A plugin whose answers the test writes, where refd finds it by name."""
    PLUGIN_DIR.mkdir(parents=True, exist_ok=True)  # left as the suite's fixture leaves it
    name = unique_name("plugin")
    with scripted_plugin(PLUGIN_DIR / f"{name}.sock") as served:
        yield name, served


@pytest.fixture
def route(refd: Refd) -> Iterator[str]:
    """A subnet that a route of refd's namespace covers (a veth's: this kernel has no dummy
    links), as another engine's bridge would: refd must not take it."""
    name, peer, subnet = link_name(), link_name(), "10.199.0.0/24"
    in_host(refd, "ip", "link", "add", name, "type", "veth", "peer", "name", peer)
    try:
        for step in (
            ("addr", "add", "10.199.0.1/24", "dev", name),
            ("link", "set", peer, "up"),
            ("link", "set", name, "up"),
        ):
            done = in_host(refd, "ip", *step)
            assert done.returncode == 0, done.stderr
        yield subnet
    finally:
        in_host(refd, "ip", "link", "del", name)


# -- network create and remove --------------------------------------------------------------
CREATE_REFUSALS = {
    "overlaps-a-network": (["--subnet", "10.200.0.128/25"], "Pool overlaps with other one"),
    "bad-address": (["--subnet", "10.300.0.0/24"], "invalid CIDR address: 10.300.0.0/24"),
    "bad-prefix": (["--subnet", "10.201.0.0/33"], "invalid CIDR address: 10.201.0.0/33"),
    "no-prefix": (["--subnet", "10.201.0.0"], "invalid CIDR address: 10.201.0.0"),
    "ipv6": (["--subnet", "fd00:1::/64"], "IPv6"),
    "too-small": (["--subnet", "10.201.0.0/31"], "too small"),
    "bad-option": (["-o", "com.docker.network.bridge.enable_icc=maybe"], "enable_icc"),
    "bad-mtu": (["-o", "com.docker.network.driver.mtu=12"], "invalid MTU 12"),
    "long-bridge": (["-o", "com.docker.network.bridge.name=" + "b" * 16], "invalid bridge name"),
}


@pytest.mark.parametrize("case", CREATE_REFUSALS)
def test_network_create_refusals_leave_nothing(refd: Refd, case: str) -> None:
    flags, message = CREATE_REFUSALS[case]
    before, name = footprint(refd), unique_name("net")
    refused(refd.ctl("network", "create", *flags, name), message)
    assert footprint(refd) == before
    assert name not in network_names(refd)


def test_subnet_under_a_route_of_the_engine_host_is_refused(refd: Refd, route: str) -> None:
    before, name = footprint(refd), unique_name("net")
    refused(refd.ctl("network", "create", "--subnet", route, name), "Pool overlaps")
    assert footprint(refd) == before
    assert name not in network_names(refd)


IPAM_REFUSALS = {
    # refctl refuses these itself; refd must too, for any other client.
    "gateway-outside": ({"Subnet": "10.201.0.0/24", "Gateway": "10.202.0.1"}, "not in the subnet"),
    "range-outside": ({"Subnet": "10.201.0.0/24", "IPRange": "10.202.0.0/25"}, "not in the subnet"),
    "bad-gateway": ({"Subnet": "10.201.0.0/24", "Gateway": "10.201.0.300"}, "invalid gateway"),
}


@pytest.mark.parametrize("case", IPAM_REFUSALS)
def test_bad_ipam_over_the_api_is_a_400(refd: Refd, case: str) -> None:
    config, message = IPAM_REFUSALS[case]
    before, name = footprint(refd), unique_name("net")
    body = {"Name": name, "CheckDuplicate": True, "IPAM": {"Config": [config]}}
    status, answer = api_json(refd, "POST", "/networks/create", body)
    assert (status, message in answer["message"]) == (400, True), answer
    assert footprint(refd) == before


def test_unknown_driver_is_a_404(refd: Refd) -> None:
    before, driver, name = footprint(refd), unique_name("nodriver"), unique_name("net")
    refused(refd.ctl("network", "create", "-d", driver, name), f'plugin "{driver}" not found')
    status, answer = api_json(refd, "POST", "/networks/create", {"Name": name, "Driver": driver})
    assert status == 404, answer
    assert footprint(refd) == before


def test_duplicate_name_is_a_409(refd: Refd) -> None:
    before = footprint(refd)
    refused(refd.ctl("network", "create", BASE), f"network with name {BASE} already exists")
    body = {"Name": BASE, "CheckDuplicate": True}
    assert api_json(refd, "POST", "/networks/create", body)[0] == 409
    assert footprint(refd) == before
    assert network_names(refd).count(BASE) == 1


def test_plugin_refusing_create_network(refd: Refd, plugin: tuple[str, ScriptedPlugin]) -> None:
    name, served = plugin
    served.answers["NetworkDriver.CreateNetwork"] = {"Err": "no VLAN left"}
    before, net = footprint(refd), unique_name("net")
    done = refd.ctl("network", "create", "-d", name, "--subnet", "10.203.0.0/24", net)
    refused(done, "no VLAN left")
    assert name in done.stderr  # the message names the plugin
    assert footprint(refd) == before
    assert net not in network_names(refd)
    # The pool went back: a bridge network may have that subnet now.
    again = refd.ctl("network", "create", "--subnet", "10.203.0.0/24", net)
    assert again.returncode == 0, again.stderr
    assert refd.ctl("network", "rm", net).returncode == 0
    assert footprint(refd) == before


def test_hung_plugin_fails_within_the_call_timeout(
    refd: Refd, plugin: tuple[str, ScriptedPlugin]
) -> None:
    """The one slow test (CALL_TIMEOUT, 10 s): a plugin that accepts CreateNetwork and never
    answers fails the create instead of hanging refd."""
    name, served = plugin
    served.answers["NetworkDriver.CreateNetwork"] = HANG
    before, net = footprint(refd), unique_name("net")
    start = time.monotonic()
    done = refd.ctl("network", "create", "-d", name, "--subnet", "10.204.0.0/24", net)
    took = time.monotonic() - start
    refused(done, f"no answer within {CALL_TIMEOUT:g} s")
    assert CALL_TIMEOUT - 1 <= took <= CALL_TIMEOUT + 5, took
    assert footprint(refd) == before
    assert net not in network_names(refd)
    assert refd.ctl("network", "create", "--subnet", "10.204.0.0/24", net).returncode == 0
    assert refd.ctl("network", "rm", net).returncode == 0


def test_hung_plugin_holds_up_no_other_network_operation(
    refd: Refd, plugin: tuple[str, ScriptedPlugin]
) -> None:
    name, served = plugin
    served.answers["NetworkDriver.CreateNetwork"] = HANG
    net = unique_name("net")
    argv = ["network", "create", "-d", name, "--subnet", "10.206.0.0/24", net]
    creating = threading.Thread(target=refd.ctl, args=argv, daemon=True)
    creating.start()
    listing: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 10
        while "NetworkDriver.CreateNetwork" not in served.methods():
            assert time.monotonic() < deadline, served.methods()
            time.sleep(0.05)
        listing = subprocess.Popen(
            [str(REFCTL), "-H", f"unix://{refd.socket}", "network", "ls"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            answered = listing.wait(timeout=3) == 0
        except subprocess.TimeoutExpired:
            answered = False
    finally:
        served.released.set()  # the plugin answers {} now: the create succeeds
        creating.join(30)
        if listing is not None:
            listing.wait(30)
        refd.ctl("network", "rm", net)
    assert answered, "network ls waited for the hung plugin"


def test_remove_with_a_running_container_is_refused(refd: Refd) -> None:
    cid = run(refd, "--network", BASE, refd.image, *SLEEP).stdout.strip()
    try:
        before = footprint(refd)
        network = refd.ctl("network", "inspect", "-f", "{{.Id}}", BASE).stdout.strip()
        refused(
            refd.ctl("network", "rm", BASE), f"network {BASE} id {network} has active endpoints"
        )
        # dockerd answers 403 here (libnetwork's ActiveEndpointsError is "forbidden")
        assert refd.api("DELETE", f"/networks/{BASE}")[0] == 403
        assert footprint(refd) == before
        assert settings(refd, cid, BASE)["IPAddress"].startswith("10.200.0.")
    finally:
        refd.ctl("rm", "-f", cid)


@pytest.mark.parametrize("name", ["bridge", "host", "none"])
def test_predefined_networks_cannot_be_removed(refd: Refd, name: str) -> None:
    before = footprint(refd)
    refused(
        refd.ctl("network", "rm", name), f"{name} is a pre-defined network and cannot be removed"
    )
    assert refd.api("DELETE", f"/networks/{name}")[0] == 403
    assert footprint(refd) == before
    assert name in network_names(refd)


# -- containers -------------------------------------------------------------------------------
def test_run_on_a_missing_network_leaves_no_container(refd: Refd) -> None:
    before, containers = footprint(refd), refd.container_ids()
    entries = names(refd.data / "containers")
    refused(run(refd, "--network", "nosuch", refd.image, *SLEEP), "network nosuch not found")
    body = {"Image": refd.image, "Cmd": SLEEP, "HostConfig": {"NetworkMode": "nosuch"}}
    assert api_json(refd, "POST", "/containers/create", body)[0] == 404
    assert (refd.container_ids(), names(refd.data / "containers")) == (containers, entries)
    assert footprint(refd) == before


BAD_BINDINGS = {
    "host-port": ({"80/tcp": [{"HostPort": "99999"}]}, "invalid host port"),
    "container-port": ({"0/tcp": [{"HostPort": "8080"}]}, "invalid port specification"),
    "protocol": ({"80/icmp": [{"HostPort": "8080"}]}, "invalid port specification"),
    "host-ip": ({"80/tcp": [{"HostIp": "10.1.2", "HostPort": "8080"}]}, "invalid IP address"),
    "sctp": ({"80/sctp": [{"HostPort": "8080"}]}, "sctp ports are not supported"),
    "range": ({"80/tcp": [{"HostPort": "8000-8001"}]}, "host port ranges are not supported"),
}


@pytest.mark.parametrize("case", BAD_BINDINGS)
def test_bad_port_bindings_are_refused_at_create(refd: Refd, case: str) -> None:
    bindings, message = BAD_BINDINGS[case]
    before, containers = footprint(refd), refd.container_ids()
    host_config = {"NetworkMode": BASE, "PortBindings": bindings}
    body = {"Image": refd.image, "Cmd": SLEEP, "HostConfig": host_config}
    status, answer = api_json(refd, "POST", "/containers/create", body)
    assert (status, message in answer["message"]) == (400, True), answer
    assert (refd.container_ids(), footprint(refd)) == (containers, before)


PUBLISH_REFUSALS = {
    # refctl's own checks, as the docker CLI's
    "99999:80": "invalid hostPort: 99999",
    "8080:80/icmp": "invalid proto: icmp",
    "1.2.3:8080:80": "invalid IP address: 1.2.3",
    "8080:http": "invalid containerPort: http",
    # refd's
    "8000-8001:80": "host port ranges are not supported by refd: 8000-8001",
    "8080:80/sctp": "sctp ports are not supported by refd: 80/sctp",
}


@pytest.mark.parametrize("spec", PUBLISH_REFUSALS)
def test_bad_publish_flags_leave_no_container(refd: Refd, spec: str) -> None:
    before, containers = footprint(refd), refd.container_ids()
    refused(run(refd, "--network", BASE, "-p", spec, refd.image, *SLEEP), PUBLISH_REFUSALS[spec])
    assert (refd.container_ids(), footprint(refd)) == (containers, before)


def failed_start_leaves_no_endpoint(refd: Refd, cid: str, network: str, before: Footprint) -> None:
    """The container stays (created, as in Docker) without an endpoint, and the network's
    kernel objects and records are as they were."""
    assert footprint(refd) == before
    found = settings(refd, cid, network)
    assert (found["EndpointID"], found["IPAddress"]) == ("", ""), found
    assert refd.ctl("rm", "-f", cid).returncode == 0
    assert footprint(refd) == before


IP_REFUSALS = {
    "outside-subnet": (BASE, "10.201.0.5", "10.201.0.5 is not in the subnet"),
    "default-bridge": ("bridge", "172.17.0.50", "supported on user defined networks only"),
    "gateway": (BASE, "10.200.0.1", "Address already in use: 10.200.0.1"),
}


@pytest.mark.parametrize("case", IP_REFUSALS)
def test_bad_ip_fails_the_start_and_leaves_no_endpoint(refd: Refd, case: str) -> None:
    network, address, message = IP_REFUSALS[case]
    before, name = footprint(refd), unique_name("ctr")
    done = run(refd, "--name", name, "--network", network, "--ip", address, refd.image, *SLEEP)
    refused(done, message)
    failed_start_leaves_no_endpoint(refd, name, network, before)
