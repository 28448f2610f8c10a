"""Container and exec endpoints of the Engine API (v1.41 shapes)."""

from __future__ import annotations

import contextlib
import json
import queue
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from reference.engine import stats, views
from reference.engine.api.server import HTTPError, Request, Response
from reference.engine.create import create as create_container
from reference.engine.logs import Entry, frame, read_entries
from reference.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from reference.engine.daemon import Daemon
    from reference.engine.outputs import Follower


class ContainerRoutes:
    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon
        self.engine = daemon.engine

    def routes(self) -> list[tuple[str, str, Any]]:
        c = r"/containers/(?P<id>[^/]+)"
        return [
            ("GET", r"/containers/json", self.list),
            ("POST", r"/containers/create", self.create),
            ("GET", c + r"/json", self.inspect),
            ("GET", c + r"/top", self.top),
            ("GET", c + r"/logs", self.logs),
            ("GET", c + r"/changes", self.changes),
            ("GET", c + r"/stats", self.stats),
            ("POST", c + r"/start", self.start),
            ("POST", c + r"/stop", self.stop),
            ("POST", c + r"/restart", self.restart),
            ("POST", c + r"/kill", self.kill),
            ("POST", c + r"/update", self.update),
            ("POST", c + r"/pause", self.pause),
            ("POST", c + r"/unpause", self.unpause),
            ("POST", c + r"/attach", self.attach),
            ("POST", c + r"/wait", self.wait),
            ("POST", c + r"/resize", lambda r, m: Response(200)),
            ("POST", c + r"/exec", self.exec_create),
            ("DELETE", c, self.remove),
            ("POST", r"/exec/(?P<id>[^/]+)/start", self.exec_start),
            ("POST", r"/exec/(?P<id>[^/]+)/resize", lambda r, m: Response(200)),
            ("GET", r"/exec/(?P<id>[^/]+)/json", self.exec_inspect),
        ]

    def _get(self, m: re.Match[str]) -> Any:
        return self.engine.containers.get(m["id"])

    # -- plain ------------------------------------------------------------------------
    def list(self, r: Request, m: re.Match[str]) -> Any:
        return views.listing(self.engine, r.flag("all"), r.filters(), r.int_arg("limit", -1) or -1)

    def create(self, r: Request, m: re.Match[str]) -> Any:
        body = r.json(required=True)
        if isinstance(body, dict) and body.get("Tty"):
            raise ConfigError("a terminal (Tty) is not supported by refd yet")
        container, warnings = create_container(self.engine, r.arg("name") or None, body)
        payload = {"Id": container.id, "Warnings": warnings}
        return Response(201, json.dumps(payload).encode() + b"\n")

    def inspect(self, r: Request, m: re.Match[str]) -> Any:
        return views.inspect(self.engine, self._get(m))

    def top(self, r: Request, m: re.Match[str]) -> Any:
        return views.top(self.engine, self._get(m), r.arg("ps_args") or "-ef")

    def changes(self, r: Request, m: re.Match[str]) -> Any:
        return views.changes(self.engine, self._get(m))

    def start(self, r: Request, m: re.Match[str]) -> Any:
        self.engine.start(self._get(m))
        return None

    def stop(self, r: Request, m: re.Match[str]) -> Any:
        self.engine.stop(self._get(m), r.int_arg("t"))
        return None

    def restart(self, r: Request, m: re.Match[str]) -> Any:
        from reference.engine.lifecycle import NotModified

        c = self._get(m)
        with contextlib.suppress(NotModified):
            self.engine.stop(c, r.int_arg("t"))
        self.engine.start(c)
        self.engine.emit(c, "restart")
        return None

    def kill(self, r: Request, m: re.Match[str]) -> Any:
        self.engine.kill(self._get(m), r.arg("signal") or "KILL")
        return None

    def update(self, r: Request, m: re.Match[str]) -> Any:
        body = r.json(required=True)
        if not isinstance(body, dict):
            raise ConfigError("invalid JSON: the update must be an object")
        return {"Warnings": self.engine.update(self._get(m), body)}

    def pause(self, r: Request, m: re.Match[str]) -> Any:
        self.engine.pause(self._get(m))
        return None

    def unpause(self, r: Request, m: re.Match[str]) -> Any:
        self.engine.unpause(self._get(m))
        return None

    def remove(self, r: Request, m: re.Match[str]) -> Any:
        c = self._get(m)
        self.engine.remove(c, force=r.flag("force"))
        self.d.execs.forget(c)
        return None

    # -- streams ----------------------------------------------------------------------
    def logs(self, r: Request, m: re.Match[str]) -> Any:
        c = self._get(m)
        wanted = {s for s in ("stdout", "stderr") if r.flag(s)}
        if not wanted:
            raise ConfigError("Bad parameters: you must choose at least one stream")
        since = float(r.arg("since") or 0)
        until = float(r.arg("until") or 0)
        tail = r.arg("tail") or "all"
        stamps = r.flag("timestamps")
        writer = self.engine.outputs.writer(c.id) if r.flag("follow") else None
        follower = None
        if writer is not None:
            past, follower = writer.follow()
        else:
            past = list(read_entries(self.engine.log_path(c)))

        def keep(entry: Entry) -> bool:
            moment = _epoch(entry[2])
            return entry[0] in wanted and moment >= since and (not until or moment <= until)

        selected = [e for e in past if keep(e)]
        if tail != "all":
            try:
                count = int(tail)
            except ValueError:
                raise ConfigError(f"invalid value for tail: {tail!r}") from None
            selected = selected[-count:] if count > 0 else []
        out = r.start(200, "application/vnd.docker.raw-stream")
        assert out is not None
        try:
            for entry in selected:
                out.write(_framed(entry, stamps))
            for item in _followed(follower, r):
                if keep(item):
                    out.write(_framed(item, stamps))
        finally:
            if writer is not None and follower is not None:
                writer.unfollow(follower)
        out.close()
        return None

    def attach(self, r: Request, m: re.Match[str]) -> Any:
        c = self._get(m)
        wanted = {s for s in ("stdout", "stderr") if r.flag(s)}
        past = list(read_entries(self.engine.log_path(c))) if r.flag("logs") else []
        follower = self.engine.attach(c) if r.flag("stream") else None
        wfile = r.hijack()
        try:
            for entry in past:
                if entry[0] in wanted:
                    wfile.write(frame(entry[0], entry[1]))
            wfile.flush()
            for item in _followed(follower, r):
                if item[0] in wanted:
                    wfile.write(frame(item[0], item[1]))
                    wfile.flush()
        finally:
            if follower is not None:
                self.engine.detach(c, follower)
        return None

    def wait(self, r: Request, m: re.Match[str]) -> Any:
        c = self._get(m)
        condition = r.arg("condition") or "not-running"
        if condition not in ("not-running", "next-exit", "removed"):
            raise ConfigError(f"invalid condition: {condition}")
        since = c.exits if condition == "next-exit" else None
        # Headers first: the docker CLI's ContainerWait returns once they arrive and only then
        # starts the container (docker run), so holding them back would deadlock it.
        out = r.start(200, "application/json")
        assert out is not None
        if condition == "removed":
            with c.lock:
                while not c.removed:
                    c.changed.wait(1.0)
                    if r.client_gone():
                        return None
        else:
            while not self.engine.wait_exit(c, 1.0, since):
                if r.client_gone():
                    return None
        error = {"Message": c.state.error} if c.state.error else None
        out.write(json.dumps({"StatusCode": c.state.exit_code, "Error": error}).encode() + b"\n")
        out.close()
        return None

    def stats(self, r: Request, m: re.Match[str]) -> Any:
        c = self._get(m)
        stream = r.flag("stream", True)

        def document(previous: dict[str, Any] | None) -> dict[str, Any]:
            running = c.state.running
            return stats.document(c.id, c.name, c.cgroups_path if running else None, previous)

        if not stream:
            previous = None
            if not r.flag("one-shot") and c.state.running:
                previous = document(None)
                time.sleep(0.5)
            return document(previous)
        out = r.start(200, "application/json")
        assert out is not None
        previous = None
        while not r.client_gone():
            current = document(previous)
            out.write(json.dumps(current).encode() + b"\n")
            if not c.state.running:
                break
            previous = current
            time.sleep(1.0)
        out.close()
        return None

    # -- exec -------------------------------------------------------------------------
    def exec_create(self, r: Request, m: re.Match[str]) -> Any:
        instance = self.d.execs.create(self._get(m), r.json(required=True))
        return Response(201, json.dumps({"Id": instance.id}).encode() + b"\n")

    def exec_inspect(self, r: Request, m: re.Match[str]) -> Any:
        return self.d.execs.get(m["id"]).inspect()

    def exec_start(self, r: Request, m: re.Match[str]) -> Any:
        instance = self.d.execs.get(m["id"])
        body = r.json() or {}
        if not isinstance(body, dict):
            raise ConfigError("invalid JSON: the exec start config must be an object")
        if body.get("Tty"):
            raise ConfigError("a terminal (Tty) is not supported by refd yet")
        if instance.started:
            raise HTTPError(409, f"Error: Exec command {instance.id} has already run")
        if body.get("Detach"):
            threading.Thread(target=self.d.execs.start, args=(instance, None), daemon=True).start()
            return Response(200)
        wfile = r.hijack()
        lock = threading.Lock()

        def sink(stream: str, data: bytes) -> None:
            with lock:
                wfile.write(frame(stream, data))
                wfile.flush()

        self.d.execs.start(instance, sink)
        return None


def _epoch(stamp: str) -> float:
    try:
        base = time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    except ValueError:
        return 0.0
    fraction = re.match(r"\.(\d+)", stamp[19:])
    return base + (float("0." + fraction[1]) if fraction else 0.0)


def _framed(entry: Entry, stamps: bool) -> bytes:
    data = entry[1]
    if stamps:
        data = entry[2].encode() + b" " + data
    return frame(entry[0], data)


def _followed(follower: Follower | None, r: Request) -> Iterator[Entry]:
    """The entries a follower queue delivers until the stream ends (None) or the client goes;
    nothing when there is no follower."""
    while follower is not None:
        try:
            item = follower.get(timeout=1.0)
        except queue.Empty:
            if r.client_gone():
                return
            continue
        if item is None:
            return
        yield item
