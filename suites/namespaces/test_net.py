"""Network namespace: the container sees its own links only, in /proc/net and /sys/class/net.

The witness is a link the test adds to the host's namespace: an empty bridge (the kind every
Docker host has; this kernel has no `dummy`), never up and without an address, so no packet
can flow. The host lists it, the container must not. The container's links are
read three ways that must agree: from the host (/proc/<pid>/net/dev), and inside from its
own /proc/net/dev and /sys/class/net.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from fixtures.containers import Containers
from fixtures.probe import SLEEP, probe
from fixtures.session import link_name
from fixtures.targets.base import ContainerSpec


def link_names(net_dev: str) -> set[str]:
    """Interface names from the text of a /proc/net/dev file (two header lines)."""
    return {line.split(":", 1)[0].strip() for line in net_dev.splitlines()[2:] if ":" in line}


@pytest.fixture
def host_link() -> Iterator[str]:
    """An empty, down bridge in the host's network namespace, deleted afterwards."""
    name = link_name()
    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="bridge")
        try:
            yield name
        finally:
            for index in ipr.link_lookup(ifname=name):
                ipr.link("del", index=index)


@pytest.mark.req("NS-NET-02")
def test_container_sees_only_its_own_links(containers: Containers, host_link: str) -> None:
    container = containers.start(ContainerSpec(command=SLEEP))
    assert host_link in link_names(Path("/proc/self/net/dev").read_text())

    from_host = link_names(Path(f"/proc/{container.pid}/net/dev").read_text())
    proc_net = containers.exec(container, probe("cat", "/proc/net/dev"))
    assert proc_net.exit_code == 0, proc_net.stderr
    sys_class_net = containers.exec(container, ["ls", "-1", "/sys/class/net"])
    assert sys_class_net.exit_code == 0, sys_class_net.stderr
    views = {
        "/proc/<pid>/net/dev (host side)": from_host,
        "/proc/net/dev (inside)": link_names(proc_net.stdout),
        "/sys/class/net (inside)": set(sys_class_net.stdout.split()),
    }
    for view, names in views.items():
        assert host_link not in names, f"{view} shows the host's link {host_link}: {names}"
        assert "lo" in names, f"{view} has no loopback of its own: {names}"
    assert len({frozenset(names) for names in views.values()}) == 1, (
        f"the container's views of its links disagree: {views}"
    )
