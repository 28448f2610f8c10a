"""A small client of etcd's v2 keys API: the cluster store of global (overlay) networks.

    store = KvStore("etcd://203.0.113.254:2379")   # several: "etcd://a:2379,b:2379"
    store.put("/refd/x", "1"); store.get("/refd/x")  # ("1", modifiedIndex) or None
    store.create("/refd/vni/256", net_id)            # False if the key exists (unique claims)
    store.list("/refd/ipam/<id>")                    # {full key: value} of the leaves
    values, index = store.snapshot("/refd/overlay/<id>/peers")
    event = store.watch("/refd/overlay/<id>/peers", index, 10.0)   # None on timeout

Docker 20.10's classic overlay speaks to etcd through libkv, on this same v2 API (etcd 3.4
serves it with --enable-v2). The client is plain http.client: one connection per call, every
call with a timeout, every failure a StoreError naming the store URL and the key. The
maintained etcd clients speak v3 only; python-etcd (v2) is unmaintained.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from reference.errors import ConfigError, RefError, UnsupportedError

DEFAULT_PORT = 2379
NOT_FOUND, COMPARE_FAILED, EXISTS, INDEX_CLEARED = 100, 101, 105, 401
REMOVALS = frozenset({"delete", "expire", "compareAndDelete"})


class StoreError(RefError):
    """The cluster store failed, refused or could not be reached. `obj` is the key."""


class IndexCleared(StoreError):
    """A watch asked for events older than etcd's history (1000 events): list again."""


@dataclass(frozen=True)
class Event:
    """One change under a watched directory."""

    action: str  # set, create, update, compareAndSwap, delete, expire, compareAndDelete
    key: str
    value: str | None  # None for removals and directories
    index: int  # the change's modifiedIndex: watch again after it
    dir: bool = False

    @property
    def removed(self) -> bool:
        return self.action in REMOVALS


def parse_url(url: str) -> list[tuple[str, int]]:
    """The (host, port) endpoints of "etcd://host:port[,host:port...]"."""
    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        raise ConfigError(f"invalid cluster store {url!r}: expected etcd://host:port", obj=url)
    if scheme != "etcd":
        raise UnsupportedError(f"cluster store kind {scheme!r} (only etcd is supported)", obj=url)
    endpoints = []
    for item in rest.rstrip("/").split(","):
        host, colon, port = item.strip().rpartition(":")
        if not colon:
            host, port = item.strip(), str(DEFAULT_PORT)
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"invalid cluster store address {item!r}", obj=url)
        endpoints.append((host, int(port)))
    return endpoints


