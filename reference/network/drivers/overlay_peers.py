"""Peer distribution of an overlay network on one host: the endpoints joined on the other
hosts, read from the cluster store and programmed into this host's overlay sandbox.

Every joined endpoint has a record /refd/overlay/<network id>/peers/<endpoint id> =
{"ip", "mac", "vtep"} (written by the driver's join on the endpoint's host). A PeerWatch
lists them once, programs the remote ones (FDB + neighbour entries, overlay_ns.add_peer),
then long-polls the directory and applies each change; when the store fails or its history
moves past the watch, it waits and lists again. The kernel is only touched under the
driver's lock, so a watch never races a join or a teardown of the same sandbox.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from dataclasses import asdict, dataclass
from ipaddress import IPv4Address
from pathlib import Path

from reference.errors import RefError
from reference.network.drivers import overlay_ns
from reference.network.kvstore import Event, KvStore

ROOT = "/refd"
WATCH_POLL = 10.0  # seconds a watch waits before asking again
RETRY = 1.0  # seconds between attempts while the store fails
MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
log = logging.getLogger(__name__)


def peers_dir(network_id: str) -> str:
    return f"{ROOT}/overlay/{network_id}/peers"


@dataclass(frozen=True)
class Peer:
    """A joined endpoint as every host sees it."""

    ip: str  # "10.0.0.2"
    mac: str
    vtep: str  # its host's underlay address

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def parse(cls, value: str) -> Peer | None:
        """None for a record this driver cannot use (another writer's, a damaged one): one
        bad record must not keep the good ones out of the kernel."""
        try:
            doc = json.loads(value)
            peer = cls(str(IPv4Address(doc["ip"])), str(doc["mac"]).lower(),
                       str(IPv4Address(doc["vtep"])))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return None
        return peer if MAC.fullmatch(peer.mac) else None


class PeerWatch:
    """The remote peers of network `network_id` in the overlay sandbox `key`."""

    def __init__(
        self, store: KvStore, network_id: str, key: Path, vtep: str, lock: threading.RLock
    ) -> None:
        self.store = store
        self.network_id = network_id
        self.key = key
        self.vtep = vtep
        self.directory = peers_dir(network_id)
        self.programmed: dict[str, Peer] = {}  # endpoint id → remote peer in the kernel
        self._lock = lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Program the peers the store has now (errors raised), then follow it in a thread."""
        with self._lock:
            index = self.sync()
        self._thread = threading.Thread(
            target=self._run, args=(index,), name=f"overlay-{self.network_id[:12]}", daemon=True
        )
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def stop(self) -> None:
        """The thread ends at its next wake-up (at most WATCH_POLL) and touches nothing more;
        KvStore.cancel_watches wakes it at once."""
        self._stop.set()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def sync(self) -> int:
        """Program the remote peers the store has, remove the others; returns the store
        index the listing reflects (the watch goes on after it). Under the driver's lock."""
        values, index = self.store.snapshot(self.directory)
        wanted = {}
        for key, value in values.items():
            peer = Peer.parse(value)
            if peer is not None and peer.vtep != self.vtep:
                wanted[key.rsplit("/", 1)[1]] = peer
        for endpoint_id, peer in list(self.programmed.items()):
            if wanted.get(endpoint_id) != peer:
                overlay_ns.remove_peer(self.key, peer.ip, peer.mac, peer.vtep)
                del self.programmed[endpoint_id]
        for endpoint_id, peer in wanted.items():
            if endpoint_id not in self.programmed:
                self._add(endpoint_id, peer)
        return index

    def _add(self, endpoint_id: str, peer: Peer) -> None:
        """Program one peer; a failure is logged and the peer left out (the next listing
        tries again), so that the others still reach the kernel."""
        try:
            overlay_ns.add_peer(self.key, peer.ip, peer.mac, peer.vtep)
        except RefError as exc:
            log.warning("overlay %s: peer %s left out: %s", self.network_id[:12], endpoint_id, exc)
            return
        self.programmed[endpoint_id] = peer

    def _run(self, index: int) -> None:
        while not self._stop.is_set():
            try:
                event = self.store.watch(self.directory, index, WATCH_POLL)
                with self._lock:
                    if self._stop.is_set():
                        return
                    if event is not None:
                        index = event.index
                        self.apply(event)
            except Exception:
                # The store went away, its history moved past `index` (IndexCleared), or a
                # kernel call failed: start again from a fresh listing.
                if self._stop.wait(RETRY):
                    return
                with contextlib.suppress(Exception), self._lock:
                    if not self._stop.is_set():
                        index = self.sync()

    def apply(self, event: Event) -> None:
        """One change of the peers directory. Under the driver's lock."""
        if event.removed:  # one peer, or a whole directory above them
            for endpoint_id, gone in list(self.programmed.items()):
                key = f"{self.directory}/{endpoint_id}"
                if key == event.key or key.startswith(event.key.rstrip("/") + "/"):
                    overlay_ns.remove_peer(self.key, gone.ip, gone.mac, gone.vtep)
                    del self.programmed[endpoint_id]
            return
        if event.dir or event.value is None or not event.key.startswith(self.directory + "/"):
            return
        endpoint_id = event.key.rsplit("/", 1)[1]
        peer = Peer.parse(event.value)
        old = self.programmed.pop(endpoint_id, None)
        if old is not None and old != peer:
            overlay_ns.remove_peer(self.key, old.ip, old.mac, old.vtep)
        if peer is not None and peer.vtep != self.vtep:
            self._add(endpoint_id, peer)
