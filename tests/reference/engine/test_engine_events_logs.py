"""The event bus and the json-file log writer."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from reference.engine.events import EventBus, matches
from reference.engine.logs import LogHub, LogWriter, frame, read_entries


def test_events_shape_history_and_filters() -> None:
    bus = EventBus()
    before = time.time_ns()
    bus.emit("container", "create", "c1", {"image": "bb", "name": "web"})
    past, queue = bus.subscribe(before)
    assert [e["Action"] for e in past] == ["create"]
    event = past[0]
    assert (event["status"], event["id"], event["from"], event["Type"]) == (
        "create",
        "c1",
        "bb",
        "container",
    )
    bus.emit("image", "tag", "sha256:x", {"name": "bb:t"})
    live = queue.get(timeout=1)
    assert live["Type"] == "image"
    assert "status" not in live
    assert matches(event, {"type": ["container"], "container": ["web"]})
    assert not matches(event, {"event": ["die"]})
    assert matches(event, {"event": ["create", "die"]})
    assert matches({**event, "Action": "exec_start: sh -c x"}, {"event": ["exec_start"]})
    assert matches(event, {"label": []})
    bus.unsubscribe(queue)
    assert bus.listeners == 0


def test_log_lines_partials_and_followers(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "c-json.log")
    past, follower = writer.follow()
    assert past == []
    writer.feed("stdout", b"one\ntw")
    writer.feed("stderr", b"err\n")
    writer.feed("stdout", b"o\nthree")
    writer.close_stream("stdout")
    assert not writer.done.is_set()
    writer.close_stream("stderr")
    assert writer.done.is_set()
    entries = [(s, d) for s, d, _ in read_entries(tmp_path / "c-json.log")]
    assert entries == [
        ("stdout", b"one\n"),
        ("stderr", b"err\n"),
        ("stdout", b"two\n"),
        ("stdout", b"three"),
    ]
    got = []
    while (item := follower.get(timeout=1)) is not None:
        got.append((item[0], item[1]))
    assert got == entries
    record = json.loads((tmp_path / "c-json.log").read_text().splitlines()[0])
    assert set(record) == {"log", "stream", "time"}
    assert record["time"].endswith("Z")


def test_hub_drains_pipes_until_eof(tmp_path: Path) -> None:
    hub = LogHub()
    writer = LogWriter(tmp_path / "x.log")
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    hub.attach(r1, writer, "stdout")
    hub.attach(r2, writer, "stderr")
    os.write(w1, b"hello\n")
    os.write(w2, b"oops\n")
    os.close(w1)
    os.close(w2)
    assert writer.done.wait(5)
    assert sorted(d for _, d, _ in read_entries(tmp_path / "x.log")) == [b"hello\n", b"oops\n"]


def test_multiplexed_frame() -> None:
    assert frame("stderr", b"abc") == b"\x02\x00\x00\x00\x00\x00\x00\x03abc"
    assert frame("stdout", b"")[:1] == b"\x01"
