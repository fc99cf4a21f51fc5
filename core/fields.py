"""Field descriptors: how a schema declares its fields, and the definition of what is valid.

Each field is a descriptor. ``__set_name__`` binds it to its schema, ``__set__`` guards every
assignment. What is valid is defined once, in :meth:`Field.problems`: the generated
``__init__``/``from_dict`` (see ``_codegen``) inline an equivalent condition for speed, and a
property test keeps the two in step.

Strict by default: no silent coercion, ``True`` is not an integer, NaN and infinities are not
numbers unless a field allows them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from .errors import FieldError, SchemaError, ValidationError

if TYPE_CHECKING:
    from .schema import Schema

__all__ = [
    "MISSING",
    "Boolean",
    "Choice",
    "Field",
    "Integer",
    "List",
    "Mapping",
    "Nested",
    "Number",
    "String",
    "Timestamp",
]

T = TypeVar("T")

#: A validator takes the (type-checked) value and raises ValueError/TypeError with a message,
#: or returns False, when the value is not acceptable.
Validator = Callable[[Any], Any]


class _Missing:
    """The marker for "no value given" (distinct from None, which optional fields accept)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def _never(value: Any) -> bool:
    return False


class Field(Generic[T]):
    """Base of all field descriptors.

    ``default`` is a value or a zero-argument factory (``default=list``); ``optional=True``
    admits None and makes a missing field None; ``validators`` run after the type checks.
    """

    #: Expression text describing the field's accepted values, used in messages.
    kind: str = "value"

    def __init__(
        self,
        *,
        default: Any = MISSING,
        optional: bool = False,
        validators: Sequence[Validator] = (),
        description: str = "",
    ) -> None:
        self.name = ""
        self.owner: type[Any] | None = None
        self.default = default
        self.optional = optional
        self.validators = tuple(validators)
        self.description = description
        if type(default) in (list, dict, set) and not self.converts:
            raise SchemaError(
                f"{self!r}: a mutable default would be shared by every event; "
                f"use a factory such as default={type(default).__name__}"
            )
        if default is not MISSING:
            sample = default() if callable(default) else default
            problems = self.problems(sample, "default")
            if problems:
                raise SchemaError(f"{self!r}: its default is invalid: {problems[0]}")

    # -- descriptor protocol -------------------------------------------------------------
    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name
        self.owner = owner

    def __set__(self, instance: Any, value: Any) -> None:
        if instance.__frozen__:
            from .errors import FrozenInstanceError

            raise FrozenInstanceError(
                f"{type(instance).__name__} is frozen: cannot assign field {self.name!r}"
            )
        accepts = self._accepts
        if accepts is None:
            accepts = self._accepts = self._compile_accepts()
        if accepts(value):  # the common case: the inlined check, compiled once per field
            instance.__dict__[self.name] = value
        else:
            instance.__dict__[self.name] = self.validate(value, self.name)

    _accepts: Callable[[Any], bool] | None = None

    def _compile_accepts(self) -> Callable[[Any], bool]:
        """A function that is true for values stored as they are (false: take the slow path)."""
        if not self.inlinable():
            return _never
        from ._codegen import compile_accepts

        return compile_accepts(self)

    if TYPE_CHECKING:
        # Reads go straight to the instance dict at run time (no __get__, so CPython's
        # attribute cache applies); these overloads only tell type checkers the value type.
        @overload
        def __get__(self, instance: None, owner: type[Any]) -> Field[T]: ...
        @overload
        def __get__(self, instance: object, owner: type[Any]) -> T: ...
        def __get__(self, instance: object | None, owner: type[Any]) -> Field[T] | T: ...

    # -- the definition of validity ------------------------------------------------------
    @property
    def required(self) -> bool:
        """A value must be given: no default and not optional."""
        return self.default is MISSING and not self.optional

    def make_default(self) -> Any:
        """The value used when the field is missing (a fresh one for factories)."""
        if self.default is MISSING:
            return None  # optional field
        return self.default() if callable(self.default) else self.default

    def check(self, value: Any) -> str | None:
        """Type and constraint check of a non-None value: an error message, or None if valid."""
        raise NotImplementedError

    def problems(self, value: Any, path: str) -> list[FieldError]:
        """Every problem with ``value`` for this field at ``path``; empty when it is valid."""
        if value is None:
            if self.optional:
                return []
            return [FieldError(path, f"must be {self.kind}, not null", value)]
        message = self.check(value)
        if message is not None:
            return [FieldError(path, message, value)]
        return self._run_validators(value, path)

    def _run_validators(self, value: Any, path: str) -> list[FieldError]:
        for validator in self.validators:
            try:
                ok = validator(value)
            except (ValueError, TypeError) as exc:
                return [FieldError(path, str(exc) or type(exc).__name__, value)]
            if ok is False:
                name = getattr(validator, "__name__", repr(validator))
                return [FieldError(path, f"failed validator {name}", value)]
        return []

    def convert(self, value: Any) -> Any:
        """Turn a valid input value into the stored value (identity for most fields)."""
        return value

    #: True when :meth:`convert` is not the identity (the generated code then calls it).
    converts = False

    def validate(self, value: Any, path: str) -> Any:
        """Check ``value`` and return what to store, or raise :class:`ValidationError`."""
        problems = self.problems(value, path)
        if problems:
            raise ValidationError(problems, getattr(self.owner, "__name__", None))
        return value if value is None or not self.converts else self.convert(value)

    # -- code generation -----------------------------------------------------------------
    def condition(self, var: str, ns: dict[str, Any]) -> str | None:
        """A Python expression over ``var`` that is true exactly when :meth:`check` passes.

        Names it needs go into ``ns`` (prefixed by ``var`` to stay unique). Returns None when
        the check cannot be inlined; the generated code then calls :meth:`problems`.
        """
        return None

    def check_lines(self, var: str, ns: dict[str, Any], fail: str) -> list[str] | None:
        """Statements that run ``fail`` when ``var`` is invalid (by default, one ``if``).

        Fields whose check needs a loop (lists) override this; None means "not inlinable".
        """
        condition = self.condition(var, ns)
        if condition is None:
            return None
        return [f"if not ({condition}):", f"    {fail}"]

    def inlinable(self) -> bool:
        """The generated code may use :meth:`condition` instead of calling :meth:`problems`."""
        return not self.validators and not self.converts

    # -- identity ------------------------------------------------------------------------
    def spec(self) -> tuple[Any, ...]:
        """What defines the field: two fields with equal specs accept the same values."""
        return (
            type(self).__name__,
            self._options(),
            self.optional,
            self.default if not callable(self.default) else getattr(self.default, "__name__", 0),
            self.validators,
        )

    def _options(self) -> tuple[Any, ...]:
        return ()

    def same_as(self, other: Field[Any]) -> bool:
        """Whether ``other`` declares the same field (used to detect plugin conflicts)."""
        return self.spec() == other.spec()

    def __repr__(self) -> str:
        args = [f"{k}={v!r}" for k, v in self._repr_options() if v is not None]
        if self.default is not MISSING:
            args.append(f"default={getattr(self.default, '__name__', self.default)!r}")
        if self.optional:
            args.append("optional=True")
        return f"{type(self).__name__}({', '.join(args)})"

    def _repr_options(self) -> list[tuple[str, Any]]:
        return []


