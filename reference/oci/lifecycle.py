"""Which operation each container status allows: the lifecycle table, cheap to import.

`reference.oci.state` re-exports `check_transition` with its `Status` enum; this module holds the
rules on plain strings so that refrun's `kill`/`start`/`delete` do not pay for `enum`,
`dataclasses` and `typing` (~30 ms together) on every call. A `Status` member is a `str`, so
both spellings work everywhere.
"""

from __future__ import annotations

from reference.errors import ConflictError, NotFoundError, StateError

# `creating` is visible only while `create` runs; `paused` is not in the spec but runc reports it
# for a frozen cgroup and Docker relies on it.
CREATING = "creating"
CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"
STATUSES = (CREATING, CREATED, RUNNING, PAUSED, STOPPED)

# Statuses from which each verb may run on an existing container (create needs none).
ALLOWED: dict[str, frozenset[str]] = {
    "start": frozenset({CREATED}),
    # Signalling a created container is allowed (that is how it is killed before start).
    "kill": frozenset({CREATED, RUNNING, PAUSED}),
    # runtime.md: deleting a container that is not stopped MUST fail; --force kills first.
    "delete": frozenset({STOPPED}),
    "pause": frozenset({RUNNING}),
    "resume": frozenset({PAUSED}),
    # A created container has its init process waiting, so exec can join its namespaces.
    "exec": frozenset({CREATED, RUNNING}),
    # Limits can change while there is a cgroup with tasks (runc allows a paused one too).
    "update": frozenset({CREATED, RUNNING, PAUSED}),
}


def check_transition(
    verb: str, status: str | None, container_id: str, *, force: bool = False
) -> None:
    """Raise unless `verb` may run on container `container_id` whose status is `status`.

    `status` is None when no such container exists. Only `create` wants that (otherwise
    ConflictError); every other verb then raises NotFoundError. `force` lifts the rule for
    `delete` only, as `runc delete --force` kills whatever is there.
    """
    if verb == "create":
        if status is not None:
            raise ConflictError(f"container already exists (status {status})", obj=container_id)
        return
    if verb not in ALLOWED:
        raise ValueError(f"unknown verb {verb!r}")  # a caller bug, not user input
    if status is None:
        raise NotFoundError("container does not exist", obj=container_id)
    status = str(status)
    if status not in STATUSES:
        raise ValueError(f"{status!r} is not a container status")
    if verb == "delete" and force:
        return
    if status not in ALLOWED[verb]:
        allowed = ", ".join(sorted(ALLOWED[verb]))
        raise StateError(f"cannot {verb} a {status} container (needs {allowed})", obj=container_id)