class KvStore:
    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        self._endpoints = parse_url(url)
        self._lock = threading.Lock()
        self._watching: set[http.client.HTTPConnection] = set()

    # -- keys ----------------------------------------------------------------------------
    def get(self, key: str) -> tuple[str, int] | None:
        """(value, modifiedIndex) of a key, None if there is none (or it is a directory)."""
        status, doc, _ = self._call("GET", key)
        if status == 404:
            return None
        node = self._expect(status, doc, key, 200)["node"]
        if node.get("dir"):
            return None
        return str(node.get("value", "")), int(node["modifiedIndex"])

    def put(self, key: str, value: str) -> int:
        """Set a key (made if missing); returns its new modifiedIndex."""
        status, doc, _ = self._call("PUT", key, body={"value": value})
        return int(self._expect(status, doc, key, 200, 201)["node"]["modifiedIndex"])

    def create(self, key: str, value: str) -> bool:
        """Set a key only if it does not exist: True if made, False if it was there. The
        compare-and-swap that makes allocations unique across hosts."""
        status, doc, _ = self._call("PUT", key, {"prevExist": "false"}, {"value": value})
        if status == 412 and doc.get("errorCode") == EXISTS:
            return False
        self._expect(status, doc, key, 201)
        return True

    def delete(self, key: str, *, recursive: bool = False, prev_value: str | None = None) -> bool:
        """Remove a key (a directory with `recursive`); with `prev_value` only if it holds
        that. False if there was nothing to remove (or it held something else)."""
        query = {"recursive": "true"} if recursive else {}
        if prev_value is not None:
            query["prevValue"] = prev_value
        status, doc, _ = self._call("DELETE", key, query)
        if status == 404 or (status == 412 and doc.get("errorCode") == COMPARE_FAILED):
            return False
        self._expect(status, doc, key, 200)
        return True

    def list(self, directory: str, recursive: bool = False) -> dict[str, str]:
        """{full key: value} of the keys in a directory ({} if it does not exist); with
        `recursive` those of its subdirectories too. Directories themselves are left out."""
        return self._listing(directory, recursive)[0]

    def snapshot(self, directory: str) -> tuple[dict[str, str], int]:
        """A recursive listing and the store index it reflects: watch after that index."""
        return self._listing(directory, True)

    def _listing(self, directory: str, recursive: bool) -> tuple[dict[str, str], int]:
        query = {"recursive": "true"} if recursive else {}
        status, doc, index = self._call("GET", directory, query)
        if status == 404:
            return {}, index
        found: dict[str, str] = {}
        _leaves(self._expect(status, doc, directory, 200)["node"], found)
        return found, index

    # -- watches -------------------------------------------------------------------------
    def watch(self, directory: str, after_index: int, timeout: float) -> Event | None:
        """The first change under `directory` (recursive) after store index `after_index`,
        waiting up to `timeout` seconds (None when nothing changed). IndexCleared when
        `after_index` is older than the store's history."""
        query = {"wait": "true", "recursive": "true", "waitIndex": str(after_index + 1)}
        try:
            status, doc, _ = self._call("GET", directory, query, timeout=timeout, watch=True)
        except TimeoutError:
            return None
        if status == 400 and doc.get("errorCode") == INDEX_CLEARED:
            raise IndexCleared(f"cluster store {self.url}: {doc.get('message')}", obj=directory)
        node = self._expect(status, doc, directory, 200)["node"]
        value = None if doc["action"] in REMOVALS or node.get("dir") else node.get("value")
        return Event(doc["action"], node["key"], value, int(node["modifiedIndex"]),
                     bool(node.get("dir")))  # fmt: skip

    def cancel_watches(self) -> None:
        """End the watches in flight (they raise StoreError); refd is shutting down."""
        with self._lock:
            for conn in self._watching:
                if conn.sock is not None:
                    with contextlib.suppress(OSError):
                        conn.sock.shutdown(socket.SHUT_RDWR)

    # -- HTTP ----------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        key: str,
        query: dict[str, str] | None = None,
        body: dict[str, str] | None = None,
        timeout: float | None = None,
        watch: bool = False,
    ) -> tuple[int, dict[str, Any], int]:
        """(HTTP status, JSON document, X-Etcd-Index) of one request, tried on each endpoint
        until one answers. TimeoutError passes through for watches only."""
        path = "/v2/keys" + quote("/" + key.strip("/"), safe="/")
        if query:
            path += "?" + urlencode(query)
        payload = urlencode(body) if body is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        failure: Exception | None = None
        for host, port in self._endpoints:
            conn = http.client.HTTPConnection(host, port, timeout=timeout or self.timeout)
            if watch:
                with self._lock:
                    self._watching.add(conn)
            try:
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                index = int(response.getheader("X-Etcd-Index") or 0)
                return response.status, json.loads(raw) if raw.strip() else {}, index
            except (OSError, http.client.HTTPException, ValueError) as exc:
                if watch and conn.sock is not None:
                    # Connected: a timeout is the watch's own; anything else is a cancel or
                    # a store going away mid-watch, not a reason to wait on another endpoint.
                    if isinstance(exc, TimeoutError):
                        raise
                    raise StoreError(
                        f"cluster store {self.url}: watch ended: {exc}", obj=key
                    ) from exc
                failure = exc
            finally:
                conn.close()
                if watch:
                    with self._lock:
                        self._watching.discard(conn)
        what = "unreachable" if isinstance(failure, OSError) else "answered badly"
        raise StoreError(f"cluster store {self.url} {what}: {failure}", obj=key)

    def _expect(self, status: int, doc: dict[str, Any], key: str, *ok: int) -> dict[str, Any]:
        if status in ok and "node" in doc:
            return doc
        message = doc.get("message") or f"HTTP {status}"
        raise StoreError(f"cluster store {self.url}: {message} (HTTP {status})", obj=key)


def _leaves(node: dict[str, Any], into: dict[str, str]) -> None:
    for child in node.get("nodes", ()):
        if child.get("dir"):
            _leaves(child, into)
        else:
            into[child["key"]] = str(child.get("value", ""))