def _bounds_text(
    minimum: float | None, maximum: float | None, exclusive_min: bool, exclusive_max: bool
) -> str:
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if exclusive_min else '≥'} {minimum}")
    if maximum is not None:
        parts.append(f"{'<' if exclusive_max else '≤'} {maximum}")
    return " and ".join(parts)


class _Bounded(Field[T]):
    """Shared by Number and Integer: inclusive or exclusive bounds."""

    def __init__(
        self,
        minimum: float | None = None,
        maximum: float | None = None,
        *,
        exclusive_minimum: bool = False,
        exclusive_maximum: bool = False,
        **kwargs: Any,
    ) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.exclusive_minimum = exclusive_minimum
        self.exclusive_maximum = exclusive_maximum
        self._too_low = f"must be {_bounds_text(minimum, None, exclusive_minimum, False)}"
        self._too_high = f"must be {_bounds_text(None, maximum, False, exclusive_maximum)}"
        super().__init__(**kwargs)

    def _bounds_problem(self, value: Any) -> str | None:
        low, high = self.minimum, self.maximum
        if low is not None and not (value > low if self.exclusive_minimum else value >= low):
            return self._too_low
        if high is not None and not (value < high if self.exclusive_maximum else value <= high):
            return self._too_high
        return None

    def _bounds_condition(self, var: str) -> list[str]:
        parts = []
        if self.minimum is not None:
            parts.append(f"{var} {'>' if self.exclusive_minimum else '>='} {self.minimum!r}")
        if self.maximum is not None:
            parts.append(f"{var} {'<' if self.exclusive_maximum else '<='} {self.maximum!r}")
        return parts

    def _options(self) -> tuple[Any, ...]:
        return (self.minimum, self.maximum, self.exclusive_minimum, self.exclusive_maximum)

    def _repr_options(self) -> list[tuple[str, Any]]:
        return [
            ("minimum", self.minimum),
            ("maximum", self.maximum),
            ("exclusive_minimum", self.exclusive_minimum or None),
            ("exclusive_maximum", self.exclusive_maximum or None),
        ]


