"""The etcd v2 client against a real etcd (Debian's etcd-server, --enable-v2) listening on
127.0.0.1 of a scratch network namespace; each test's thread joins that namespace while it
runs (network namespaces are per thread), so nothing reaches the host's own loopback."""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator

import pytest

from fixtures.netlab import lab_netns
from fixtures.overlay import etcd
from reference.errors import ConfigError, UnsupportedError
from reference.network.kvstore import Event, IndexCleared, KvStore, StoreError, parse_url

CLONE_NEWNET = 0x40000000
URL = "etcd://127.0.0.1:2379"


def test_parse_url() -> None:
    assert parse_url("etcd://203.0.113.254:2379") == [("203.0.113.254", 2379)]
    assert parse_url("etcd://a:1,b:2/") == [("a", 1), ("b", 2)]
    assert parse_url("etcd://store") == [("store", 2379)]
    with pytest.raises(UnsupportedError, match="consul"):
        parse_url("consul://a:8500")
    for bad in ("203.0.113.254:2379", "etcd://", "etcd://a:b", "etcd://a:70000"):
        with pytest.raises(ConfigError):
            parse_url(bad)


@contextlib.contextmanager
def inside(netns: str) -> Iterator[None]:
    """The calling thread (and threads it starts) in `netns` until the block ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns, os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {netns}")
        try:
            yield
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back home")
    finally:
        os.close(home)
        os.close(target)


@pytest.fixture(scope="module")
def etcd_netns() -> Iterator[str]:
    """A scratch namespace with etcd on 127.0.0.1:2379 (the suite's own launcher); its path."""
    if shutil.which("etcd") is None:
        pytest.skip("etcd is not installed (Debian package etcd-server)")
    if os.geteuid() != 0:
        pytest.skip("needs root (a scratch network namespace)")
    with lab_netns() as ns, etcd(ns, "127.0.0.1"):
        assert ns.path is not None
        yield ns.path


@pytest.fixture
def store(etcd_netns: str) -> Iterator[tuple[KvStore, str]]:
    """A client and a fresh key prefix of its own, with the test inside etcd's namespace."""
    with inside(etcd_netns):
        client = KvStore(URL, timeout=2)
        prefix = f"/t{secrets.token_hex(4)}"
        yield client, prefix
        client.delete(prefix, recursive=True)


def test_get_put_create_delete(store: tuple[KvStore, str]) -> None:
    kv, p = store
    assert kv.get(f"{p}/a") is None
    index = kv.put(f"{p}/a", "one")
    assert kv.get(f"{p}/a") == ("one", index)
    assert kv.put(f"{p}/a", "two") > index
    assert kv.create(f"{p}/a", "three") is False
    assert kv.get(f"{p}/a") == ("two", kv.get(f"{p}/a")[1])  # type: ignore[index]
    assert kv.create(f"{p}/b", "x y/z&=") is True  # form-encoded values survive
    assert kv.get(f"{p}/b")[0] == "x y/z&="  # type: ignore[index]
    assert kv.get(p) is None  # a directory has no value
    assert kv.delete(f"{p}/a", prev_value="other") is False
    assert kv.get(f"{p}/a") is not None
    assert kv.delete(f"{p}/a", prev_value="two") is True
    assert kv.delete(f"{p}/a") is False  # already gone: not an error
    assert kv.delete(p, recursive=True) is True
    assert kv.get(f"{p}/b") is None


def test_list_and_snapshot(store: tuple[KvStore, str]) -> None:
    kv, p = store
    assert kv.list(f"{p}/none") == {}
    kv.put(f"{p}/d/a", "1")
    kv.put(f"{p}/d/sub/b", "2")
    assert kv.list(f"{p}/d") == {f"{p}/d/a": "1"}
    assert kv.list(f"{p}/d", recursive=True) == {f"{p}/d/a": "1", f"{p}/d/sub/b": "2"}
    values, index = kv.snapshot(f"{p}/d")
    assert values == kv.list(f"{p}/d", recursive=True)
    assert index >= kv.get(f"{p}/d/sub/b")[1]  # type: ignore[index]


def test_watch_sees_changes_after_an_index(store: tuple[KvStore, str]) -> None:
    kv, p = store
    _, index = kv.snapshot(f"{p}/w")
    started = time.monotonic()
    assert kv.watch(f"{p}/w", index, 0.3) is None
    assert time.monotonic() - started < 2
    timer = threading.Timer(0.2, kv.put, (f"{p}/w/x/y", "v"))
    timer.start()
    event = kv.watch(f"{p}/w", index, 5)
    timer.join()
    assert event is not None
    assert (event.action, event.key, event.value, event.removed) == ("set", f"{p}/w/x/y", "v",
                                                                     False)  # fmt: skip
    kv.put(f"{p}/elsewhere", "not watched")
    kv.delete(f"{p}/w/x", recursive=True)
    # Changes that happened before the watch was asked for are still reported, in order.
    gone = kv.watch(f"{p}/w", event.index, 5)
    assert gone == Event("delete", f"{p}/w/x", None, gone.index, True)  # type: ignore[union-attr]
    assert gone is not None
    assert gone.removed


def test_watch_index_older_than_history(store: tuple[KvStore, str]) -> None:
    kv, p = store
    _, index = kv.snapshot(p)
    for n in range(1010):  # etcd keeps the last 1000 events
        kv.put(f"{p}/churn", str(n))
    with pytest.raises(IndexCleared, match=p):
        kv.watch(f"{p}/w", index, 5)


def test_cancel_watches_ends_a_watch(store: tuple[KvStore, str]) -> None:
    kv, p = store
    _, index = kv.snapshot(p)
    timer = threading.Timer(0.3, kv.cancel_watches)
    timer.start()
    started = time.monotonic()
    with pytest.raises(StoreError, match="watch ended"):
        kv.watch(f"{p}/w", index, 30)
    timer.join()
    assert time.monotonic() - started < 5


def test_errors_name_the_store_and_the_key(store: tuple[KvStore, str]) -> None:
    kv, p = store
    kv.put(f"{p}/file", "x")
    with pytest.raises(StoreError) as caught:
        kv.put(f"{p}/file/child", "y")  # a key under a value: etcd refuses
    assert URL in str(caught.value)
    assert caught.value.obj == f"{p}/file/child"
    down = KvStore("etcd://127.0.0.1:1", timeout=1)
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"etcd://127\.0\.0\.1:1 unreachable.*: /k$"):
        down.get("/k")
    assert time.monotonic() - started < 3
