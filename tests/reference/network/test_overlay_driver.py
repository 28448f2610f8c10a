"""The overlay driver's logic: against an in-memory etcd (FakeStore, the semantics of
reference.network.kvstore that the driver uses), with the kernel calls (overlay_ns) recorded
instead of made. The kernel side is test_overlay_kernel.py's."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest

from reference.errors import ConfigError, ConflictError, KernelError, UnsupportedError
from reference.network.drivers import overlay_ns
from reference.network.drivers.overlay import OverlayDriver, ipam_dir, network_key, vni_key
from reference.network.drivers.overlay_peers import Peer, peers_dir
from reference.network.kvstore import Event, KvStore, StoreError
from reference.network.model import OVERLAY_VNI, Endpoint, IpamConfig, Network

REFUSED = "10.9.0.66"  # FakeKernel fails to program this peer


class FakeStore(KvStore):
    """etcd v2 in memory: create-only keys, recursive deletes, indexed watches."""

    def __init__(self) -> None:  # no super().__init__: nothing to connect to
        self.url = "etcd://fake:2379"
        self.timeout = 1.0
        self.data: dict[str, tuple[str, int]] = {}
        self.events: list[Event] = []  # events[i].index == i + 1
        self.cond = threading.Condition()
        self.generation = 0

    def _change(self, action: str, key: str, value: str | None, is_dir: bool = False) -> int:
        self.events.append(Event(action, key, value, len(self.events) + 1, is_dir))
        self.cond.notify_all()
        return len(self.events)

    def get(self, key: str) -> tuple[str, int] | None:
        with self.cond:
            return self.data.get(key)

    def put(self, key: str, value: str) -> int:
        with self.cond:
            self.data[key] = (value, self._change("set", key, value))
            return self.data[key][1]

    def create(self, key: str, value: str) -> bool:
        with self.cond:
            if key in self.data:
                return False
            self.data[key] = (value, self._change("create", key, value))
            return True

    def delete(self, key: str, *, recursive: bool = False, prev_value: str | None = None) -> bool:
        with self.cond:
            if key in self.data:
                if prev_value is not None and self.data[key][0] != prev_value:
                    return False
                del self.data[key]
                self._change("delete", key, None)
                return True
            under = [k for k in self.data if k.startswith(key.rstrip("/") + "/")]
            if not recursive or not under:
                return False
            for k in under:
                del self.data[k]
            self._change("delete", key, None, True)
            return True

    def list(self, directory: str, recursive: bool = False) -> dict[str, str]:
        prefix = directory.rstrip("/") + "/"
        with self.cond:
            return {k: v for k, (v, _) in self.data.items() if k.startswith(prefix)
                    and (recursive or "/" not in k[len(prefix):])}  # fmt: skip

    def snapshot(self, directory: str) -> tuple[dict[str, str], int]:
        with self.cond:
            return self.list(directory, True), len(self.events)

    def watch(self, directory: str, after_index: int, timeout: float) -> Event | None:
        deadline = time.monotonic() + timeout
        with self.cond:
            generation = self.generation
            while True:
                for event in self.events[after_index:]:
                    if (event.key + "/").startswith(directory + "/") or directory.startswith(
                        event.key + "/"
                    ):
                        return event
                after_index = len(self.events)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(remaining)
                if generation != self.generation:
                    raise StoreError("watch ended", obj=directory)

    def cancel_watches(self) -> None:
        with self.cond:
            self.generation += 1
            self.cond.notify_all()


class FakeKernel:
    """overlay_ns recorded: sandboxes, ports and programmed peers per sandbox key."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.built: dict[Path, int] = {}  # key → VNI
        self.ports: dict[Path, set[str]] = {}
        self.peers: dict[Path, dict[str, tuple[str, str]]] = {}  # key → ip → (mac, vtep)
        self.lock = threading.Lock()
        patch = {"build": self.build, "intact": lambda key, vni: self.built.get(key) == vni,
                 "teardown": self.teardown, "add_port": self.add_port,
                 "remove_port": self.remove_port, "ports": lambda key: sorted(
                     self.ports.get(key, ())), "add_peer": self.add_peer,
                 "remove_peer": self.remove_peer, "flush_peers": self.flush}  # fmt: skip
        for name, fake in patch.items():
            monkeypatch.setattr(overlay_ns, name, fake)

    def build(
        self, key: Path, network_id: str, vni: int, vtep: str, mtu: int, gateway: str = ""
    ) -> None:
        assert key not in self.built, f"{key} built twice"
        self.built[key] = vni
        self.ports[key], self.peers[key] = set(), {}

    def teardown(self, key: Path) -> None:
        self.built.pop(key, None)
        self.ports.pop(key, None)
        self.peers.pop(key, None)

    def add_port(self, key: Path, endpoint_id: str, mtu: int) -> str:
        self.ports[key].add(f"vo{endpoint_id[:11]}")
        return f"vc{endpoint_id[:11]}"

    def remove_port(self, key: Path, endpoint_id: str) -> None:
        self.ports.get(key, set()).discard(f"vo{endpoint_id[:11]}")

    def add_peer(self, key: Path, address: str, mac: str, vtep: str) -> None:
        if address == REFUSED:
            raise KernelError("program the peer", 22, obj=address)
        with self.lock:
            self.peers[key][address] = (mac, vtep)

    def remove_peer(self, key: Path, address: str, mac: str, vtep: str) -> None:
        with self.lock:
            self.peers.get(key, {}).pop(address, None)

    def flush(self, key: Path) -> None:
        self.peers[key] = {}