class Number(_Bounded[float]):
    """An int or float (not a bool). NaN and ±inf are refused unless ``allow_nan=True``."""

    kind = "a number"

    def __init__(
        self,
        minimum: float | None = None,
        maximum: float | None = None,
        *,
        allow_nan: bool = False,
        **kwargs: Any,
    ) -> None:
        self.allow_nan = allow_nan
        super().__init__(minimum, maximum, **kwargs)

    def check(self, value: Any) -> str | None:
        if type(value) is not int and type(value) is not float:
            return "must be a number"
        if type(value) is float and not self.allow_nan and value - value != 0:
            return "must be a finite number"
        return self._bounds_problem(value)

    def condition(self, var: str, ns: dict[str, Any]) -> str | None:
        kind = f"({var}.__class__ is float or {var}.__class__ is int)"
        parts = [kind, *self._bounds_condition(var)]
        if not self.allow_nan:
            finite_bounds = all(bound is None or math.isfinite(bound)
                                for bound in (self.minimum, self.maximum))
            if not finite_bounds:  # x - x is 0 for finite x, NaN for NaN and ±inf
                parts.insert(1, f"({var}.__class__ is int or {var} - {var} == 0)")
            else:
                # NaN fails every comparison; a finite bound excludes one infinity, and
                # each missing bound is replaced by the infinity it would exclude.
                ns["_inf"] = math.inf
                if self.minimum is None:
                    parts.append(f"{var} > -_inf")
                if self.maximum is None:
                    parts.append(f"{var} < _inf")
        return " and ".join(parts)

    def _options(self) -> tuple[Any, ...]:
        return (*super()._options(), self.allow_nan)


class Integer(_Bounded[int]):
    """An int (not a bool, not a float with an integral value)."""

    kind = "an integer"

    def check(self, value: Any) -> str | None:
        if type(value) is not int:
            return "must be an integer"
        return self._bounds_problem(value)

    def condition(self, var: str, ns: dict[str, Any]) -> str | None:
        return " and ".join([f"{var}.__class__ is int", *self._bounds_condition(var)])


