"""Image endpoints of the Engine API: list, inspect, history, tag, remove, load, save,
create (pull, or import with fromSrc=-), push, and commit.

Pull and push stream Docker's progress messages; a failure before the first message is an
HTTP error (what `docker pull` prints as "Error response from daemon: ..."), a later one an
{"errorDetail": ..., "error": ...} message in the stream, as dockerd does.
"""

from __future__ import annotations

import io
import json
import queue
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reference.engine.api.server import Request, Response
from reference.engine.images import summary
from reference.errors import ConfigError, RefError

if TYPE_CHECKING:
    from reference.engine.daemon import Daemon

_DONE = object()


def _message(item: dict[str, Any]) -> bytes:
    return json.dumps(item).encode() + b"\r\n"


class ImageRoutes:
    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon
        self.images = daemon.images
        self.store = daemon.engine.images

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", r"/images/json", self.list_images),
            ("POST", r"/images/create", self.create),
            ("POST", r"/images/load", self.load),
            ("GET", r"/images/get", self.save_many),
            ("GET", r"/images/(?P<name>.+)/get", self.save_one),
            ("GET", r"/images/(?P<name>.+)/json", self.inspect),
            ("GET", r"/images/(?P<name>.+)/history", self.history),
            ("POST", r"/images/(?P<name>.+)/tag", self.tag),
            ("POST", r"/images/(?P<name>.+)/push", self.push),
            ("DELETE", r"/images/(?P<name>.+)", self.remove),
            ("POST", r"/commit", self.commit),
        ]

    def list_images(self, r: Request, m: re.Match[str]) -> Any:
        filters = r.filters()
        found = []
        for image in self.store.list():
            if "dangling" in filters:
                dangling = not image.repo_tags
                if str(dangling).lower() not in [v.lower() for v in filters["dangling"]]:
                    continue
            if "reference" in filters and not any(
                re.fullmatch(_glob(pattern), tag)
                or re.fullmatch(_glob(pattern), tag.rsplit(":", 1)[0])
                for pattern in filters["reference"]
                for tag in image.repo_tags
            ):
                continue
            found.append(summary(image))
        return found

    def inspect(self, r: Request, m: re.Match[str]) -> Any:
        return self.store.inspect(self.store.resolve(m["name"]))

    def history(self, r: Request, m: re.Match[str]) -> Any:
        image = self.store.resolve(m["name"])
        steps = image.config.get("history") or [{}]
        out = []
        for i, step in enumerate(reversed(steps)):
            out.append(
                {
                    "Id": image.id if i == 0 else "<missing>",
                    "Created": 0,
                    "CreatedBy": step.get("created_by", ""),
                    "Tags": list(image.repo_tags) if i == 0 else None,
                    "Size": image.size if i == 0 else 0,
                    "Comment": step.get("comment", ""),
                }
            )
        return out

    def tag(self, r: Request, m: re.Match[str]) -> Any:
        self.images.tag(m["name"], r.arg("repo"), r.arg("tag"))
        return Response(201)

    def remove(self, r: Request, m: re.Match[str]) -> Any:
        return self.images.remove(m["name"], r.flag("force"))

    def load(self, r: Request, m: re.Match[str]) -> Any:
        loaded = self.images.load(io.BufferedReader(r.body(), 1 << 20))
        lines = [
            {"stream": f"Loaded image{' ID' if ref.startswith('sha256:') else ''}: {ref}\n"}
            for ref in loaded
        ]
        return Response(200, b"".join(_message(line) for line in lines))

    def _save(self, r: Request, names: list[str]) -> Any:
        if not names:
            raise ConfigError("no image names given")
        for name in names:
            self.store.resolve(name)
        out = r.start(200, "application/x-tar")
        assert out is not None
        buffered = io.BufferedWriter(out, 1 << 16)
        try:
            self.images.save(names, buffered)
            buffered.flush()
        except RefError:
            r.handler.close_connection = True  # the tar is cut short: the client sees it
            return None
        out.close()
        return None

    def save_many(self, r: Request, m: re.Match[str]) -> Any:
        return self._save(r, r.args("names"))

    def save_one(self, r: Request, m: re.Match[str]) -> Any:
        return self._save(r, [m["name"]])

    def _progress(self, r: Request, work: Callable[[Callable[[dict[str, Any]], None]], Any]) -> Any:
        """Run `work(progress)` in a thread; stream its messages (see module doc)."""
        messages: queue.SimpleQueue[Any] = queue.SimpleQueue()

        def run() -> None:
            try:
                work(messages.put)
                messages.put(_DONE)
            except Exception as e:  # handed to the request thread, which answers with it
                messages.put(e)

        threading.Thread(target=run, name="image-progress", daemon=True).start()
        first = messages.get()
        if isinstance(first, Exception):
            raise first
        out = r.start(200, "application/json")
        assert out is not None
        item = first
        while item is not _DONE:
            if isinstance(item, Exception):
                text = str(item)
                out.write(_message({"errorDetail": {"message": text}, "error": text}))
                break
            out.write(_message(item))
            item = messages.get()
        out.close()
        return None

    def create(self, r: Request, m: re.Match[str]) -> Any:
        source, image_name = r.arg("fromSrc"), r.arg("fromImage")
        if source:
            if source != "-":
                raise ConfigError("importing from a URL is not supported by refd: use fromSrc=-")
            repo, tag = r.arg("repo"), r.arg("tag")
            ref = (f"{repo}:{tag}" if tag else repo) if repo else None
            image = self.images.import_(
                io.BufferedReader(r.body(), 1 << 20), ref, r.args("changes"), r.arg("message")
            )
            return Response(200, _message({"status": image.id}))
        if not image_name:
            raise ConfigError("fromImage or fromSrc is required")
        tag = r.arg("tag")
        ref = (
            image_name
            if not tag
            else (
                f"{image_name}@{tag}"
                if ":" in tag and tag.startswith("sha256")
                else f"{image_name}:{tag}"
            )
        )
        r.drain()
        return self._progress(r, lambda progress: self.images.pull(ref, progress))

    def push(self, r: Request, m: re.Match[str]) -> Any:
        tag = r.arg("tag")
        ref = f"{m['name']}:{tag}" if tag else m["name"]
        r.drain()
        return self._progress(r, lambda progress: self.images.push(ref, progress))

    def commit(self, r: Request, m: re.Match[str]) -> Any:
        c = self.d.engine.containers.get(r.arg("container"))
        body = r.json()
        if body is not None and not isinstance(body, dict):
            raise ConfigError("invalid JSON: the config must be an object")
        repo, tag = r.arg("repo"), r.arg("tag")
        ref = f"{repo}:{tag or 'latest'}" if repo else None
        image = self.images.commit(
            c,
            ref,
            body,
            r.args("changes"),
            r.arg("comment"),
            r.arg("author"),
            r.flag("pause", True),
        )
        return Response(201, json.dumps({"Id": image.id}).encode() + b"\n")


def _glob(pattern: str) -> str:
    return "".join(".*" if ch == "*" else re.escape(ch) for ch in pattern)
