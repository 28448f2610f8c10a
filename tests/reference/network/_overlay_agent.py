"""One lab host of test_overlay_driver.py's two-host test, run inside that host's network
namespace (`nsenter --net=NS python -m tests.reference.network._overlay_agent ARGS`), so the
driver acts on the namespace of its own process, as in refd:

    ARGS = STORE_URL ADVERTISE EXEC_ROOT ROLE NETWORK_ID SUBNET

ROLE "create" makes and publishes the network; "join" finds it in the store. Either way the
agent then attaches one container sandbox (a netns at EXEC_ROOT/c) the way the controller
does (allocate, create_endpoint, join, plumb) and prints one JSON line: the container's
address and sandbox and the network's overlay sandbox. On "restart" it closes the driver and
restores a new one (printing the programmed peers); on "leave" it detaches,
(ROLE create: also deletes and withdraws the network), closes the driver and prints what
is left: the overlay sandbox and whatever the store still holds.
"""

from __future__ import annotations

import json
import secrets
import sys
from ipaddress import ip_network
from pathlib import Path

from reference.network import sandbox
from reference.network.drivers import overlay_ns
from reference.network.drivers.overlay import OverlayDriver
from reference.network.kvstore import KvStore
from reference.network.model import Endpoint, IpamConfig, Network


def say(doc: dict[str, object]) -> None:
    print(json.dumps(doc), flush=True)


def main(argv: list[str]) -> None:
    url, advertise, exec_root, role, network_id, subnet = argv
    root = Path(exec_root)
    driver = OverlayDriver(KvStore(url), advertise, root)
    if role == "create":
        gateway = str(next(ip_network(subnet).hosts()))  # IPAM reserves it, as for Docker
        network = Network(network_id, "ovl", "overlay", "global", [IpamConfig(subnet, gateway)])
        driver.create_network(network)
        driver.publish_network(network)
    else:
        network = next(n for n in driver.remote_networks() if n.id == network_id)
    address = driver.allocate_address(network)
    endpoint = Endpoint(secrets.token_hex(32), network_id, role, role, address)
    driver.create_endpoint(network, endpoint)
    key = root / "c"
    sandbox.create(key)
    info = driver.join(network, endpoint, str(key))
    endpoint.sandbox_key = str(key)
    endpoint.ifname = sandbox.plumb(info, endpoint, str(key))
    overlay = driver.sandbox_key(network_id)
    say({"address": address, "mac": endpoint.mac, "key": str(key), "overlay": str(overlay),
         "vni": network.options["com.docker.network.driver.overlay.vxlanid_list"]})  # fmt: skip

    while sys.stdin.readline().strip() == "restart":
        # refd restarts: the kernel keeps the sandbox; a peer that left meanwhile lingers
        driver.close()
        overlay_ns.add_peer(overlay, "10.251.0.99", "02:42:0a:fb:00:63", "192.0.2.99")
        driver = OverlayDriver(KvStore(url), advertise, root)
        driver.restore([network], [endpoint])
        with sandbox.ipr(str(overlay)) as ip:
            index = ip.link_lookup(ifname=overlay_ns.VXLAN)[0]
            fdb = sorted(str(e.get_attr("NDA_LLADDR")) for e in ip.fdb("dump", ifindex=index)
                         if e.get_attr("NDA_DST"))  # fmt: skip
        say({"fdb": fdb, "ports": overlay_ns.ports(overlay)})
    sandbox.unplumb(endpoint)
    driver.leave(network, endpoint)
    driver.delete_endpoint(network, endpoint)
    driver.release_address(network, address)
    sandbox.delete(key)
    if role == "create":
        driver.delete_network(network)
        driver.withdraw_network(network)
    driver.close()
    say({"overlay_left": overlay.exists(), "store_left": driver.store.list("/refd", True)})


if __name__ == "__main__":
    main(sys.argv[1:])