class Timestamp(Field[int]):
    """Epoch milliseconds, an int > 0. With ``iso=True`` an ISO-8601 string with a UTC offset
    (``2026-01-01T00:00:00Z``) is accepted too and stored as epoch milliseconds."""

    kind = "a timestamp (epoch ms)"

    def __init__(self, *, iso: bool = False, **kwargs: Any) -> None:
        self.iso = iso
        self.converts = iso
        super().__init__(**kwargs)

    def check(self, value: Any) -> str | None:
        if type(value) is int:
            return None if value > 0 else "must be a positive epoch-ms timestamp"
        if self.iso and type(value) is str:
            return None if _parse_iso_ms(value) is not None else "must be an ISO-8601 timestamp"
        if self.iso:
            return "must be epoch ms (int > 0) or an ISO-8601 string"
        return "must be epoch ms (int > 0)"

    def convert(self, value: Any) -> Any:
        if type(value) is str:
            return _parse_iso_ms(value)
        return value

    def condition(self, var: str, ns: dict[str, Any]) -> str | None:
        return f"{var}.__class__ is int and {var} > 0"

    def _options(self) -> tuple[Any, ...]:
        return (self.iso,)


def _parse_iso_ms(text: str) -> int | None:
    from datetime import (  # only schemas with Timestamp(iso=True) need it
        datetime,
        timedelta,
        timezone,
    )

    if len(text) > 64:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None  # a naive time is ambiguous: refuse rather than guess a zone
    millis = (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)
    return millis if millis > 0 else None


def _length(var: str, minimum: int, maximum: int | None, ns: dict[str, Any]) -> list[str]:
    """The length checks of a str or list ``var`` as generated conditions: one ``len`` call
    at most, none for "not empty" alone (the value's truth is its non-emptiness)."""
    if not minimum and maximum is None:
        return []
    if minimum == 1 and maximum is None:
        return [var]
    ns["_len"] = len
    if maximum is None:
        return [f"_len({var}) >= {minimum}"]
    if minimum == 1:
        return [var, f"_len({var}) <= {maximum}"]
    return [f"{minimum} <= _len({var}) <= {maximum}" if minimum else f"_len({var}) <= {maximum}"]


