"""Field descriptors: how a schema declares its fields, and the definition of what is valid.

Each field is a descriptor. ``__set_name__`` binds it to its schema, ``__set__`` guards every
assignment. A field states its check once, as rules written in Python source
(:meth:`Field.rules`); hookline compiles those rules into the field's :meth:`Field.check` (the
message of the first rule a value breaks) and into the check that guards assignment, and
inlines the same rules into a schema's generated ``__init__``/``from_dict`` (``_codegen``).
:meth:`Field.problems`, built on ``check()``, is the reference definition of validity.

Strict by default: no silent coercion, ``True`` is not an integer, NaN and infinities are not
numbers unless a field allows them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from .errors import FieldError, FrozenInstanceError, SchemaError, ValidationError

if TYPE_CHECKING:
    from ._schema import Schema

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


class Rule:
    """One condition every valid value of a field meets, as Python source over a variable.

    ``test`` is an expression, true when the value passes; a field's rules are joined with
    ``and``, so a test with a top-level ``or`` is written in parentheses. ``message`` is an
    expression for the error message, or None for a rule on a container's items, whose
    errors :meth:`Field.problems` names item by item. With ``loop=(item, iterable)``, the
    test is over ``item`` and must hold for every item of ``iterable``.

    A field's rules are in order: a test may rely on the rules without a loop before it (a
    length rule comes after the type rule), loops come last, and the first rule a value
    breaks gives the message.
    """

    __slots__ = ("loop", "message", "test")

    def __init__(self, test: str, message: str | None, loop: tuple[str, str] | None = None
                 ) -> None:
        self.test = test
        self.message = message
        self.loop = loop

    def __repr__(self) -> str:
        return f"Rule({self.test!r}, {self.message!r}, {self.loop!r})"


def _never(value: Any) -> bool:
    return False


class Field(Generic[T]):
    """Base of all field descriptors.

    ``default`` is a value or a zero-argument factory (``default=list``); ``optional=True``
    admits None and makes a missing field None; ``validators`` run after the type checks.
    """

    #: Expression text describing the field's accepted values, used in messages.
    kind: str = "value"

    #: True when :meth:`convert` is not the identity (the generated code then calls it).
    converts = False

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

    # -- descriptor protocol -------------------------------------------------------------
    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name
        self.owner = owner

    def __set__(self, instance: Any, value: Any) -> None:
        if instance.__frozen__:
            raise FrozenInstanceError(
                f"{type(instance).__name__} is frozen: cannot assign field {self.name!r}"
            )
        accepts = self._accepts
        if accepts is None:
            accepts = self._accepts = self._compile_accepts()
        if accepts(value):  # the common case: the field's rules, compiled once per field
            instance.__dict__[self.name] = value
        else:
            instance.__dict__[self.name] = self.validate(value, self.name)

    _accepts: Callable[[Any], bool] | None = None

    def _compile_accepts(self) -> Callable[[Any], bool]:
        """A function that is true for values stored as they are (false: take the slow path)."""
        if not self.inlinable():
            return _never
        from . import _codegen  # late: `import hookline` compiles nothing

        namespace: dict[str, Any] = {}
        rules = self.rules("v", namespace)
        assert rules is not None  # inlinable() says so
        return _codegen.compile_accepts("v", rules, namespace, what=self._label())

    def _label(self) -> str:
        """How compiled functions name the field: ``app.Purchase.amount`` once bound."""
        if self.owner is None:
            return repr(self)
        return f"{self.owner.__module__}.{self.owner.__qualname__}.{self.name}"

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

    def rules(self, v: str, namespace: dict[str, Any]) -> list[Rule] | None:
        """The check of a non-None value, as :class:`Rule` s over the variable ``v``.

        The one statement of what the field accepts: compiled into :meth:`check` and into
        the check that guards assignment, and inlined into a schema's generated code. Names
        the rules use go into ``namespace`` (suffixed with ``v`` when they are the field's
        own). None: the field has no rules and overrides :meth:`check` in plain Python.
        """
        return None

    def check(self, value: Any) -> str | None:
        """Type and constraint check of a non-None value: an error message, or None if valid.

        Compiled from :meth:`rules` when first called, and then called directly: the compiled
        function replaces this method on the instance. A field of your own may override it
        instead of declaring rules (its checks are then never inlined).
        """
        from . import _codegen  # late: `import hookline` compiles nothing

        namespace: dict[str, Any] = {}
        rules = self.rules("v", namespace)
        if rules is None:
            raise NotImplementedError(f"{type(self).__name__} defines neither rules() nor check()")
        check = _codegen.compile_check("v", rules, namespace, what=self._label())
        self.__dict__["check"] = check
        return check(value)

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

    def validate(self, value: Any, path: str) -> Any:
        """Check ``value`` and return what to store, or raise :class:`ValidationError`."""
        problems = self.problems(value, path)
        if problems:
            raise ValidationError(problems, getattr(self.owner, "__name__", None))
        return value if value is None or not self.converts else self.convert(value)

    def inlinable(self) -> bool:
        """The generated code may inline :meth:`rules` instead of calling :meth:`problems`:
        no validators, no conversion, and rules rather than a hand-written ``check()``."""
        cls = type(self)
        return (not self.validators and not self.converts
                and cls.rules is not Field.rules and cls.check is Field.check)

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


def _item_rule(field: Field[Any] | None, item: str, iterable: str,
               namespace: dict[str, Any]) -> list[Rule]:
    """The rule "every ``item`` of ``iterable`` is valid for ``field``" (None items pass when
    ``field`` is optional). It has no message: ``problems()`` names each bad item's path."""
    if field is None:
        return []
    rules = field.rules(item, namespace)
    if rules is None:
        return []  # a hand-written check(): the container is not inlinable either
    from . import _codegen  # late, as rules are only asked for when compiling

    test = _codegen.condition(rules, namespace)
    if field.optional:
        test = f"({item} is None or {test})"
    return [Rule(test, None, (item, iterable))]