def overlay(name: str = "ov", subnet: str = "10.9.0.0/24", **options: str) -> Network:
    config = IpamConfig(subnet, str(next(ip_network(subnet).hosts())))
    return Network(secrets.token_hex(32), name, "overlay", "global", [config], dict(options))


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def hosts(store: FakeStore, tmp_path: Path) -> Iterator[tuple[OverlayDriver, OverlayDriver]]:
    a = OverlayDriver(store, "203.0.113.1:2376", tmp_path / "a")
    b = OverlayDriver(store, "203.0.113.2:2376", tmp_path / "b")
    yield a, b
    a.close()
    b.close()


# -- the store side ----------------------------------------------------------------------
def test_vni_is_claimed_once_from_256(hosts: tuple[OverlayDriver, OverlayDriver]) -> None:
    a, b = hosts
    first, second, chosen = overlay("one"), overlay("two"), overlay("three", **{OVERLAY_VNI: "300"})
    a.create_network(first)
    b.create_network(second)
    a.create_network(chosen)
    assert [n.options[OVERLAY_VNI] for n in (first, second, chosen)] == ["256", "257", "300"]
    assert a.store.get(vni_key(257))[0] == second.id  # type: ignore[index]
    with pytest.raises(ConflictError, match="VNI 300"):
        b.create_network(overlay("four", **{OVERLAY_VNI: "300"}))
    for bad in ("0", "16777216", "x"):
        with pytest.raises(ConfigError, match="VXLAN id"):
            a.create_network(overlay("bad", **{OVERLAY_VNI: bad}))
    with pytest.raises(UnsupportedError, match="encrypted"):
        a.create_network(overlay("enc", encrypted=""))


def test_publish_then_every_host_sees_the_network(
    hosts: tuple[OverlayDriver, OverlayDriver],
) -> None:
    a, b = hosts
    network = overlay()
    a.create_network(network)
    a.publish_network(network)
    stored = json.loads(a.store.get(network_key(network.id))[0])  # type: ignore[index]
    assert stored["options"][OVERLAY_VNI] == "256"
    assert [n.to_doc() for n in b.remote_networks()] == [network.to_doc()]
    a.store.put(network_key("damaged"), "{not json")
    assert [n.id for n in b.remote_networks()] == [network.id]


def test_publish_conflict_gives_the_vni_back(hosts: tuple[OverlayDriver, OverlayDriver]) -> None:
    a, _ = hosts
    network = overlay()
    a.store.put(network_key(network.id), "{}")
    a.create_network(network)
    with pytest.raises(ConflictError, match=network.id):
        a.publish_network(network)
    assert a.store.get(vni_key(256)) is None


def test_addresses_are_unique_across_hosts(hosts: tuple[OverlayDriver, OverlayDriver]) -> None:
    a, b = hosts
    network = overlay(subnet="10.9.0.0/29")
    network.ipam[0].aux_addresses = {"printer": "10.9.0.3"}
    got = [a.allocate_address(network), b.allocate_address(network), a.allocate_address(network)]
    # .0 network, .1 gateway, .3 aux, .7 broadcast are never handed out
    assert got == ["10.9.0.2/29", "10.9.0.4/29", "10.9.0.5/29"]
    assert b.allocate_address(network) == "10.9.0.6/29"
    with pytest.raises(ConflictError, match="no available"):
        a.allocate_address(network)
    b.release_address(network, "10.9.0.4/29")
    assert a.allocate_address(network) == "10.9.0.4/29"
    assert json.loads(a.store.get(f"{ipam_dir(network.id)}/10.9.0.4")[0]) == {  # type: ignore[index]
        "host": "203.0.113.1:2376"
    }


