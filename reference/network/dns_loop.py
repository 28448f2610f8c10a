"""The thread of the embedded DNS server (reference.network.dns): one selector loop for every
sandbox, which makes sockets inside network namespaces without moving any other thread.

setns(2) of a thread changes that thread's network namespace only, and a socket belongs to
the namespace it was made in. So the loop thread enters a sandbox, makes its sockets and
comes back (`inside`), and no other thread of refd ever leaves refd's namespace. The
selector and every socket are the loop thread's: other threads hand it work (`call`) and
wait for the result, so that a failure (a port taken) is raised to them.

Subclasses handle events (the `data` of each registration is a handler taking the event
mask) and say when they next need to wake up without an event (`timeout`, `expire`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from reference.errors import KernelError, RefError, StateError

CALL_TIMEOUT = 10.0  # seconds a caller waits for the loop
CLONE_NEWNET = 0x40000000
Handler = Callable[[int], None]


def log(message: str) -> None:
    sys.stderr.write(f'level=warning msg="dns: {message}"\n')


@dataclass(eq=False)
class _Call:
    work: Callable[[], Any]
    done: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None


class SelectorThread:
    def __init__(self, name: str) -> None:
        self.name = name
        self.selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._queue: list[_Call] = []
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._home = -1  # refd's network namespace (an fd), where the thread returns
        self.running = False
        self._libc = ctypes.CDLL(None, use_errno=True)

    # -- for the subclass ----------------------------------------------------------------
    def timeout(self) -> float | None:
        """Seconds until `expire` is due (None: only events wake the loop)."""
        return None

    def expire(self, now: float) -> None:
        """Deadlines passed by `now` (time.monotonic())."""

    def shutdown(self) -> None:
        """Close everything; the loop ends after it."""

    def watch(self, sock: socket.socket, handler: Handler, events: int = 1) -> None:
        self.selector.register(sock, events, handler)

    def unwatch(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(sock)
        sock.close()

    def want(self, sock: socket.socket, events: int) -> None:
        key = self.selector.get_key(sock)
        if key.events != events:
            self.selector.modify(sock, events, key.data)

    @contextlib.contextmanager
    def inside(self, netns: str) -> Iterator[None]:
        """The loop thread in the namespace bound at `netns` (sockets made now are made
        there), back in refd's afterwards."""
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._setns(fd, netns)
            try:
                yield
            finally:
                try:
                    self._setns(self._home, "refd's namespace")
                except KernelError:
                    self.running = False  # stuck in a container's namespace: stop serving
                    raise
        finally:
            os.close(fd)

    # -- any thread ----------------------------------------------------------------------
    def call(self, work: Callable[[], Any]) -> None:
        """Run `work` on the loop thread (started if need be); its error is raised here."""
        if threading.current_thread() is self._thread:
            work()  # a handler's own call: the loop is here already
            return
        call = _Call(work)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._start()
            assert self._wake is not None
            self._queue.append(call)
            with contextlib.suppress(BlockingIOError):
                self._wake[1].send(b"\0")
        if not call.done.wait(CALL_TIMEOUT):
            raise StateError("the loop thread does not answer", obj=self.name)
        if call.error is not None:
            raise call.error

    def stop_thread(self) -> None:
        with self._lock:
            thread = self._thread
        if thread is None or not thread.is_alive():
            return
        with contextlib.suppress(StateError):
            self.call(self.shutdown)
        thread.join(CALL_TIMEOUT)

    def _start(self) -> None:
        self._home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._wake = socket.socketpair()
        for end in self._wake:
            end.setblocking(False)
        self.selector.register(self._wake[0], selectors.EVENT_READ, self._on_wake)
        self.running = True
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    # -- the loop thread -----------------------------------------------------------------
    def _setns(self, fd: int, where: str) -> None:
        if self._libc.setns(fd, CLONE_NEWNET) != 0:
            raise KernelError("setns", ctypes.get_errno(), obj=where)

    def _run(self) -> None:
        try:
            self._setns(self._home, "refd's namespace")
            while self.running:
                for key, mask in self.selector.select(self.timeout()):
                    if self.selector.get_map().get(key.fd) is not key:
                        continue  # closed by an earlier handler of this round
                    try:
                        key.data(mask)
                    except Exception as e:  # one bad packet or peer must not stop the loop
                        log(f"{type(e).__name__}: {e}")
                self.expire(time.monotonic())
        except BaseException as e:
            log(f"{self.name} stopped: {e}")
            with contextlib.suppress(Exception):
                self.shutdown()
            raise
        finally:
            self._finish()

    def _on_wake(self, mask: int) -> None:
        assert self._wake is not None
        with contextlib.suppress(BlockingIOError):
            self._wake[0].recv(4096)
        with self._lock:
            work, self._queue = self._queue, []
        for call in work:
            try:
                call.work()
            except Exception as e:
                call.error = e if isinstance(e, RefError) else RefError(str(e), obj=self.name)
            call.done.set()

    def _finish(self) -> None:
        """The thread ends: calls still queued fail; the wake-up pair and the fd go."""
        self.running = False
        with self._lock:
            work, self._queue = self._queue, []
            if self._wake is not None:
                self.unwatch(self._wake[0])
                self._wake[1].close()
                self._wake = None
            os.close(self._home)
            self._home = -1
        for call in work:
            call.error = StateError("the loop thread stopped", obj=self.name)
            call.done.set()
