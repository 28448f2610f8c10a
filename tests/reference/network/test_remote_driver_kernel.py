"""A container's life against the suite's own plugin (fixtures/remote_plugin.py), run as a
process in a network namespace of its own, as a real plugin is a process apart: the remote
driver finds it, the link it makes is moved into a real sandbox, configured, handed back and
deleted, and the plugin sees Docker 20.10's calls in Docker's order. Needs root."""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference.network import sandbox
from reference.network.drivers.remote import forget_remote_drivers, remote_driver
from reference.network.model import Endpoint, IpamConfig, Network
from reference.network.plugins import Discovery

REPO = Path(__file__).resolve().parents[3]
MODULE = "tests.reference.network._plugin_proc"
ND = "NetworkDriver."

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: netns and veths")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Unix socket paths are at most 107 bytes: pytest's tmp_path can be longer."""
    path = Path(tempfile.mkdtemp(prefix="rk", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def plugin_proc(short_dir: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    """The suite's plugin in a fresh network namespace (gone with the process)."""
    log = short_dir / "calls.jsonl"
    proc = subprocess.Popen(
        ["unshare", "--net", sys.executable, "-m", MODULE, str(short_dir), str(log)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        name = proc.stdout.readline().strip() if ready else ""
        assert name, "the plugin process did not start"
        yield proc, name, log
    finally:
        proc.terminate()
        proc.wait(10)


def links_in(netns: str) -> set[str]:
    with sandbox.ipr(netns) as ip:
        return {str(link.get_attr("IFLA_IFNAME")) for link in ip.get_links()}


def test_a_container_life_against_the_suites_plugin(
    short_dir: Path, plugin_proc: tuple[subprocess.Popen[str], str, Path]
) -> None:
    proc, name, log = plugin_proc
    plugin_ns = f"/proc/{proc.pid}/ns/net"
    key = short_dir / "sandbox"
    try:
        driver = remote_driver(name, Discovery((short_dir,), ()))
        assert driver is not None
        net = Network(
            secrets.token_hex(32), "rn", name, ipam=[IpamConfig("10.213.7.0/24", "10.213.7.1")]
        )
        driver.create_network(net)
        ep = Endpoint(secrets.token_hex(32), net.id, "c" * 64, "c1", "10.213.7.2/24", "10.213.7.1")
        # The controller's order: create_endpoint, the sandbox, join, plumb, program.
        driver.create_endpoint(net, ep)
        sandbox.create(key)
        info = driver.join(net, ep, str(key))
        assert info.src_netns == plugin_ns, "the link is where the plugin runs, not here"
        assert info.src_name in links_in(plugin_ns)
        ep.src_name, ep.src_netns, ep.sandbox_key = info.src_name, info.src_netns, str(key)
        ep.ifname = sandbox.plumb(info, ep, str(key))
        driver.program(net, ep)
        assert ep.ifname == "eth0"
        assert info.src_name not in links_in(plugin_ns)
        with sandbox.ipr(str(key)) as ip:
            index = sandbox.link_index(ip, "eth0", str(key))
            addresses = {
                (a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ip.get_addr(index=index)
            }
        assert ("10.213.7.2", 24) in addresses
        # Docker's order out: Leave, the link handed back, DeleteEndpoint (the plugin deletes it).
        driver.leave(net, ep)
        sandbox.unplumb(ep, give_back=True)
        assert info.src_name in links_in(plugin_ns)
        driver.delete_endpoint(net, ep)
        assert links_in(plugin_ns) == {"lo"}
        driver.delete_network(net)
    finally:
        sandbox.delete(key)
        forget_remote_drivers()
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["method"].removeprefix(ND) for c in calls] == [
        "Plugin.Activate",
        "GetCapabilities",
        "CreateNetwork",
        "CreateEndpoint",
        "Join",
        "EndpointOperInfo",
        "Leave",
        "DeleteEndpoint",
        "DeleteNetwork",
    ]
    assert calls[4]["body"]["SandboxKey"] == str(key)
