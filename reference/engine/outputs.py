"""Where each container's output goes while it runs: its LogWriter (json-file, followers)
and the attachers waiting for a run that has not started yet (`docker run` attaches before
it starts the container). One Outputs per engine; the LogHub does the reading."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

from reference.engine import runtime
from reference.engine.logs import Entry, LogHub, LogWriter

Follower = queue.SimpleQueue[Entry | None]


class Outputs:
    def __init__(self) -> None:
        self.hub = LogHub()
        self._lock = threading.Lock()
        self._writers: dict[str, LogWriter] = {}
        self._waiting: dict[str, list[Follower]] = {}

    def writer(self, cid: str) -> LogWriter | None:
        with self._lock:
            return self._writers.get(cid)

    def begin(self, cid: str, log: Path, fds: dict[str, int | None]) -> LogWriter:
        """A run starts: its writer gets the waiting attachers and the read ends (None: that
        stream is already gone)."""
        writer = LogWriter(log)
        with self._lock:
            self._writers[cid] = writer
            for follower in self._waiting.pop(cid, []):
                writer.add_follower(follower)
        for stream, fd in fds.items():
            if fd is None:
                writer.close_stream(stream)
            else:
                self.hub.attach(fd, writer, stream)
        return writer

    def reopen(self, cid: str, log: Path, bundle: Path) -> LogWriter:
        """live-restore: read an adopted container's output FIFOs again."""
        fds = {name: runtime.reopen_fifo(bundle, name) for name in ("stdout", "stderr")}
        return self.begin(cid, log, fds)

    def end(self, cid: str) -> LogWriter | None:
        with self._lock:
            return self._writers.pop(cid, None)

    def attach(self, cid: str, running: bool) -> Follower:
        """A queue of the output from now on (the next run's, if not running)."""
        follower: Follower = queue.SimpleQueue()
        with self._lock:
            writer = self._writers.get(cid)
            if writer is not None and running:
                writer.add_follower(follower)
            else:
                self._waiting.setdefault(cid, []).append(follower)
        return follower

    def detach(self, cid: str, follower: Follower) -> None:
        with self._lock:
            waiting = self._waiting.get(cid, [])
            if follower in waiting:
                waiting.remove(follower)
            writer = self._writers.get(cid)
        if writer is not None:
            writer.unfollow(follower)

    def release(self, cid: str) -> None:
        """No run is coming (failed start, removal): waiting attachers are told the end."""
        with self._lock:
            waiting = self._waiting.pop(cid, [])
        for follower in waiting:
            follower.put(None)
