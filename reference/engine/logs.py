"""Container output: Docker's json-file log driver, and one thread that copies every running
container's stdout/stderr pipes into it.

A container's init gets the write ends of two pipes as stdout and stderr (through the OCI
runtime's `create`); refd keeps the read ends. One selector thread serves all containers
(one thread per container would cost a stack each for nothing). Each line becomes one JSON
object per line of data-root/containers/<id>/<id>-json.log:
    {"log":"hello\\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}
Followers (logs --follow, attach) get each line as it is written, under the writer's lock, so
that "read the file, then follow" loses and repeats nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import selectors
import threading
from collections.abc import Iterator
from pathlib import Path

from reference.engine.store import now_rfc3339

MAX_LINE = 16 * 1024  # Docker splits longer lines into partial messages of this size
Entry = tuple[str, bytes, str]  # (stream, data, time)


class LogWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.lock = threading.Lock()
        self._partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        self._open = {"stdout", "stderr"}
        self._followers: list[queue.SimpleQueue[Entry | None]] = []
        self.done = threading.Event()  # both streams closed: the output is complete

    def _write(self, stream: str, data: bytes) -> None:
        stamp = now_rfc3339()
        record = {"log": data.decode("utf-8", "replace"), "stream": stream, "time": stamp}
        os.write(self._fd, (json.dumps(record) + "\n").encode())
        for follower in self._followers:
            follower.put((stream, data, stamp))

    def feed(self, stream: str, data: bytes) -> None:
        with self.lock:
            buffered = self._partial[stream] + data
            while True:
                cut = buffered.find(b"\n")
                if cut < 0 or cut >= MAX_LINE:
                    break
                self._write(stream, buffered[: cut + 1])
                buffered = buffered[cut + 1 :]
            while len(buffered) >= MAX_LINE:
                self._write(stream, buffered[:MAX_LINE])
                buffered = buffered[MAX_LINE:]
            self._partial[stream] = buffered

    def close_stream(self, stream: str) -> None:
        with self.lock:
            if self._partial[stream]:
                self._write(stream, self._partial[stream])
                self._partial[stream] = b""
            self._open.discard(stream)
            if not self._open:
                os.close(self._fd)
                for follower in self._followers:
                    follower.put(None)
                self._followers.clear()
                self.done.set()

    def follow(self) -> tuple[list[Entry], queue.SimpleQueue[Entry | None]]:
        """What the file holds now, and a queue of what comes next (None at the end)."""
        follower: queue.SimpleQueue[Entry | None] = queue.SimpleQueue()
        with self.lock:
            past = list(read_entries(self.path))
            if self.done.is_set():
                follower.put(None)
            else:
                self._followers.append(follower)
        return past, follower

    def add_follower(self, follower: queue.SimpleQueue[Entry | None]) -> None:
        """From now on (attach: no history)."""
        with self.lock:
            if self.done.is_set():
                follower.put(None)
            else:
                self._followers.append(follower)

    def unfollow(self, follower: queue.SimpleQueue[Entry | None]) -> None:
        with self.lock:
            if follower in self._followers:
                self._followers.remove(follower)


def read_entries(path: Path) -> Iterator[Entry]:
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return
    for line in lines:
        try:
            record = json.loads(line)
            yield record["stream"], record["log"].encode(), record["time"]
        except (ValueError, KeyError, AttributeError):
            continue  # a torn last line after a crash


class LogHub:
    """The one thread that drains every container's output pipes."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._pending: list[tuple[int, LogWriter, str]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="loghub", daemon=True)
        self._thread.start()

    def attach(self, fd: int, writer: LogWriter, stream: str) -> None:
        os.set_blocking(fd, False)
        with self._lock:
            self._pending.append((fd, writer, stream))
        os.write(self._wake_w, b"x")

    def _run(self) -> None:
        while True:
            for key, _ in self._selector.select():
                if key.data is None:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                    with self._lock:
                        pending, self._pending = self._pending, []
                    for fd, writer, stream in pending:
                        self._selector.register(fd, selectors.EVENT_READ, (writer, stream))
                    continue
                writer, stream = key.data
                fd = key.fd
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    writer.feed(stream, data)
                    continue
                self._selector.unregister(fd)
                os.close(fd)
                writer.close_stream(stream)


def frame(stream: str, data: bytes) -> bytes:
    """Docker's multiplexed stream: [type, 0, 0, 0, size (big endian u32)] + data."""
    kind = {"stdin": 0, "stdout": 1, "stderr": 2}[stream]
    return bytes((kind, 0, 0, 0)) + len(data).to_bytes(4, "big") + data