def _length_rules(v: str, minimum: int, maximum: int | None, unit: str, empty: str,
                  namespace: dict[str, Any]) -> list[Rule]:
    """The length bounds of a str or list ``v``; "not empty" alone is the value's truth."""
    rules = []
    if minimum == 1:
        rules.append(Rule(v, repr(empty)))
    elif minimum > 1:
        namespace["_len"] = len
        rules.append(Rule(f"_len({v}) >= {minimum}",
                          repr(f"must have at least {minimum} {unit}")))
    if maximum is not None:
        namespace["_len"] = len
        rules.append(Rule(f"_len({v}) <= {maximum}", repr(f"must have at most {maximum} {unit}")))
    return rules


_NOT_FINITE = "'must be a finite number'"

#: SQLite's integers (and its JSON functions') have 64 bits: a larger int cannot be stored.
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
#: How deep a list or object value may nest (as in an input line: see ``_limits``).
MAX_JSON_DEPTH = 64


def _is_text(value: str) -> bool:
    """Whether ``value`` is Unicode text: no lone surrogate, so that it can be encoded as
    UTF-8 (and stored). Rules call it for non-ASCII strings only (``isascii()`` is O(1))."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text_problem(value: str) -> str:
    at = next(i for i, ch in enumerate(value) if "\ud800" <= ch <= "\udfff")
    return (f"contains a lone surrogate ({value[at]!r} at index {at}): not Unicode text, "
            "it cannot be stored")


def _int_problem(value: int) -> str:
    return f"must fit in 64 bits ({INT64_MIN} to {INT64_MAX}), the range SQLite stores"


def _json_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` is not JSON data that SQLite stores and reads back as it is, or None.

    JSON data: str (Unicode text, no lone surrogate), int in 64 bits, finite float, bool,
    None, and lists and str-keyed dicts of these, nested at most 64 levels.
    """
    kind = value.__class__
    if kind is str:
        return None if value.isascii() or _is_text(value) else _text_problem(value)
    if kind is int:
        return None if INT64_MIN <= value <= INT64_MAX else _int_problem(value)
    if kind is float:
        return None if -math.inf < value < math.inf else (
            f"must be a finite number, not {value!r} (JSON has no NaN or Infinity)")
    if kind is bool or value is None:
        return None
    if kind is not list and kind is not dict:
        return (f"must be JSON data (a string, number, boolean, null, list or object), "
                f"not {kind.__name__}")
    if depth >= MAX_JSON_DEPTH:
        return f"nests deeper than {MAX_JSON_DEPTH} levels"
    if kind is list:
        for index, item in enumerate(value):
            problem = _json_problem(item, depth + 1)
            if problem is not None:
                return f"[{index}]: {problem}"
        return None
    for key, item in value.items():
        problem = _key_problem(key)
        if problem is None:
            problem = _json_problem(item, depth + 1)
        if problem is not None:
            return f"[{key!r}]: {problem}"
    return None


def _key_problem(key: Any) -> str | None:
    if key.__class__ is not str:
        return f"keys must be strings, not {key!r}"
    if key.isascii() or _is_text(key):
        return None
    return f"key {_text_problem(key)}"


