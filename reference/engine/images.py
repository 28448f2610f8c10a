"""The engine's image verbs over reference.image: load, save, import, pull, push, tag, remove,
commit and the list view, each emitting Docker's image events.

`changes` (docker import -c / commit -c) are Dockerfile instructions; Docker applies a subset
to the runtime config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME,
WORKDIR), and so does `apply_changes`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import shlex
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from reference.engine.store import Container
from reference.errors import ConfigError, RefError

if TYPE_CHECKING:
    from reference.engine.lifecycle import Engine
    from reference.image.registry import RegistryClient
    from reference.image.store import Image

Progress = Callable[[dict[str, Any]], None]
COMMIT_EXCLUDE = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")


def _json_or_shell(rest: str) -> list[str]:
    rest = rest.strip()
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            raise ConfigError(f"invalid JSON in change: {rest}") from None
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ConfigError(f"expected a JSON array of strings: {rest}")
        return value
    return ["/bin/sh", "-c", rest]


def apply_changes(config: dict[str, Any], changes: Sequence[str]) -> dict[str, Any]:
    out = copy.deepcopy(config)
    for change in changes:
        word, _, rest = change.strip().partition(" ")
        word = word.upper()
        if word == "CMD":
            out["Cmd"] = _json_or_shell(rest)
        elif word == "ENTRYPOINT":
            out["Entrypoint"] = _json_or_shell(rest)
        elif word == "ENV":
            pairs = shlex.split(rest)
            if len(pairs) == 2 and "=" not in pairs[0]:
                pairs = [f"{pairs[0]}={pairs[1]}"]
            env = {e.split("=", 1)[0]: e for e in out.get("Env") or []}
            env.update({p.split("=", 1)[0]: p for p in pairs})
            out["Env"] = list(env.values())
        elif word == "EXPOSE":
            ports = dict(out.get("ExposedPorts") or {})
            for port in rest.split():
                ports[port if "/" in port else f"{port}/tcp"] = {}
            out["ExposedPorts"] = ports
        elif word == "LABEL":
            labels = dict(out.get("Labels") or {})
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                labels[key] = value
            out["Labels"] = labels
        elif word in ("STOPSIGNAL", "USER", "WORKDIR"):
            key = {"STOPSIGNAL": "StopSignal", "USER": "User", "WORKDIR": "WorkingDir"}[word]
            out[key] = rest.strip()
        elif word == "VOLUME":
            volumes = dict(out.get("Volumes") or {})
            for path in _json_or_shell(rest) if rest.strip().startswith("[") else rest.split():
                volumes[path] = {}
            out["Volumes"] = volumes
        else:
            raise ConfigError(f"{word} is not a valid change command")
    return out


def _epoch(stamp: str) -> int:
    with contextlib.suppress(ValueError):
        return int(time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone)
    return 0


def summary(image: Image) -> dict[str, Any]:
    """ImageSummary; untagged images read "<none>:<none>" as in Docker 20.10."""
    tags, digests = list(image.repo_tags), list(image.repo_digests)
    if not tags and not digests:
        tags, digests = ["<none>:<none>"], ["<none>@<none>"]
    return {
        "Id": image.id,
        "ParentId": image.parent,
        "RepoTags": tags,
        "RepoDigests": digests,
        "Created": _epoch(str(image.config.get("created", ""))),
        "Size": image.size,
        "SharedSize": -1,
        "VirtualSize": image.size,
        "Labels": (image.config.get("config") or {}).get("Labels") or {},
        "Containers": -1,
    }


class Images:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.images

    def _emit(self, action: str, actor: str, name: str = "") -> None:
        self.engine.events.emit("image", action, actor, {"name": name} if name else {})

    def load(self, archive: BinaryIO) -> list[str]:
        loaded = self.store.load(archive)
        for ref in loaded:
            self._emit("load", ref, ref)
        return loaded

    def save(self, names: Sequence[str], out: BinaryIO) -> None:
        for name in names:
            self.store.resolve(name)  # a NotFoundError before the first byte is sent
        self.store.save(names, out)
        for name in names:
            self._emit("save", name, name)

    def import_(
        self, archive: BinaryIO, ref: str | None, changes: Sequence[str], message: str
    ) -> Image:
        overrides = apply_changes({}, changes) if changes else None
        image = self.store.import_rootfs(
            archive, ref, overrides, comment=message or "Imported from -"
        )
        self._emit("import", image.id, ref or "")
        return image

    def tag(self, source: str, repo: str, tag: str) -> None:
        ref = f"{repo}:{tag or 'latest'}" if repo else ""
        if not ref:
            raise ConfigError("repository name must have at least one component")
        image = self.store.resolve(source)
        self.store.tag(source, ref)
        self._emit("tag", image.id, ref)

    def remove(self, ref: str, force: bool) -> list[dict[str, str]]:
        result = self.store.remove(ref, force)
        for item in result:
            for kind, value in item.items():
                self._emit("untag" if kind == "Untagged" else "delete", value, value)
        return result

    def registry(self) -> RegistryClient:
        from reference.image.registry import RegistryClient

        return RegistryClient(self.store, insecure=self.engine.config.insecure_registries)

    def pull(self, ref: str, progress: Progress) -> Image:
        image = self.registry().pull(ref, progress)
        self._emit("pull", ref, ref)
        return image

    def push(self, ref: str, progress: Progress) -> str:
        digest = self.registry().push(ref, progress)
        self._emit("push", ref, ref)
        return digest

    def commit(
        self,
        c: Container,
        ref: str | None,
        overrides: dict[str, Any] | None,
        changes: Sequence[str],
        comment: str,
        author: str,
        pause: bool,
    ) -> Image:
        parent = self.engine.image_of(c)
        config = copy.deepcopy(c.config)
        for key, value in (overrides or {}).items():
            if value not in (None, "", [], {}):
                config[key] = value
        config = apply_changes(config, changes)
        paused_here = False
        rt = self.engine.runtime_for(c)
        with c.lock:
            if pause and c.state.status == "running":
                rt.pause(c.id)
                paused_here = True
            try:
                image = self.store.commit(
                    self.engine.snapshots.upperdir(c.id),
                    parent,
                    ref,
                    config,
                    exclude=COMMIT_EXCLUDE,
                    comment=comment,
                    author=author,
                    container=c.id,
                )
            finally:
                if paused_here:
                    with contextlib.suppress(RefError):
                        rt.resume(c.id)
        self.engine.emit(c, "commit", comment=comment)
        return image
