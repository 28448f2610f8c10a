"""reference.records: dataclass semantics without importing dataclasses, checked against the
real thing on the same declarations."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import pytest

from reference import records


def _declare(decorator: object, field: object) -> Any:
    """The same class declared with either implementation."""

    class Point:
        x: int
        y: int = 0
        tags: dict[str, str] = field(default_factory=dict)  # type: ignore[operator]
        label: str = field(default="p", metadata={"json": "Label"})  # type: ignore[operator]

        def norm(self) -> int:
            return abs(self.x) + abs(self.y)

    return decorator(frozen=True)(Point)  # type: ignore[operator]


REAL = _declare(dataclasses.dataclass, dataclasses.field)
LEAN = _declare(records.dataclass, records.field)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, 2), {}), ((), {"x": 3, "label": "q"}), ((1,), {"tags": {"a": "b"}})],
)
def test_construction_repr_and_equality_match_dataclasses(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    real, lean = REAL(*args, **kwargs), LEAN(*args, **kwargs)
    assert repr(lean) == repr(real)
    assert [getattr(lean, f.name) for f in records.fields(lean)] == [
        getattr(real, f.name) for f in dataclasses.fields(real)
    ]
    assert lean == LEAN(*args, **kwargs)
    assert lean != REAL(*args, **kwargs)  # another class, as with dataclasses
    assert lean.norm() == real.norm()


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, 2, {}, "l", 5), {}), ((1,), {"x": 2}), ((1,), {"z": 2})],
    ids=["missing", "too-many", "twice", "unknown"],
)
def test_bad_arguments_are_type_errors_like_dataclasses(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    with pytest.raises(TypeError):
        REAL(*args, **kwargs)
    with pytest.raises(TypeError):
        LEAN(*args, **kwargs)


def test_frozen_hash_factory_and_replace() -> None:
    p = LEAN(1, 2)
    with pytest.raises(AttributeError):  # FrozenInstanceError, as dataclasses' is
        p.x = 5
    with pytest.raises(records.FrozenInstanceError):
        del p.y
    for cls in (REAL, LEAN):  # hashable field by field: the dict field makes it unhashable
        with pytest.raises(TypeError):
            hash(cls(1, 2))
    assert hash(LEAN(1, 2, ())) == hash(LEAN(1, 2, ()))
    assert LEAN(1).tags is not LEAN(1).tags  # a fresh dict each time
    q = records.replace(p, y=7)
    assert (q.x, q.y, p.y) == (1, 7, 2)
    assert LEAN.__match_args__ == ("x", "y", "tags", "label")
    assert [f.metadata for f in records.fields(LEAN)][-1] == {"json": "Label"}
    assert LEAN.label == "p"  # the class attribute is the default, as with dataclasses


def test_unfrozen_records_are_mutable_and_unhashable() -> None:
    @records.dataclass
    class Box:
        size: int = 1

    make: Any = Box  # to mypy, Box is a plain class (the decorator is untyped at run time)
    b = make()
    b.size = 3
    assert b == make(3)
    with pytest.raises(TypeError):
        hash(b)


def test_fields_of_something_else() -> None:
    assert not records.is_record(object())
    with pytest.raises(TypeError):
        records.fields(object())


# -- NamedTuple: the stand-in behaves as typing.NamedTuple's class syntax ----------------------
def _named(base: Any) -> Any:
    """The same NamedTuple declared on either base."""

    class Pair(base):  # type: ignore[misc]
        a: int
        b: str = "x"

        def twice(self) -> int:
            return self.a * 2

    return Pair


REAL_NT = _named(typing.NamedTuple)
LEAN_NT = _named(records.NamedTuple)


@pytest.mark.parametrize(("args", "kwargs"), [((1,), {}), ((1, "y"), {}), ((), {"a": 3, "b": "z"})])
def test_named_tuple_stand_in_matches_typing(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    real, ours = REAL_NT(*args, **kwargs), LEAN_NT(*args, **kwargs)
    assert tuple(ours) == tuple(real)
    assert ours == real
    assert hash(ours) == hash(real)
    assert (ours.a, ours.b, ours.twice()) == (real.a, real.b, real.twice())
    assert ours._fields == real._fields == ("a", "b")
    assert ours._field_defaults == real._field_defaults == {"b": "x"}
    assert ours._asdict() == real._asdict()
    assert tuple(ours._replace(b="w")) == tuple(real._replace(b="w"))
    assert repr(ours) == repr(real)
    a, b = ours
    assert (a, b) == (ours[0], ours[1])


def test_named_tuple_stand_in_refuses_what_typing_refuses() -> None:
    with pytest.raises(TypeError, match="missing argument 'a'"):
        LEAN_NT()
    with pytest.raises(TypeError, match="unexpected arguments"):
        LEAN_NT(1, c=2)
    with pytest.raises(TypeError, match="takes 2 arguments"):
        LEAN_NT(1, "x", 3)
    with pytest.raises(AttributeError):
        LEAN_NT(1).a = 2
