"""The route table: (method, path regex) → handler, first match wins (so /images/json is
tried before /images/<name>/json, whose name may itself contain slashes)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from reference.engine.api.containers import ContainerRoutes
from reference.engine.api.images import ImageRoutes
from reference.engine.api.networks import NetworkRoutes
from reference.engine.api.system import SystemRoutes

if TYPE_CHECKING:
    from reference.engine.daemon import Daemon


class Router:
    def __init__(self, daemon: Daemon) -> None:
        table = [
            *SystemRoutes(daemon).routes(),
            *ContainerRoutes(daemon).routes(),
            *ImageRoutes(daemon).routes(),
            *NetworkRoutes(daemon).routes(),
        ]
        self._routes = [(method, re.compile(pattern), fn) for method, pattern, fn in table]

    def __call__(self, method: str, path: str) -> tuple[Any, re.Match[str] | None]:
        known_path = False
        for route_method, pattern, fn in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            known_path = True
            if route_method == method:
                return fn, match
        if known_path:
            from reference.engine.api.server import HTTPError

            def not_allowed(request: Any, match: Any) -> Any:
                raise HTTPError(405, f"method {method} not allowed on {path}")

            return not_allowed, None
        return None, None
