"""refd in the host's own network namespace next to a running Docker (issue 7: "it must
coexist with a running Docker on the same host", "work while Docker's FORWARD policy is
DROP"): its default bridge takes the next free pool, a container's published port answers
from a fake WAN host and its outbound traffic is masqueraded, Docker's rules and policy are
untouched, and `refd --purge` leaves neither refd0 nor a REFD chain behind.

Needs root and the machine's dockerd (CI starts it); skipped, saying why, otherwise or when a
refd0 already exists in the host's namespace (another refd runs there)."""

from __future__ import annotations

import ipaddress
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.containers import Containers
from fixtures.image.build import ensure_artifacts
from fixtures.leaks import Ledger
from fixtures.netlab import ROOT, endpoint, free_port, host_probe, links, wait_until, wan
from fixtures.probe import SLEEP, probe
from fixtures.session import CACHE_DIR
from fixtures.targets.base import ContainerSpec
from fixtures.targets.reference import ReferenceDriver
from fixtures.traffic import tcp_exchange

PORT = 8080


def docker_answers() -> bool:
    done = subprocess.run(
        ["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, timeout=10
    )
    return done.returncode == 0


def iptables(*args: str) -> str:
    return subprocess.run(["iptables", *args], capture_output=True, text=True).stdout


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: refd in the host's namespace"),
]


@pytest.fixture
def host_refd(tmp_path: Path) -> Iterator[ReferenceDriver]:
    if not docker_answers():
        pytest.skip("the machine's Docker daemon is not running (scripts/services starts it)")
    if any(link.name == "refd0" for link in links(ROOT)):
        pytest.skip("a refd0 bridge exists in the host's namespace: another refd runs there")
    image = ensure_artifacts(CACHE_DIR / "image")
    driver = ReferenceDriver(
        "beside-docker", tmp_path / "refd", netns=f"/proc/{os.getpid()}/ns/net"
    )
    # Docker sets the FORWARD policy to DROP only when it turned ip_forward on itself; make
    # sure it is DROP here, as on a fresh Docker host, and put back what was.
    policy = iptables("-S", "FORWARD").splitlines()[0].split()[-1]
    subprocess.run(["iptables", "-P", "FORWARD", "DROP"], check=True)
    try:
        driver.setup(image.tarball, image.rootfs, image.digest)
        try:
            yield driver
        finally:
            driver.teardown()
    finally:
        subprocess.run(["iptables", "-P", "FORWARD", policy], check=True)
    assert not any(link.name == "refd0" for link in links(ROOT)), "refd0 is left"
    left = [line for line in iptables("-S").splitlines() if "REFD" in line]
    left += [line for line in iptables("-t", "nat", "-S").splitlines() if "REFD" in line]
    assert not left, f"refd's rules are left: {left}"


def test_refd_beside_docker_on_the_host(host_refd: ReferenceDriver) -> None:
    policy = iptables("-S", "FORWARD").splitlines()[0]
    assert policy == "-P FORWARD DROP", policy
    docker_rules = [line for line in iptables("-S").splitlines() if "DOCKER" in line]
    routes_before = {
        link.name: link.addresses for link in links(ROOT) if link.name.startswith("docker")
    }
    bridge = next(link for link in links(ROOT) if link.name == "refd0")
    subnet = ipaddress.ip_interface(bridge.addresses[0]).network
    for name, addresses in routes_before.items():
        for address in addresses:
            theirs = ipaddress.ip_interface(address).network
            assert not subnet.overlaps(theirs), f"refd0 {subnet} overlaps {name} {theirs}"

    containers = Containers(host_refd, Ledger(), ("beside-docker", host_refd.name))
    try:
        host_port = free_port(ROOT)
        server = containers.start(
            ContainerSpec(command=probe("tcp-listen", PORT, 5), ports=((host_port, PORT),))
        )
        client = containers.start(ContainerSpec(command=SLEEP))
        assert endpoint(server.pid, ROOT).bridge is not None
        with wan(ROOT) as outside:
            wait_until(
                lambda: tcp_exchange(outside.ns, outside.host_addr, host_port, "in") == "echo:in",
                10,
                "the published port from the WAN host",
            )
            with host_probe(outside.ns, "tcp-listen", PORT, 1) as listener:
                assert listener.line() == {"listening": PORT}
                sent = containers.exec(client, probe("tcp-send", outside.wan_addr, PORT, "out"))
                assert sent.exit_code == 0, sent.stderr
                peer = listener.line()["peer"].split(":")[0]
            assert peer == outside.host_addr, f"not masqueraded: the WAN host saw {peer}"
    finally:
        containers.close()
    # Docker's own firewall and policy are as they were.
    assert iptables("-S", "FORWARD").splitlines()[0] == policy
    assert [line for line in iptables("-S").splitlines() if "DOCKER" in line] == docker_rules
