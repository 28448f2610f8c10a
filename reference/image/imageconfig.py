"""Image config JSON as Docker writes it for `import` and `commit`, and the Engine API's
ImageInspect view of an image. Pure functions: the store does the storing."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reference.image.store import Image

# The runtime config Docker writes for an image with no settings (`docker import`).
EMPTY_CONFIG: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}  # fmt: skip
ENGINE_VERSION = "refd"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}
ZERO_TIME = "0001-01-01T00:00:00Z"


def now() -> str:
    """RFC 3339 UTC with nanoseconds, as Docker writes `created`."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def architecture() -> str:
    machine = os.uname().machine
    return _ARCH.get(machine, machine)


def import_config(diff_id: str, changes: dict[str, Any] | None, comment: str) -> dict[str, Any]:
    """The config of a `docker import`ed rootfs; `changes` overrides runtime settings."""
    created = now()
    return {
        "architecture": architecture(), "comment": comment,
        "config": {**EMPTY_CONFIG, **(changes or {})}, "container_config": dict(EMPTY_CONFIG),
        "created": created, "docker_version": ENGINE_VERSION,
        "history": [{"created": created, "comment": comment}], "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }  # fmt: skip


def commit_config(
    parent: Image, diff_id: str, config: dict[str, Any] | None, *, comment: str = "",
    author: str = "", container: str = "",
) -> dict[str, Any]:  # fmt: skip
    """The config of `parent` plus one committed layer. `config` is the new runtime config
    (the parent's when None); history gets one step, as `docker commit` adds."""
    created = now()
    step: dict[str, Any] = {"created": created}
    if author:
        step["author"] = author
    if comment:
        step["comment"] = comment
    new = {k: v for k, v in parent.config.items() if k not in ("container", "author", "comment")}
    new.update({
        "created": created, "docker_version": ENGINE_VERSION,
        "config": config if config is not None else parent.config.get("config"),
        "container_config": config if config is not None else dict(EMPTY_CONFIG),
        "history": [*parent.config.get("history", []), step],
        "rootfs": {"type": "layers", "diff_ids": [*parent.layers, diff_id]},
    })  # fmt: skip
    for key, value in (("author", author), ("comment", comment), ("container", container)):
        if value:
            new[key] = value
    return new


def inspect_view(image: Image, layer_dirs: Sequence[str]) -> dict[str, Any]:
    """The Engine API's ImageInspect object; `layer_dirs` lowest first."""
    config = image.config
    dirs = list(reversed(layer_dirs))
    graph = {"UpperDir": dirs[0], **({"LowerDir": ":".join(dirs[1:])} if dirs[1:] else {})}
    return {
        "Id": image.id, "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests), "Parent": image.parent,
        "Comment": config.get("comment", ""), "Created": config.get("created", ""),
        "Container": config.get("container", ""),
        "ContainerConfig": config.get("container_config") or dict(EMPTY_CONFIG),
        "DockerVersion": config.get("docker_version", ""), "Author": config.get("author", ""),
        "Config": config.get("config") or dict(EMPTY_CONFIG),
        "Architecture": config.get("architecture", ""), "Os": config.get("os", ""),
        "Size": image.size, "VirtualSize": image.size,
        "GraphDriver": {"Data": graph if dirs else None, "Name": "overlay2"},
        "RootFS": {"Type": "layers", "Layers": list(image.layers)},
        "Metadata": {"LastTagTime": image.last_tag_time or ZERO_TIME},
    }  # fmt: skip