def _json_rule(item: str, iterable: str, namespace: dict[str, Any]) -> Rule:
    """Every ``item`` of ``iterable`` is JSON data that can be stored (an ASCII string and an
    int are tested inline: the common items); ``problems()`` names each bad item."""
    namespace["_json_problem"] = _json_problem
    return Rule(f"({item}.__class__ is str and {item}.isascii() or {item}.__class__ is int "
                f"and {INT64_MIN} <= {item} <= {INT64_MAX} or _json_problem({item}) is None)",
                None, (item, iterable))


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
        for bound in (minimum, maximum):
            if bound is not None and (bound != bound or bound in (math.inf, -math.inf)):
                raise SchemaError(f"{type(self).__name__}: a bound must be finite, not {bound!r}")
        self.minimum = minimum
        self.maximum = maximum
        self.exclusive_minimum = exclusive_minimum
        self.exclusive_maximum = exclusive_maximum
        super().__init__(**kwargs)

    def _bound_rules(self, v: str, namespace: dict[str, Any], *, finite: bool) -> list[Rule]:
        """The bounds; with ``finite``, NaN and ±inf are refused too ("must be a finite number").

        NaN fails every comparison, so a bound refuses NaN and one infinity by itself (its
        message then tells which it was), and a missing bound is replaced by that infinity:
        the generated code makes two comparisons, not four.
        """
        if finite:
            namespace["_inf"], namespace["_ninf"] = math.inf, -math.inf
        low = (self.minimum, ">" if self.exclusive_minimum else ">=", "_ninf",
               _bounds_text(self.minimum, None, self.exclusive_minimum, False))
        high = (self.maximum, "<" if self.exclusive_maximum else "<=", "_inf",
                _bounds_text(None, self.maximum, False, self.exclusive_maximum))
        rules = []
        for bound, operator, infinity, text in (low, high):
            if bound is not None:
                message = repr(f"must be {text}")
                if finite:
                    message = f"{message} if _ninf < {v} < _inf else {_NOT_FINITE}"
                rules.append(Rule(f"{v} {operator} {bound!r}", message))
            stored = INT64_MIN if operator[0] == ">" else INT64_MAX
            if bound is not None and (bound >= stored if stored < 0 else bound <= stored):
                continue  # the bound keeps an int in 64 bits (and refuses NaN and ±inf)
            # An int must fit in 64 bits (one comparison for the common value); a float need
            # not, but must be finite unless NaN is allowed.
            namespace["_int_problem"] = _int_problem
            limit = f"{v} {operator[0]}= {stored}"
            if not self.floats:
                rules.append(Rule(limit, f"_int_problem({v})"))
                continue
            message = f"_int_problem({v}) if {v}.__class__ is int else {_NOT_FINITE}"
            if finite:
                rules.append(Rule(f"({limit} or {v}.__class__ is float and {v} {operator[0]} "
                                  f"{infinity})", message))
            else:
                rules.append(Rule(f"({limit} or {v}.__class__ is float)", message))
        return rules

    #: Whether the field takes floats (Number) besides ints.
    floats = False

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
    floats = True

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

    def rules(self, v: str, namespace: dict[str, Any]) -> list[Rule]:
        return [Rule(f"({v}.__class__ is float or {v}.__class__ is int)", "'must be a number'"),
                *self._bound_rules(v, namespace, finite=not self.allow_nan)]

    def _options(self) -> tuple[Any, ...]:
        return (*super()._options(), self.allow_nan)


class Integer(_Bounded[int]):
    """An int (not a bool, not a float with an integral value)."""

    kind = "an integer"

    def rules(self, v: str, namespace: dict[str, Any]) -> list[Rule]:
        return [Rule(f"{v}.__class__ is int", "'must be an integer'"),
                *self._bound_rules(v, namespace, finite=False)]