def test_wanted_address_and_ip_range(hosts: tuple[OverlayDriver, OverlayDriver]) -> None:
    a, b = hosts
    network = overlay(subnet="10.9.0.0/24")
    network.ipam[0].ip_range = "10.9.0.128/25"
    assert a.allocate_address(network) == "10.9.0.129/24"
    assert b.allocate_address(network, "10.9.0.50") == "10.9.0.50/24"
    for wanted, error in (("10.9.0.50", ConflictError), ("10.9.0.1", ConflictError),
                          ("10.8.0.1", ConfigError), ("nope", ConfigError)):  # fmt: skip
        with pytest.raises(error):
            a.allocate_address(network, wanted)


def test_withdraw_removes_everything(hosts: tuple[OverlayDriver, OverlayDriver]) -> None:
    a, _ = hosts
    network, other = overlay(), overlay("other")
    for n in (network, other):
        a.create_network(n)
        a.publish_network(n)
        a.allocate_address(n)
    a.store.put(f"{peers_dir(network.id)}/e1", Peer("10.9.0.2", "02:42:0a:09:00:02", "x").dump())
    a.withdraw_network(network)
    left = set(a.store.list("/refd", recursive=True))
    assert not [k for k in left if network.id in k or k == vni_key(256)], left
    assert network_key(other.id) in left
    assert vni_key(257) in left


def test_create_endpoint_mac_and_vtep(tmp_path: Path) -> None:
    driver = OverlayDriver(FakeStore(), "203.0.113.7:2376", tmp_path)
    assert driver.vtep == "203.0.113.7"
    endpoint = Endpoint("e" * 64, "n" * 64, "c", "c", "10.9.0.2/24")
    driver.create_endpoint(overlay(), endpoint)
    assert endpoint.mac == "02:42:0a:09:00:02"
    with pytest.raises(ConfigError, match="e" * 12):
        driver.create_endpoint(overlay(), Endpoint("e" * 64, "n" * 64, "c", "c"))
    with pytest.raises(ConfigError, match="cluster-advertise"):
        OverlayDriver(FakeStore(), "no-such-link0:2376", tmp_path)


