"""Dataclass-style record classes without importing `dataclasses` at run time.

`import dataclasses` costs ~14 ms on 3.11 (it pulls in inspect, ast, dis and tokenize), and each
`@dataclass` compiles its methods with exec (~0.5 ms a class): `refrun create` paid ~40 ms for
the ~40 classes of the spec and cgroup models, on every call. Modules on that path declare their
classes exactly as dataclasses and pick the decorator like this:

    TYPE_CHECKING = False
    if TYPE_CHECKING:
        from dataclasses import dataclass, field
    else:
        from reference.records import dataclass, field

so that mypy checks them as real dataclasses (constructor signatures, frozen attributes), while
at run time the class gets generic methods from here instead of generated ones: the same
constructor (positional or keyword arguments, defaults and default factories), field-wise `==`,
`hash` when frozen, a dataclass-style `repr`, `__match_args__`, and assignment to a frozen
instance raising `FrozenInstanceError` (an AttributeError, as with dataclasses). `fields()` and
`replace()` stand in for their `dataclasses` namesakes on these classes.

Not supported, because nothing on that path uses it: fields inherited from a base class,
`__post_init__`, `order`, `slots`, `kw_only`, `InitVar` and `ClassVar` fields.
"""

from __future__ import annotations

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; typing costs ~4 ms to import
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FrozenInstanceError(AttributeError):
    """Assignment to (or deletion of) a field of a frozen record."""


class Field:
    """One field: its name, its annotation (a string, under `from __future__ import
    annotations`), its default or default factory, and its metadata."""

    __slots__ = ("default", "default_factory", "metadata", "name", "type")

    def __init__(
        self,
        default: Any = MISSING,
        default_factory: Any = MISSING,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.default = default
        self.default_factory = default_factory
        self.metadata: dict[str, Any] = metadata or {}
        self.name = ""
        self.type: Any = None

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, type={self.type!r}, default={self.default!r})"


def field(
    *,
    default: Any = MISSING,
    default_factory: Callable[[], Any] | Any = MISSING,
    metadata: dict[str, Any] | None = None,
) -> Any:
    return Field(default, default_factory, metadata)


def dataclass(cls: type[T] | None = None, /, *, frozen: bool = False) -> Any:
    """`@dataclass` or `@dataclass(frozen=True)`."""

    def wrap(c: type[T]) -> type[T]:
        return _process(c, frozen)

    return wrap if cls is None else wrap(cls)


def _process(cls: type[T], frozen: bool) -> type[T]:
    found: list[Field] = []
    # Not inspect.get_annotations: `inspect` is the heavy import this module exists to avoid.
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
        value = cls.__dict__.get(name, MISSING)
        f = value if isinstance(value, Field) else Field(default=value)
        f.name, f.type = name, annotation
        if isinstance(value, Field):  # as dataclasses: the class attribute is the default
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        found.append(f)
    attrs: dict[str, Any] = {
        "__record_fields__": tuple(found),
        "__match_args__": tuple(f.name for f in found),
        "__init__": _init,
    }
    if "__repr__" not in cls.__dict__:
        attrs["__repr__"] = _repr
    if "__eq__" not in cls.__dict__:
        attrs["__eq__"] = _eq
    if frozen:
        attrs.update(__setattr__=_frozen_setattr, __delattr__=_frozen_delattr, __hash__=_hash)
    elif "__hash__" not in cls.__dict__:
        attrs["__hash__"] = None  # eq without frozen: unhashable, as dataclasses make it
    for key, attr in attrs.items():
        setattr(cls, key, attr)
    return cls


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    cls = type(self)
    found: tuple[Field, ...] = cls.__record_fields__
    if len(args) > len(found):
        raise TypeError(
            f"{cls.__name__}.__init__() takes {len(found) + 1} positional arguments "
            f"but {len(args) + 1} were given"
        )
    setter = object.__setattr__
    for f, value in zip(found, args, strict=False):
        if f.name in kwargs:
            raise TypeError(f"{cls.__name__}.__init__() got multiple values for {f.name!r}")
        setter(self, f.name, value)
    for f in found[len(args) :]:
        if f.name in kwargs:
            value = kwargs.pop(f.name)
        elif f.default is not MISSING:
            value = f.default
        elif f.default_factory is not MISSING:
            value = f.default_factory()
        else:
            raise TypeError(f"{cls.__name__}.__init__() missing argument {f.name!r}")
        setter(self, f.name, value)
    if kwargs:
        raise TypeError(f"{cls.__name__}.__init__() got unexpected arguments {sorted(kwargs)}")


def _values(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, f.name) for f in obj.__record_fields__)


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: Any) -> int:
    return hash(_values(self))


def _repr(self: Any) -> str:
    inner = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self.__record_fields__)
    return f"{type(self).__qualname__}({inner})"


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def fields(obj: Any) -> tuple[Field, ...]:
    """The fields of a record class or instance, in declaration order."""
    found = getattr(obj, "__record_fields__", None)
    if found is None:
        raise TypeError(f"not a record class or instance: {obj!r}")
    return found  # type: ignore[no-any-return]


def is_record(obj: object) -> bool:
    return hasattr(obj, "__record_fields__")


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of `obj` with `changes` applied, as dataclasses.replace."""
    values = {f.name: getattr(obj, f.name) for f in fields(obj)}
    values.update(changes)
    return type(obj)(**values)


class NamedTuple(tuple):  # type: ignore[type-arg]
    """Run-time stand-in for `typing.NamedTuple`'s class syntax, for the same reason as
    `dataclass` above (typing costs ~20 ms to import here, the seccomp compiler's path paid
    it on every `create` with a profile). Modules declare

        TYPE_CHECKING = False
        if TYPE_CHECKING:
            from typing import NamedTuple
        else:
            from reference.records import NamedTuple

    and get a tuple subclass with the annotated fields in order: positional or keyword
    construction with the class's defaults, a read-only property per field, `_fields`,
    `_field_defaults`, `_replace`, `_asdict` and a NamedTuple-style repr; equality, hashing,
    ordering, unpacking and indexing are the tuple's. Methods of the class body stay.
    """

    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _field_defaults: dict[str, Any] = {}  # noqa: RUF012  (replaced per subclass)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = tuple(cls.__dict__.get("__annotations__", {}))  # noqa: RUF063
        cls._field_defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
        cls._fields = names
        for i, name in enumerate(names):
            setattr(cls, name, property(_item_getter(i)))

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        names = cls._fields
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__}() takes {len(names)} arguments, {len(args)} given")
        values = list(args)
        for name in names[len(args) :]:
            if name in kwargs:
                values.append(kwargs.pop(name))
            elif name in cls._field_defaults:
                values.append(cls._field_defaults[name])
            else:
                raise TypeError(f"{cls.__name__}() missing argument {name!r}")
        if kwargs:
            raise TypeError(f"{cls.__name__}() got unexpected arguments {sorted(kwargs)}")
        return tuple.__new__(cls, values)

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    def _replace(self, **changes: Any) -> Any:
        return type(self)(**{**self._asdict(), **changes})

    def _asdict(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={v!r}" for n, v in zip(self._fields, self, strict=True))
        return f"{type(self).__name__}({inner})"


def _item_getter(index: int) -> Callable[[tuple[Any, ...]], Any]:
    def get(self: tuple[Any, ...]) -> Any:
        return tuple.__getitem__(self, index)

    return get
