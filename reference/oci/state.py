"""The OCI `state` object (runtime.md "State") and which operation each status allows.

The lifecycle table is data, not scattered `if`s, so the CLI, the tests and the suite's own
expectations read the same rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from reference.errors import ConfigError
from reference.oci import lifecycle
from reference.oci.default import OCI_VERSION


class Status(StrEnum):
    # `creating` is visible only while `create` runs; `paused` is not in the spec but runc
    # reports it for a frozen cgroup and Docker relies on it.
    CREATING = "creating"
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


Verb = Literal["create", "start", "kill", "delete", "pause", "resume", "exec", "update"]

# Statuses from which each verb may run on an existing container (create needs none); the rules
# themselves live in `lifecycle`, on plain strings, so that the runtime CLI can check them
# without importing this module's enum and dataclasses.
ALLOWED: dict[str, frozenset[Status]] = {
    verb: frozenset(Status(s) for s in statuses) for verb, statuses in lifecycle.ALLOWED.items()
}


@dataclass(frozen=True)
class State:
    id: str
    status: Status
    bundle: str
    # 0 when there is no process (stopped); runtime.md requires it for created and running.
    pid: int = 0
    annotations: Mapping[str, str] = field(default_factory=dict)
    oci_version: str = OCI_VERSION

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": str(self.status),
            "pid": self.pid,
            "bundle": self.bundle,
        }
        if self.annotations:  # runc omits an empty map
            out["annotations"] = dict(self.annotations)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: object) -> State:
        """Read back a state written by `to_dict` (e.g. the runtime's state file)."""
        if not isinstance(data, dict):
            raise ConfigError("state must be a JSON object", obj="state")
        for key, typ in (("ociVersion", str), ("id", str), ("status", str), ("bundle", str)):
            if not isinstance(data.get(key), typ):
                raise ConfigError("missing or not a string", obj=f"state.{key}")
        pid = data.get("pid", 0)
        if not isinstance(pid, int) or isinstance(pid, bool) or pid < 0:
            raise ConfigError("expected a non-negative integer", obj="state.pid")
        annotations = data.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise ConfigError("expected an object of strings", obj="state.annotations")
        try:
            status = Status(data["status"])
        except ValueError:
            raise ConfigError(f"unknown status {data['status']!r}", obj="state.status") from None
        return cls(
            id=data["id"],
            status=status,
            bundle=data["bundle"],
            pid=pid,
            annotations=annotations,
            oci_version=data["ociVersion"],
        )

    @classmethod
    def from_json(cls, text: str) -> State:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise ConfigError(f"malformed JSON: {e.msg}", obj="state") from e


def check_transition(
    verb: Verb, status: Status | str | None, container_id: str, *, force: bool = False
) -> None:
    """Raise unless `verb` may run on container `container_id` whose status is `status`.

    `status` is None when no such container exists. Only `create` wants that (otherwise
    ConflictError); every other verb then raises NotFoundError. `force` lifts the rule for
    `delete` only, as `runc delete --force` kills whatever is there.
    """
    if status is not None:
        status = Status(status)  # an unknown status is a ValueError, as before
    lifecycle.check_transition(verb, status, container_id, force=force)
