"""Containers on disk: atomic saves, names, lookup, and what restore finds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reference.engine.store import Container, ContainerStore, write_atomic
from reference.errors import ConfigError, ConflictError, NotFoundError


def make(store: ContainerStore, name: str, cid: str | None = None) -> Container:
    cid = cid or store.new_id()
    full = store.reserve(name, cid)
    container = Container({"ID": cid, "Name": full, "Config": {"Image": "x"}}, {"Memory": 0})
    store.add(container)
    return container


def test_ids_are_64_hex(tmp_path: Path) -> None:
    cid = ContainerStore(tmp_path).new_id()
    assert len(cid) == 64
    assert int(cid, 16) >= 0
    assert not cid[:12].isdigit()


def test_names_are_unique_with_dockers_message(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    first = make(store, "web")
    with pytest.raises(ConflictError) as info:
        store.reserve("web", store.new_id())
    assert str(info.value).startswith(
        f'Conflict. The container name "/web" is already in use by container "{first.id}"'
    )
    store.discard(first)
    store.reserve("web", store.new_id())


@pytest.mark.parametrize("name", ["-x", "a", "a b", "a/b", "ü"])
def test_invalid_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="Invalid container name"):
        ContainerStore(tmp_path).reserve(name, "0" * 64)


def test_generated_names(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    assert store.reserve(None, "a" * 64).startswith("/")


def test_lookup_by_id_name_and_prefix(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    a = make(store, "alpha", "abc" + "0" * 61)
    make(store, "beta", "abd" + "0" * 61)
    assert store.get("alpha") is a
    assert store.get("/alpha") is a
    assert store.get("abc") is a
    assert store.get(a.id) is a
    with pytest.raises(ConflictError, match="Multiple IDs found with provided prefix: ab"):
        store.get("ab")
    with pytest.raises(NotFoundError, match="No such container: gamma"):
        store.get("gamma")


def test_round_trip_and_unreadable_directories(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    c = make(store, "keep")
    c.state.status, c.state.pid, c.state.pid_start = "running", 42, 7
    store.save(c)
    (tmp_path / ("f" * 64)).mkdir()  # a create that died before its first save
    found = ContainerStore(tmp_path).load_all()
    loaded = {d.name: x for x, d in found}
    assert loaded["f" * 64] is None
    restored = loaded[c.id]
    assert restored is not None
    assert (restored.name, restored.state.pid, restored.state.pid_start) == ("/keep", 42, 7)
    assert restored.host_config == {"Memory": 0}
    assert json.loads((tmp_path / c.id / "config.v2.json").read_text())["State"]["Running"]


def test_atomic_write_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]
