"""The host and null network drivers: --network host shares the engine's namespace;
--network none gives a namespace with only loopback, and no veth for it anywhere.
"""

from __future__ import annotations

import pytest

from fixtures.containers import Containers
from fixtures.netlab import Netns, links
from fixtures.probe import SLEEP
from fixtures.targets.base import ContainerSpec

pytestmark = pytest.mark.needs("network-modes")


@pytest.mark.req("NS-NET-04")
def test_host_network_is_the_engines_namespace(containers: Containers, engine_ns: Netns) -> None:
    container = containers.start(ContainerSpec(command=SLEEP, network="host"))
    assert Netns.of_pid(container.pid).inode == engine_ns.inode


@pytest.mark.req("NS-NET-05")
def test_none_network_has_only_loopback(containers: Containers, engine_ns: Netns) -> None:
    container = containers.start(ContainerSpec(command=SLEEP, network="none"))
    own = Netns.of_pid(container.pid)
    assert own.inode != engine_ns.inode, "--network none shares the engine's namespace"
    found = links(own)
    assert [(link.name, link.up, link.addresses) for link in found] == [
        ("lo", True, ("127.0.0.1/8",))
    ], found
    # No veth was made for it: none in the engine's namespace has its peer there. (Counting
    # the host's veths before and after would race with other tests' containers.)
    nsid = engine_ns.nsid_of(own)
    paired = [link.name for link in links(engine_ns) if nsid >= 0 and link.peer_nsid == nsid]
    assert not paired, f"links in the engine's namespace point into the container's: {paired}"
