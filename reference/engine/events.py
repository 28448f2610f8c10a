"""The engine's event stream (GET /events): container, image and daemon events as Docker
words them, kept in a bounded history for `since` and fanned out to live subscribers."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

HISTORY = 1024  # Docker keeps the last 256 in memory; a few more cost nothing


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self._subscribers: list[queue.SimpleQueue[dict[str, Any]]] = []

    def emit(
        self, kind: str, action: str, actor: str, attributes: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        ns = time.time_ns()
        attrs = dict(attributes or {})
        event: dict[str, Any] = {
            "Type": kind,
            "Action": action,
            "Actor": {"ID": actor, "Attributes": attrs},
            "scope": "local",
            "time": ns // 1_000_000_000,
            "timeNano": ns,
        }
        if kind == "container":  # the pre-1.22 fields Docker still sends for containers
            event.update(
                status=action, id=actor, **({"from": attrs["image"]} if "image" in attrs else {})
            )
        with self._lock:
            self._history.append(event)
            for subscriber in self._subscribers:
                subscriber.put(event)
        return event

    def subscribe(
        self, since_ns: int | None
    ) -> tuple[list[dict[str, Any]], queue.SimpleQueue[dict[str, Any]]]:
        """Past events at or after `since_ns` (none when None) and a queue of the new ones,
        taken under one lock so that nothing falls between them."""
        subscriber: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        with self._lock:
            past = [e for e in self._history if since_ns is not None and e["timeNano"] >= since_ns]
            self._subscribers.append(subscriber)
        return past, subscriber

    def unsubscribe(self, subscriber: queue.SimpleQueue[dict[str, Any]]) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

    @property
    def listeners(self) -> int:
        with self._lock:
            return len(self._subscribers)


def _check(event: Mapping[str, Any], key: str, value: str) -> bool:
    actor = event["Actor"]
    attrs: Mapping[str, str] = actor["Attributes"]
    if key == "type":
        return bool(event["Type"] == value)
    if key == "event":
        return bool(event["Action"] == value or event["Action"].split(":")[0] == value)
    if key == "container":
        return event["Type"] == "container" and (
            actor["ID"].startswith(value) or attrs.get("name") == value
        )
    if key == "image":
        return value in (attrs.get("image"), attrs.get("name"), actor["ID"])
    if key == "label":
        name, sep, wanted = value.partition("=")
        return attrs.get(name) == wanted if sep else value in attrs
    return True  # filters refd does not know match everything, as unknown ones do in Docker


def matches(event: Mapping[str, Any], filters: Mapping[str, list[str]]) -> bool:
    """Docker's event filters: type, event (action), container/image (id or name), label."""
    return all(
        any(_check(event, key, v) for v in wanted) for key, wanted in filters.items() if wanted
    )
