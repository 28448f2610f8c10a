"""The OCI state object and the lifecycle table (which verb is allowed in which status)."""

from __future__ import annotations

import json

import pytest

from reference.errors import ConfigError, ConflictError, NotFoundError, RefError, StateError
from reference.oci.state import State, Status, Verb, check_transition

C, R, P, S, X = Status.CREATED, Status.RUNNING, Status.PAUSED, Status.STOPPED, Status.CREATING
OK = None

# verb -> expected outcome for (no container, creating, created, running, paused, stopped)
STATUSES: tuple[Status | None, ...] = (None, X, C, R, P, S)
TABLE: dict[Verb, tuple[type[RefError] | None, ...]] = {
    "create": (OK, ConflictError, ConflictError, ConflictError, ConflictError, ConflictError),
    "start": (NotFoundError, StateError, OK, StateError, StateError, StateError),
    "kill": (NotFoundError, StateError, OK, OK, OK, StateError),
    "delete": (NotFoundError, StateError, StateError, StateError, StateError, OK),
    "pause": (NotFoundError, StateError, StateError, OK, StateError, StateError),
    "resume": (NotFoundError, StateError, StateError, StateError, OK, StateError),
    "exec": (NotFoundError, StateError, OK, OK, StateError, StateError),
}
CASES = [
    (verb, status, outcome)
    for verb, outcomes in TABLE.items()
    for status, outcome in zip(STATUSES, outcomes, strict=True)
]


@pytest.mark.parametrize(
    ("verb", "status", "outcome"), CASES, ids=[f"{v}-{s or 'absent'}" for v, s, _ in CASES]
)
def test_transition_table(
    verb: Verb, status: Status | None, outcome: type[RefError] | None
) -> None:
    if outcome is None:
        check_transition(verb, status, "c1")
        return
    with pytest.raises(outcome) as exc:
        check_transition(verb, status, "c1")
    assert exc.value.obj == "c1"
    if status is not None:
        assert str(status) in str(exc.value)


@pytest.mark.parametrize("status", [X, C, R, P, S])
def test_force_delete_from_any_status(status: Status) -> None:
    check_transition("delete", status, "c1", force=True)


def test_force_delete_of_absent_container_still_not_found() -> None:
    with pytest.raises(NotFoundError):
        check_transition("delete", None, "c1", force=True)


def test_force_applies_to_delete_only() -> None:
    with pytest.raises(StateError):
        check_transition("start", S, "c1", force=True)


def test_status_given_as_string() -> None:
    check_transition("start", "created", "c1")
    with pytest.raises(StateError, match=r"cannot start a running container.*: c1$"):
        check_transition("start", "running", "c1")


def test_unknown_verb_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unknown verb"):
        check_transition("frobnicate", C, "c1")  # type: ignore[arg-type]


def test_state_json() -> None:
    state = State(id="c1", status=R, bundle="/b", pid=42, annotations={"k": "v"})
    assert json.loads(state.to_json()) == {
        "ociVersion": "1.2.0",
        "id": "c1",
        "status": "running",
        "pid": 42,
        "bundle": "/b",
        "annotations": {"k": "v"},
    }
    assert State.from_json(state.to_json()) == state


def test_state_without_annotations_omits_them() -> None:
    state = State(id="c1", status=S, bundle="/b")
    assert "annotations" not in state.to_dict()
    assert state.to_dict()["pid"] == 0
    assert State.from_dict(state.to_dict()) == state


@pytest.mark.parametrize(
    ("data", "obj"),
    [
        ([], "state"),
        ({"id": "c1", "status": "running", "bundle": "/b"}, "state.ociVersion"),
        ({"ociVersion": "1", "id": 1, "status": "running", "bundle": "/b"}, "state.id"),
        ({"ociVersion": "1", "id": "c", "status": "zombie", "bundle": "/b"}, "state.status"),
        ({"ociVersion": "1", "id": "c", "status": "running", "bundle": "/b", "pid": -1},
         "state.pid"),
        ({"ociVersion": "1", "id": "c", "status": "running", "bundle": "/b", "pid": True},
         "state.pid"),
        ({"ociVersion": "1", "id": "c", "status": "running", "bundle": "/b",
          "annotations": {"a": 1}}, "state.annotations"),
    ],
)  # fmt: skip
def test_state_from_dict_errors(data: object, obj: str) -> None:
    with pytest.raises(ConfigError) as exc:
        State.from_dict(data)
    assert exc.value.obj == obj


def test_state_from_malformed_json() -> None:
    with pytest.raises(ConfigError, match="malformed JSON"):
        State.from_json("{")