# -- joins, peers and watches (kernel recorded) ------------------------------------------
def wait_until(check: Any, what: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def endpoint_on(driver: OverlayDriver, network: Network, name: str) -> Endpoint:
    endpoint = Endpoint(secrets.token_hex(32), network.id, name, name,
                        driver.allocate_address(network))  # fmt: skip
    driver.create_endpoint(network, endpoint)
    return endpoint


def test_peers_follow_joins_and_leaves_on_other_hosts(
    hosts: tuple[OverlayDriver, OverlayDriver], monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = FakeKernel(monkeypatch)
    a, b = hosts
    network = overlay()
    a.create_network(network)
    a.publish_network(network)
    remote = b.remote_networks()[0]
    on_a = endpoint_on(a, network, "x")
    info = a.join(network, on_a, "/run/x")
    assert (info.src_name, info.dst_prefix, info.gateway, info.mtu) == (
        f"vc{on_a.id[:11]}", "eth", "", 1450)  # fmt: skip
    key_a, key_b = a.sandbox_key(network.id), b.sandbox_key(network.id)
    assert kernel.built == {key_a: 256}
    assert Peer.parse(a.store.get(f"{peers_dir(network.id)}/{on_a.id}")[0]) == Peer(  # type: ignore[index]
        "10.9.0.2", "02:42:0a:09:00:02", "203.0.113.1"
    )
    assert kernel.peers[key_a] == {}  # its own endpoint is no remote peer

    on_b = endpoint_on(b, remote, "y")
    b.join(remote, on_b, "/run/y")  # B learns A's peer by listing...
    assert kernel.peers[key_b] == {"10.9.0.2": ("02:42:0a:09:00:02", "203.0.113.1")}
    # ...and A learns B's from its watch
    wait_until(lambda: "10.9.0.3" in kernel.peers[key_a], "A to program B's peer")
    assert kernel.peers[key_a]["10.9.0.3"] == ("02:42:0a:09:00:03", "203.0.113.2")

    second = endpoint_on(a, network, "z")
    a.join(network, second, "/run/z")
    assert kernel.built[key_a] == 256  # one sandbox per network per host
    wait_until(lambda: len(kernel.peers[key_b]) == 2, "B to program A's second peer")
    a.leave(network, on_a)
    wait_until(lambda: "10.9.0.2" not in kernel.peers[key_b], "B to drop A's first peer")
    assert key_a in kernel.built  # A still has an endpoint
    a.leave(network, second)
    assert key_a not in kernel.built  # the last one took the sandbox
    wait_until(lambda: kernel.peers[key_b] == {}, "B to drop A's peers")
    b.leave(remote, on_b)
    assert kernel.built == {}
    assert a.store.list(peers_dir(network.id)) == {}


def test_watch_recovers_from_a_store_outage(
    hosts: tuple[OverlayDriver, OverlayDriver], monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = FakeKernel(monkeypatch)
    monkeypatch.setattr("reference.network.drivers.overlay_peers.RETRY", 0.05)
    a, b = hosts
    network = overlay()
    a.create_network(network)
    a.publish_network(network)
    a.join(network, endpoint_on(a, network, "x"), "/run/x")
    store: FakeStore = a.store  # type: ignore[assignment]
    store.cancel_watches()  # the watch fails once: it lists again and goes on
    b.join(network, endpoint_on(b, network, "y"), "/run/y")
    wait_until(lambda: len(kernel.peers[a.sandbox_key(network.id)]) == 1, "A to see B")


def test_a_bad_peer_keeps_no_other_out(
    hosts: tuple[OverlayDriver, OverlayDriver], monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = FakeKernel(monkeypatch)
    a, _ = hosts
    network = overlay()
    a.create_network(network)
    peers, far = peers_dir(network.id), "198.51.100.9"
    a.store.put(f"{peers}/damaged", "{not json")
    a.store.put(f"{peers}/no-mac", json.dumps({"ip": "10.9.0.7", "mac": "", "vtep": far}))
    a.store.put(f"{peers}/refused", Peer(REFUSED, "02:42:0a:09:00:42", far).dump())
    a.store.put(f"{peers}/good", Peer("10.9.0.8", "02:42:0a:09:00:08", far).dump())
    a.join(network, endpoint_on(a, network, "x"), "/run/x")
    key = a.sandbox_key(network.id)
    assert kernel.peers[key] == {"10.9.0.8": ("02:42:0a:09:00:08", far)}
    a.store.put(f"{peers}/late", Peer("10.9.0.9", "02:42:0a:09:00:09", far).dump())
    wait_until(lambda: "10.9.0.9" in kernel.peers[key], "the watch to go on")


def test_join_failure_leaves_nothing(
    hosts: tuple[OverlayDriver, OverlayDriver], monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = FakeKernel(monkeypatch)
    a, _ = hosts
    network = overlay()
    a.create_network(network)
    endpoint = endpoint_on(a, network, "x")
    store: FakeStore = a.store  # type: ignore[assignment]
    original = store.put

    def refuse(key: str, value: str) -> int:
        if "/peers/" in key:
            raise StoreError("cluster store down", obj=key)
        return original(key, value)

    monkeypatch.setattr(store, "put", refuse)
    with pytest.raises(StoreError):
        a.join(network, endpoint, "/run/x")
    assert kernel.built == {}


def test_restore_keeps_an_intact_sandbox_and_rereads_peers(
    store: FakeStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = FakeKernel(monkeypatch)
    first = OverlayDriver(store, "203.0.113.1:2376", tmp_path)
    network = overlay()
    first.create_network(network)
    endpoint = endpoint_on(first, network, "x")
    first.join(network, endpoint, "/run/x")
    endpoint.sandbox_key = "/run/x"
    first.close()  # refd stops; the kernel keeps the sandbox
    key = first.sandbox_key(network.id)
    far = Peer("10.9.0.9", "02:42:0a:09:00:09", "9.9.9.9")
    store.put(f"{peers_dir(network.id)}/far", far.dump())
    store.delete(f"{peers_dir(network.id)}/{endpoint.id}")  # lost while refd was down
    again = OverlayDriver(store, "203.0.113.1:2376", tmp_path)
    again.restore([network], [endpoint])
    again.restore([network], [endpoint])  # idempotent
    assert kernel.built == {key: 256}
    assert kernel.ports[key] == {f"vo{endpoint.id[:11]}"}
    assert kernel.peers[key] == {"10.9.0.9": ("02:42:0a:09:00:09", "9.9.9.9")}
    assert store.get(f"{peers_dir(network.id)}/{endpoint.id}") is not None
    again.close()