class Timestamp(Field[int]):
    """Epoch milliseconds, an int > 0. With ``iso=True`` an ISO-8601 string with a UTC offset
    (``2026-01-01T00:00:00Z``) is accepted too and stored as epoch milliseconds."""

    kind = "a timestamp (epoch ms)"

    def __init__(self, *, iso: bool = False, **kwargs: Any) -> None:
        self.iso = iso
        self.converts = iso
        super().__init__(**kwargs)

    def rules(self, v: str, namespace: dict[str, Any]) -> list[Rule]:
        positive = "'must be a positive epoch-ms timestamp'"
        namespace["_int_problem"] = _int_problem
        if not self.iso:
            return [Rule(f"{v}.__class__ is int", "'must be epoch ms (int > 0)'"),
                    Rule(f"{v} > 0", positive),
                    Rule(f"{v} <= {INT64_MAX}", f"_int_problem({v})")]
        namespace["_parse_iso_ms"] = _parse_iso_ms
        return [
            Rule(f"({v}.__class__ is int or {v}.__class__ is str)",
                 "'must be epoch ms (int > 0) or an ISO-8601 string'"),
            Rule(f"({v}.__class__ is str or {v} > 0)", positive),
            Rule(f"({v}.__class__ is str or {v} <= {INT64_MAX})", f"_int_problem({v})"),
            Rule(f"({v}.__class__ is int or _parse_iso_ms({v}) is not None)",
                 "'must be an ISO-8601 timestamp'"),
        ]

    def convert(self, value: Any) -> Any:
        if type(value) is str:
            return _parse_iso_ms(value)
        return value

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

    def rules(self, v: str, namespace: dict[str, Any]) -> list[Rule]:
        namespace["_is_text"], namespace["_text_problem"] = _is_text, _text_problem
        rules = [Rule(f"{v}.__class__ is str", "'must be a string'"),
                 *_length_rules(v, self.min_length, self.max_length, "characters",
                                "must not be empty", namespace)]
        if self._match is not None:
            namespace[f"_match_{v}"] = self._match
            rules.append(Rule(f"_match_{v}({v}) is not None",
                              repr(f"must match {self.pattern!r}")))
        # Text that UTF-8 cannot encode (a lone surrogate, which JSON's \\ud800 escapes
        # make) cannot be stored; isascii() is O(1), the common string pays only that.
        rules.append(Rule(f"({v}.isascii() or _is_text({v}))", f"_text_problem({v})"))
        return rules

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

    def rules(self, v: str, namespace: dict[str, Any]) -> list[Rule]:
        return [Rule(f"{v}.__class__ is bool", "'must be true or false'")]


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

    def rules(self, v: str, namespace: dict[str, Any]) -> list[Rule]:
        shown = ", ".join(repr(value) for value in sorted(self.values, key=repr))
        message = repr(f"must be one of {shown}")
        if all(type(value) is str for value in self.values):
            namespace[f"_choices_{v}"] = frozenset(self.values)
            return [Rule(f"{v}.__class__ is str and {v} in _choices_{v}", message)]
        namespace[f"_types_{v}"] = frozenset(_HASHABLE_SCALARS)
        namespace[f"_allowed_{v}"] = self._allowed
        return [Rule(f"{v}.__class__ in _types_{v} and ({v}.__class__, {v}) in _allowed_{v}",
                     message)]

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

    def rules(self, v: str, namespace: dict[str, Any]) -> list[Rule]:
        items = (_item_rule(self.of, f"_{v}_i", v, namespace) if self.of is not None
                 else [_json_rule(f"_{v}_i", v, namespace)])
        return [Rule(f"{v}.__class__ is list", "'must be a list'"),
                *_length_rules(v, self.min_length, self.max_length, "items",
                               "must have at least 1 items", namespace),
                *items]

    def problems(self, value: Any, path: str) -> list[FieldError]:
        found = super().problems(value, path)
        if found or value is None:
            return found
        for index, item in enumerate(value):
            if self.of is not None:
                found.extend(self.of.problems(item, f"{path}[{index}]"))
            else:
                problem = _json_problem(item, 1)
                if problem is not None:
                    found.append(FieldError(f"{path}[{index}]", problem, item))
        return found

    def convert(self, value: Any) -> Any:
        assert self.of is not None
        return [item if item is None else self.of.convert(item) for item in value]

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

    def rules(self, v: str, namespace: dict[str, Any]) -> list[Rule]:
        key = f"_{v}_k"
        namespace["_is_text"], namespace["_key_problem"] = _is_text, _key_problem
        values = (_item_rule(self.values, f"_{v}_j", f"{v}.values()", namespace)
                  if self.values is not None else [_json_rule(f"_{v}_j", f"{v}.values()",
                                                              namespace)])
        return [Rule(f"{v}.__class__ is dict", "'must be an object'"),
                Rule(f"({key}.__class__ is str and ({key}.isascii() or _is_text({key})))",
                     f"_key_problem({key})", (key, v)),
                *_item_rule(self.keys, f"_{v}_j", v, namespace),
                *values]

    def problems(self, value: Any, path: str) -> list[FieldError]:
        found = super().problems(value, path)
        if found or value is None:
            return found
        for key, item in value.items():
            if self.keys is not None:
                found.extend(self.keys.problems(key, f"{path}.{key}<key>"))
            if self.values is not None:
                found.extend(self.values.problems(item, f"{path}.{key}"))
            else:
                problem = _json_problem(item, 1)
                if problem is not None:
                    found.append(FieldError(f"{path}.{key}", problem, item))
        return found

    def convert(self, value: Any) -> Any:
        assert self.values is not None
        return {k: v if v is None else self.values.convert(v) for k, v in value.items()}

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

    def rules(self, v: str, namespace: dict[str, Any]) -> list[Rule]:
        namespace["_isinstance"] = isinstance
        namespace[f"_schema_{v}"] = self.schema
        return [Rule(f"(_isinstance({v}, _schema_{v}) or {v}.__class__ is dict)",
                     repr(f"must be an object ({self.schema.__name__})"))]

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