class String(Field[str]):
    """A str, with optional length bounds and a regular expression the whole value must match."""

    kind = "a string"

    def __init__(
        self,
        min_length: int = 0,
        max_length: int | None = None,
        pattern: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.min_length = min_length
        self.max_length = max_length
        self.pattern = pattern
        self._match = re.compile(pattern).fullmatch if pattern is not None else None
        super().__init__(**kwargs)

    def check(self, value: Any) -> str | None:
        if type(value) is not str:
            return "must be a string"
        if len(value) < self.min_length:
            return "must not be empty" if self.min_length == 1 else (
                f"must have at least {self.min_length} characters"
            )
        if self.max_length is not None and len(value) > self.max_length:
            return f"must have at most {self.max_length} characters"
        if self._match is not None and self._match(value) is None:
            return f"must match {self.pattern!r}"
        return None

    def condition(self, var: str, ns: dict[str, Any]) -> str | None:
        parts = [f"{var}.__class__ is str", *_length(var, self.min_length, self.max_length, ns)]
        if self._match is not None:
            name = f"_match_{var}"
            ns[name] = self._match
            parts.append(f"{name}({var}) is not None")
        return " and ".join(parts)

    def _options(self) -> tuple[Any, ...]:
        return (self.min_length, self.max_length, self.pattern)

    def _repr_options(self) -> list[tuple[str, Any]]:
        return [
            ("min_length", self.min_length or None),
            ("max_length", self.max_length),
            ("pattern", self.pattern),
        ]


class Boolean(Field[bool]):
    """True or False (not 0 or 1)."""

    kind = "a boolean"

    def check(self, value: Any) -> str | None:
        return None if type(value) is bool else "must be true or false"

    def condition(self, var: str, ns: dict[str, Any]) -> str | None:
        return f"{var}.__class__ is bool"


_HASHABLE_SCALARS = (str, int, float, bool)


class Choice(Field[Any]):
    """One of a fixed set of scalar values, compared with their type (``1`` is not ``True``)."""

    kind = "one of the allowed values"

    def __init__(self, values: Iterable[Any], **kwargs: Any) -> None:
        self.values = tuple(values)
        if not self.values:
            raise SchemaError("Choice needs at least one value")
        for value in self.values:
            if type(value) not in _HASHABLE_SCALARS:
                raise SchemaError(f"Choice values must be str, int, float or bool, not {value!r}")
        self._allowed = frozenset((type(v), v) for v in self.values)
        super().__init__(**kwargs)

    def check(self, value: Any) -> str | None:
        if type(value) in _HASHABLE_SCALARS and (type(value), value) in self._allowed:
            return None
        shown = ", ".join(repr(v) for v in sorted(self.values, key=repr))
        return f"must be one of {shown}"

    def condition(self, var: str, ns: dict[str, Any]) -> str | None:
        if all(type(v) is str for v in self.values):
            name = f"_choices_{var}"
            ns[name] = frozenset(self.values)
            return f"{var}.__class__ is str and {var} in {name}"
        types, allowed = f"_types_{var}", f"_allowed_{var}"
        ns[types] = frozenset(_HASHABLE_SCALARS)
        ns[allowed] = self._allowed
        return f"{var}.__class__ in {types} and ({var}.__class__, {var}) in {allowed}"

    def _options(self) -> tuple[Any, ...]:
        return (tuple(sorted(self._allowed, key=repr)),)

    def _repr_options(self) -> list[tuple[str, Any]]:
        return [("values", list(self.values))]


class List(Field[list[Any]]):
    """A JSON array; ``of`` validates each item (errors name the index: ``tags[2]``)."""

    kind = "a list"

    def __init__(
        self,
        of: Field[Any] | None = None,
        *,
        min_length: int = 0,
        max_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.of = of
        self.min_length = min_length
        self.max_length = max_length
        self.converts = of is not None and of.converts
        super().__init__(**kwargs)

    def check(self, value: Any) -> str | None:
        if type(value) is not list:
            return "must be a list"
        if len(value) < self.min_length:
            return f"must have at least {self.min_length} items"
        if self.max_length is not None and len(value) > self.max_length:
            return f"must have at most {self.max_length} items"
        return None

    def problems(self, value: Any, path: str) -> list[FieldError]:
        found = super().problems(value, path)
        if found or value is None or self.of is None:
            return found
        for index, item in enumerate(value):
            found.extend(self.of.problems(item, f"{path}[{index}]"))
        return found

    def convert(self, value: Any) -> Any:
        assert self.of is not None
        return [item if item is None else self.of.convert(item) for item in value]

    def _shape(self, var: str, ns: dict[str, Any]) -> str:
        parts = [f"{var}.__class__ is list", *_length(var, self.min_length, self.max_length, ns)]
        return " and ".join(parts)

    def condition(self, var: str, ns: dict[str, Any]) -> str | None:
        if self.of is None:
            return self._shape(var, ns)
        item = self.of.condition(f"{var}_i", ns)
        if item is None:
            return None
        if self.of.optional:
            item = f"{var}_i is None or {item}"
        ns["_all"] = all
        return f"{self._shape(var, ns)} and _all({item} for {var}_i in {var})"

    def check_lines(self, var: str, ns: dict[str, Any], fail: str) -> list[str] | None:
        lines = [f"if not ({self._shape(var, ns)}):", f"    {fail}"]
        if lines is None or self.of is None:
            return lines
        # A plain loop in the generated function: no generator frame per list.
        item = self.of.condition(f"{var}_i", ns)
        if item is None:
            return None
        if self.of.optional:
            item = f"{var}_i is None or {item}"
        return [*lines, "else:", f"    for {var}_i in {var}:", f"        if not ({item}):",
                f"            {fail}", "            break"]

    def inlinable(self) -> bool:
        return super().inlinable() and (self.of is None or self.of.inlinable())

    def _options(self) -> tuple[Any, ...]:
        return (self.of.spec() if self.of else None, self.min_length, self.max_length)

    def _repr_options(self) -> list[tuple[str, Any]]:
        return [("of", self.of), ("min_length", self.min_length or None),
                ("max_length", self.max_length)]


class Mapping(Field[dict[str, Any]]):
    """A JSON object: str keys; ``keys`` and ``values`` optionally validate each key and value."""

    kind = "an object"

    def __init__(
        self,
        keys: Field[Any] | None = None,
        values: Field[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.keys = keys
        self.values = values
        self.converts = values is not None and values.converts
        super().__init__(**kwargs)

    def check(self, value: Any) -> str | None:
        if type(value) is not dict:
            return "must be an object"
        for key in value:
            if type(key) is not str:
                return f"keys must be strings, not {key!r}"
        return None

    def problems(self, value: Any, path: str) -> list[FieldError]:
        found = super().problems(value, path)
        if found or value is None:
            return found
        for key, item in value.items():
            if self.keys is not None:
                found.extend(self.keys.problems(key, f"{path}.{key}<key>"))
            if self.values is not None:
                found.extend(self.values.problems(item, f"{path}.{key}"))
        return found

    def convert(self, value: Any) -> Any:
        assert self.values is not None
        return {k: v if v is None else self.values.convert(v) for k, v in value.items()}

    def condition(self, var: str, ns: dict[str, Any]) -> str | None:
        ns["_all"] = all
        parts = [f"{var}.__class__ is dict", f"(not {var} or _all({var}_k.__class__ is str "
                 f"for {var}_k in {var}))"]
        for sub, loop in ((self.keys, f"{var}"), (self.values, f"{var}.values()")):
            if sub is None:
                continue
            item = sub.condition(f"{var}_j", ns)
            if item is None:
                return None
            if sub.optional:
                item = f"{var}_j is None or {item}"
            parts.append(f"_all({item} for {var}_j in {loop})")
        return " and ".join(parts)

    def check_lines(self, var: str, ns: dict[str, Any], fail: str) -> list[str] | None:
        if self.keys is not None or self.values is not None:
            return super().check_lines(var, ns, fail)
        # Only the keys to check: a plain loop, no generator frame per mapping.
        return [f"if not ({var}.__class__ is dict):", f"    {fail}", "else:",
                f"    for {var}_k in {var}:", f"        if not ({var}_k.__class__ is str):",
                f"            {fail}", "            break"]

    def inlinable(self) -> bool:
        return super().inlinable() and all(
            sub is None or sub.inlinable() for sub in (self.keys, self.values)
        )

    def _options(self) -> tuple[Any, ...]:
        return tuple(sub.spec() if sub else None for sub in (self.keys, self.values))

    def _repr_options(self) -> list[tuple[str, Any]]:
        return [("keys", self.keys), ("values", self.values)]


class Nested(Field[Any]):
    """A nested schema: a JSON object validated by ``schema`` (errors name ``field.sub``)."""

    kind = "an object"
    converts = True

    def __init__(self, schema: type[Schema], **kwargs: Any) -> None:
        self.schema = schema
        super().__init__(**kwargs)

    def check(self, value: Any) -> str | None:
        if isinstance(value, self.schema) or type(value) is dict:
            return None
        return f"must be an object ({self.schema.__name__})"

    def problems(self, value: Any, path: str) -> list[FieldError]:
        found = super().problems(value, path)
        if found or value is None or isinstance(value, self.schema):
            return found
        return [
            FieldError(f"{path}.{error.path}", error.message, error.value)
            for error in self.schema.find_problems(value)
        ]

    def convert(self, value: Any) -> Any:
        if isinstance(value, self.schema):
            return value
        return self.schema.from_dict(value)

    def _options(self) -> tuple[Any, ...]:
        return (self.schema.__qualname__, tuple(
            (name, field.spec()) for name, field in self.schema.__fields__.items()
        ))

    def _repr_options(self) -> list[tuple[str, Any]]:
        return [("schema", self.schema.__name__)]
