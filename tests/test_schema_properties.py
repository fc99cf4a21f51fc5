"""Property tests of schemas: the input space is large, so hypothesis explores it.

(a) Every valid event is accepted, by ``from_dict`` and ``__init__``, and round-trips.
(b) Breaking exactly one field in a known way is refused with a ValidationError (nothing
    else) naming exactly that field's path, on every path into the schema.
(c) The generated fast path (``from_dict``, ``__init__``) behaves exactly like the
    descriptor reference path (``from_dict_by_descriptors``: ``find_problems`` and each
    field's ``problems()``): same accepted events, same errors in the same order, for
    arbitrary JSON-ish data and for near-valid data. Each field's check is written once, as
    rules; the generated code inlines them with their messages, ``problems()`` runs them
    compiled as the field's ``check()``, so this keeps the two renderings in step.
(d) Assignment stores exactly the values ``problems()`` accepts, and refuses the others with
    its errors.

Valid data is derived from each field's declared options (``valid_value``), an independent
restatement of the rules, not a call into the code under test.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import hookline
from hookline import DefaultEvent, ValidationError, fields
from hookline.fields import Field

#: No deadline (shared CI machines are noisy); no "explain" phase (slow on big inputs).
BASE = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)

# -- schemas -------------------------------------------------------------------------------------

RESERVED = ("admin", "root")


def no_spaces(value: str) -> bool:
    return " " not in value


def not_reserved(value: str) -> None:
    if value in RESERVED:
        raise ValueError(f"{value!r} is reserved")


#: Values each validator refuses (they satisfy the field's other rules).
VALIDATOR_REFUSES: dict[Callable[[Any], Any], st.SearchStrategy[Any]] = {
    no_spaces: st.sampled_from(["a b", "ab ", " ab"]),
    not_reserved: st.sampled_from(RESERVED),
}


class Address(hookline.Event):
    city = fields.String(min_length=1, max_length=40)
    zip = fields.String(pattern="[0-9]{5}", optional=True)
    country = fields.Choice(["FR", "DE", "US"], default="FR")


class Line(hookline.Event):
    sku = fields.String(min_length=1, max_length=12)
    qty = fields.Integer(minimum=1, maximum=99)
    price = fields.Number(minimum=0, exclusive_minimum=True)
    gift = fields.Boolean(default=False)


class Order(hookline.Event):
    """Every field type, with bounds, defaults, optional fields, validators and nesting."""

    order_id = fields.String(min_length=1, max_length=32, validators=[no_spaces])
    status = fields.Choice(["new", "paid", "shipped"])
    priority = fields.Choice([0, 1, 2.5, True, "urgent"], default=0)
    quantity = fields.Integer(minimum=1, maximum=1000)
    discount = fields.Number(minimum=0, maximum=1, exclusive_maximum=True, default=0)
    ratio = fields.Number(allow_nan=True, optional=True)
    express = fields.Boolean(default=False)
    note = fields.String(max_length=50, optional=True)
    nickname = fields.String(min_length=2, max_length=20, validators=[not_reserved],
                             optional=True)
    placed = fields.Timestamp(iso=True)
    shipped = fields.Timestamp(optional=True)
    address = fields.Nested(Address, optional=True)
    lines = fields.List(fields.Nested(Line), min_length=1, max_length=4)
    codes = fields.List(fields.String(pattern="[A-Z]{2,4}"), default=list, max_length=3)
    marks = fields.List(fields.Boolean(optional=True), default=list)
    scores = fields.Mapping(values=fields.Number(minimum=0), default=dict)
    labels = fields.Mapping(keys=fields.String(min_length=1, max_length=8),
                            values=fields.String(max_length=8), default=dict)
    meta = fields.Mapping(default=dict)
    raw = fields.List(default=list)


class Measures(hookline.Event):
    """Numeric strictness: bools, integral floats, NaN, exclusive bounds, typed choices."""

    any_number = fields.Number(allow_nan=True)
    positive = fields.Number(minimum=0, maximum=10, exclusive_minimum=True)
    small = fields.Integer(minimum=-5, maximum=5, exclusive_maximum=True)
    level = fields.Choice([0, 1, 1.5, "1", True, False])
    flag = fields.Boolean(optional=True)
    at = fields.Timestamp()
    huge = fields.Integer(minimum=-(2**70), default=0)


class BoundedNaN(hookline.Event):
    """NaN admitted by allow_nan, but bounded: NaN compares false with every bound."""

    low = fields.Number(minimum=0, allow_nan=True)
    high = fields.Number(maximum=1, exclusive_maximum=True, allow_nan=True, optional=True)


class Containers(hookline.Event):
    """Containers inside containers."""

    grid = fields.List(fields.List(fields.Integer()))
    groups = fields.Mapping(values=fields.List(fields.String()))
    rows = fields.List(fields.Mapping(values=fields.Integer()), default=list)
    deep = fields.Mapping(values=fields.Mapping(values=fields.Boolean(optional=True)),
                          default=dict)
    picks = fields.List(fields.Choice([1, 2, "x"]), optional=True, max_length=3)


class Loose(hookline.Event, extra="properties"):
    kind = fields.String(min_length=1)
    count = fields.Integer(default=0)
    properties = fields.Mapping(default=dict)


class Defaults(hookline.Event):
    """Defaults of every sort, including ones that a field converts."""

    name = fields.String(default="anon")
    at = fields.Timestamp(iso=True, default="2026-01-01T00:00:00Z")
    home = fields.Nested(Address, default={"city": "Lyon"})
    tags = fields.List(fields.String(), default=list)
    when = fields.Timestamp(iso=True, optional=True)


def at_most_three(value: Any) -> bool:
    return len(value) <= 3


class Checked(hookline.Event):
    """Validators on containers, typed and untyped, and on their items and keys."""

    meta = fields.Mapping(validators=[at_most_three], default=dict)
    raw = fields.List(validators=[at_most_three], default=list)
    words = fields.List(fields.String(validators=[no_spaces]), default=list)
    scores = fields.Mapping(keys=fields.String(validators=[no_spaces]),
                            values=fields.Integer(validators=[lambda n: n % 2 == 0]),
                            default=dict)


class Sealed(hookline.Event, frozen=True):
    id = fields.String(min_length=1)
    n = fields.Integer(default=0)
    tags = fields.List(fields.String(), default=list)


# -- strategies: JSON-ish data -------------------------------------------------------------------

# Small sizes keep generation cheap: the rules are about types, bounds and shapes, which
# short values exercise as well as long ones (boundary lengths are drawn explicitly).


def _json(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3),
        max_leaves=5,
    )


# Valid JSON data is what SQLite stores and reads back: ints in 64 bits, finite floats.
json_values = finite_json_values = _json(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6)
)


def bounded_text(low: int, high: int | None) -> st.SearchStrategy[str]:
    """Strings of ``low``..``high`` characters: mostly short, sometimes exactly at a bound."""
    short = st.text(min_size=low, max_size=low + 6 if high is None else min(high, low + 6))
    edges = [st.just("a" * low)]
    if high is not None:
        edges.append(st.just("\u00e9" * high))
    return st.one_of(short, short, short, *edges)


#: Patterns used by the schemas here, generated without the (slow) regex strategy.
PATTERN_TEXT: dict[str, st.SearchStrategy[str]] = {
    "[A-Z]{3}": st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3),
    "[A-Z]{2,4}": st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=4),
    "[0-9]{5}": st.text("0123456789", min_size=5, max_size=5),
}

#: Values that sit on the edges of the rules, in groups so that each group is drawn often.
EDGE_VALUES = [
    [math.nan, math.inf, -math.inf, -0.0, 1e-300, 0.5, 1.5, 2.5],
    [None, True, False, 0, 1, -1, 2, 5, 10, 1000, 1001, 1.0, 0.0, 2**63, -(2**71)],
    ["", " ", "a", "1", "x", "FR", "new", "urgent", "admin", "a b", "AB", "12345", "x" * 300,
     "2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "1970-01-01T00:00:00Z"],
    [[], [1], ["a"], [None], [[1]], [[1, "2"]], [{"a": 1}], {}, {"a": 1}, {"a": "b"},
     {"a": [1]}, {"a": {"b": None}}, {"city": "x"}, {"city": ""},
     {"sku": "s", "qty": 1, "price": 1}],
]
#: Edge values or arbitrary JSON. Containers are shared objects: deep-copy before mutating.
edge_values = st.one_of(*(st.sampled_from(group) for group in EDGE_VALUES), json_values)


def _offset_iso(moment: datetime, minutes: int, zulu: bool) -> str:
    text = moment.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat()
    return text.replace("+00:00", "Z") if zulu else text


#: ISO-8601 strings with an explicit offset, all after the epoch.
iso_strings = st.builds(
    _offset_iso,
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(-(23 * 60 + 59), 23 * 60 + 59),
    st.booleans(),
)

# -- strategies: valid data, derived from the declared options -----------------------------------


def _in_bounds(field: Any, value: float) -> bool:
    low, high = field.minimum, field.maximum
    if low is not None and not (value > low if field.exclusive_minimum else value >= low):
        return False
    return high is None or (value < high if field.exclusive_maximum else value <= high)


def _passes_validators(field: Field[Any], value: Any) -> bool:
    for validator in field.validators:
        try:
            if validator(value) is False:
                return False
        except (ValueError, TypeError):
            return False
    return True


def _valid_numbers(field: Any, *, integers_only: bool) -> st.SearchStrategy[Any]:
    low, high = field.minimum, field.maximum
    ints = st.integers(  # an int must fit in 64 bits (SQLite's integers)
        min_value=-(2**63) if low is None else max(math.ceil(low), -(2**63)),
        max_value=2**63 - 1 if high is None else min(math.floor(high), 2**63 - 1),
    ).filter(lambda v: _in_bounds(field, v))
    if integers_only:
        return ints
    floats = st.floats(
        min_value=low, max_value=high,
        exclude_min=low is not None and field.exclusive_minimum,
        exclude_max=high is not None and field.exclusive_maximum,
        allow_nan=False, allow_infinity=False,
    )
    options = [ints, floats]
    if field.allow_nan and low is None and high is None:
        options.append(st.sampled_from([math.nan, math.inf, -math.inf]))
    return st.one_of(options)


def _valid_non_null(field: Field[Any]) -> st.SearchStrategy[Any]:
    if isinstance(field, fields.String):
        low, high = field.min_length, field.max_length
        if field.pattern is not None:
            if field.pattern in PATTERN_TEXT:
                matching = PATTERN_TEXT[field.pattern]
            else:
                matching = st.from_regex(field.pattern, fullmatch=True)
            return matching.filter(
                lambda s: low <= len(s) and (high is None or len(s) <= high)
            )
        return bounded_text(low, high)
    if isinstance(field, fields.Number):
        return _valid_numbers(field, integers_only=False)
    if isinstance(field, fields.Integer):
        return _valid_numbers(field, integers_only=True)
    if isinstance(field, fields.Boolean):
        return st.booleans()
    if isinstance(field, fields.Choice):
        return st.sampled_from(field.values)
    if isinstance(field, fields.Timestamp):
        epoch_ms = st.integers(min_value=1, max_value=2**53)
        return epoch_ms | iso_strings if field.iso else epoch_ms
    if isinstance(field, fields.List):
        items = json_values if field.of is None else valid_value(field.of)
        high = field.max_length if field.max_length is not None else field.min_length + 3
        return st.lists(items, min_size=field.min_length, max_size=min(high, 3))
    if isinstance(field, fields.Mapping):
        keys = st.text(max_size=4) if field.keys is None else valid_value(field.keys)
        values = json_values if field.values is None else valid_value(field.values)
        return st.dictionaries(keys, values, max_size=3)
    if isinstance(field, fields.Nested):
        as_dicts = valid_dicts(field.schema)
        return as_dicts | as_dicts.map(field.schema.from_dict)
    raise AssertionError(f"no strategy for {field!r}")


@functools.cache
def valid_value(field: Field[Any]) -> st.SearchStrategy[Any]:
    values = _valid_non_null(field)
    if field.validators:
        values = values.filter(lambda v: _passes_validators(field, v))
    return st.none() | values if field.optional else values


@functools.cache
def valid_dicts(schema: type[hookline.Schema]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid input for ``schema``: required keys always, the others sometimes."""
    declared = schema.__fields__
    valid = st.fixed_dictionaries(
        {name: valid_value(field) for name, field in declared.items() if field.required},
        optional={
            name: valid_value(field) for name, field in declared.items() if not field.required
        },
    )
    if schema.__extra__ == "properties":
        extra = st.dictionaries(st.text(max_size=8).filter(lambda k: k not in declared),
                                finite_json_values, max_size=3)
        valid = st.builds(lambda data, more: {**data, **more}, valid, extra)
    return valid


@functools.cache
def default_events() -> st.SearchStrategy[dict[str, Any]]:
    """Valid DefaultEvent input, written out from the documented default schema."""
    return st.fixed_dictionaries(
        {
            "event_id": bounded_text(1, 256),
            "user_id": bounded_text(1, 256),
            "kind": bounded_text(1, 64),
            "ts": st.integers(min_value=1, max_value=2**63 - 1),
        },
        optional={
            "amount": st.integers(min_value=0, max_value=2**63 - 1)
            | st.floats(min_value=0, allow_nan=False, allow_infinity=False),
            "currency": PATTERN_TEXT["[A-Z]{3}"],
            "tags": st.lists(st.text(max_size=6), max_size=4),
            "properties": st.dictionaries(st.text(max_size=6), finite_json_values, max_size=3),
        },
    )


# -- strategies: one known breakage --------------------------------------------------------------

Breakage = tuple[dict[str, Any], dict[str, Any], str, str]  # valid, broken, path, kind

_not_str = st.integers() | st.floats() | st.booleans() | st.lists(st.text(), max_size=2) \
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
_not_number = st.text() | st.booleans() | st.lists(st.integers(), max_size=2) | st.dictionaries(
    st.text(max_size=3), st.integers(), max_size=2)


def _too_long(limit: int) -> st.SearchStrategy[str]:
    return st.builds(lambda n, c: c * n, st.integers(limit + 1, limit + 50), st.characters())


def _allowed_choice(field: fields.Choice, value: Any) -> bool:
    return any(type(value) is type(allowed) and value == allowed for allowed in field.values)


@functools.cache
def _wrong_type(field: Field[Any]) -> st.SearchStrategy[Any]:
    if isinstance(field, fields.String):
        return _not_str
    if isinstance(field, fields.Number):
        return _not_number
    if isinstance(field, fields.Integer):
        return _not_number | st.floats()
    if isinstance(field, fields.Boolean):
        return st.integers() | st.floats() | st.text() | st.lists(st.booleans(), max_size=2)
    if isinstance(field, fields.Choice):
        look_alikes = [float(v) if type(v) is int else int(v) if type(v) is bool else str(v)
                       for v in field.values] + [str(v) for v in field.values]
        scalars = st.sampled_from(look_alikes) | st.integers() | st.floats() | st.text()
        return st.lists(st.integers(), max_size=2) | scalars.filter(
            lambda v: not _allowed_choice(field, v)
        )
    if isinstance(field, fields.Timestamp):
        wrong = st.floats() | st.booleans() | st.lists(st.integers(), max_size=2)
        return wrong if field.iso else wrong | st.text() | iso_strings
    if isinstance(field, fields.List):
        return st.text() | st.integers() | st.dictionaries(st.text(max_size=3), st.integers())
    if isinstance(field, (fields.Mapping, fields.Nested)):
        return st.text() | st.integers() | st.lists(st.integers(), max_size=2)
    raise AssertionError(f"no wrong type for {field!r}")


@functools.cache
def _out_of_rules(field: Field[Any]) -> list[st.SearchStrategy[tuple[Any, str]]]:
    """Values of the right type that break one of the field's own rules, with a path suffix."""
    here: list[st.SearchStrategy[Any]] = []
    deeper: list[st.SearchStrategy[tuple[Any, str]]] = []
    if isinstance(field, fields.String):
        if field.min_length:
            here.append(st.text(max_size=field.min_length - 1))
        if field.max_length is not None:
            here.append(_too_long(field.max_length))
        if field.pattern is not None:
            here.append(st.text(max_size=8).filter(lambda s: not re.fullmatch(field.pattern, s)))
        for validator in field.validators:
            here.append(VALIDATOR_REFUSES[validator])
    elif isinstance(field, (fields.Number, fields.Integer)):
        low, high = field.minimum, field.maximum
        if low is not None:
            here.append(st.integers(max_value=math.floor(low)).filter(
                lambda v: not _in_bounds(field, v)))
        if high is not None:
            here.append(st.integers(min_value=math.ceil(high)).filter(
                lambda v: not _in_bounds(field, v)))
        if isinstance(field, fields.Number) and not field.allow_nan:
            here.append(st.sampled_from([math.nan, math.inf, -math.inf]))
    elif isinstance(field, fields.Timestamp):
        here.append(st.integers(max_value=0))
        if field.iso:
            here.append(st.sampled_from(["2026-01-01T00:00:00", "2026-01-01", "soon", ""]))
    elif isinstance(field, fields.List):
        if field.min_length:
            here.append(st.lists(valid_value(field.of) if field.of else json_values,
                                 max_size=field.min_length - 1))
        if field.max_length is not None:
            here.append(st.lists(valid_value(field.of) if field.of else json_values,
                                 min_size=field.max_length + 1, max_size=field.max_length + 2))
        if field.of is not None and field.max_length != 0:
            deeper.append(_bad_item(field))
    elif isinstance(field, fields.Mapping):
        here.append(st.builds(lambda v: {1: v}, st.integers()))  # a key that is not a string
        if field.values is not None:
            deeper.append(_bad_entry(field))
        if field.keys is not None and _out_of_rules(field.keys):
            deeper.append(_bad_key(field))
    elif isinstance(field, fields.Nested):
        deeper.append(broken(field.schema).map(lambda b: (b[1], f".{b[2]}")))
    # Breakages inside items, entries and nested objects are the subtle ones: draw them often.
    return [*deeper, *deeper, *(s.map(lambda v: (v, "")) for s in here)]


@st.composite
def _bad_item(draw: st.DrawFn, field: fields.List) -> tuple[Any, str]:
    assert field.of is not None
    high = field.max_length if field.max_length is not None else field.min_length + 4
    items = draw(st.lists(valid_value(field.of), min_size=max(1, field.min_length),
                          max_size=max(1, high)))
    index = draw(st.integers(0, len(items) - 1))
    items[index], suffix = draw(bad_value(field.of))
    return items, f"[{index}]{suffix}"


@st.composite
def _bad_entry(draw: st.DrawFn, field: fields.Mapping) -> tuple[Any, str]:
    assert field.values is not None
    data = draw(valid_value(field))
    key = draw(st.text(max_size=8) if field.keys is None else valid_value(field.keys))
    data[key], suffix = draw(bad_value(field.values))
    return data, f".{key}{suffix}"


@st.composite
def _bad_key(draw: st.DrawFn, field: fields.Mapping) -> tuple[Any, str]:
    assert field.keys is not None
    data = draw(valid_value(field))
    key, _ = draw(st.one_of(_out_of_rules(field.keys)))  # strings that break the key rules
    data[key] = draw(json_values if field.values is None else valid_value(field.values))
    return data, f".{key}<key>"


@functools.cache
def bad_value(field: Field[Any]) -> st.SearchStrategy[tuple[Any, str]]:
    """A value ``field`` refuses, with the path suffix of the error (``""``, ``[2]``, ``.city``)."""
    options = [*_out_of_rules(field), _wrong_type(field).map(lambda v: (v, ""))]
    if not field.optional:
        options.append(st.just((None, "")))
    return st.one_of(options)


#: The target of a breakage that adds a key the schema does not have.
UNKNOWN = "unknown-key"  # never a field name: not an identifier


@st.composite
def broken(
    draw: st.DrawFn, schema: type[hookline.Schema], target: str | None = None
) -> Breakage:
    """Valid data for ``schema``, and a copy with exactly one thing broken in a known way.

    ``target`` is the field to break (a bad value, or its absence when it is required), or
    UNKNOWN for an added key; None picks one.
    """
    valid = draw(valid_dicts(schema))
    data = dict(valid)
    declared = schema.__fields__
    if target is None:
        unknown = [UNKNOWN] if schema.__extra__ != "properties" else []
        target = draw(st.sampled_from([*declared, *unknown]))
    if target == UNKNOWN:
        key = draw(st.text(max_size=10).filter(lambda k: k not in declared))
        data[key] = draw(json_values)
        return valid, data, key, "unknown"
    field = declared[target]
    options = [bad_value(field)]
    if field.required:
        options.append(st.just(None))
    bad = draw(st.one_of(options))
    if bad is None:
        del data[target]
        return valid, data, target, "missing"
    data[target], suffix = bad
    return valid, data, f"{target}{suffix}", "value"


_TOO_LONG = {"event_id": 256, "user_id": 256, "kind": 64}
#: For each DefaultEvent field, values it must refuse.
DEFAULT_EVENT_BREAKAGES: dict[str, st.SearchStrategy[Any]] = {
    **{name: st.just("") | _too_long(size) | _not_str | st.none()
       for name, size in _TOO_LONG.items()},
    "ts": st.integers(max_value=0) | st.floats() | st.booleans() | st.text(max_size=4)
    | st.none() | st.lists(st.integers(), max_size=1),
    "amount": st.integers(max_value=-1)
    | st.floats(max_value=0, exclude_max=True, allow_infinity=False)
    | st.sampled_from([math.nan, math.inf, -math.inf]) | _not_number | st.none(),
    "currency": st.text(max_size=5).filter(lambda s: not re.fullmatch("[A-Z]{3}", s))
    | _not_str | st.none(),
    "tags": st.text(max_size=4) | st.integers() | st.none()
    | st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
    "properties": st.lists(st.integers(), max_size=2) | st.text(max_size=4) | st.integers()
    | st.none() | st.builds(lambda n: {n: "v"}, st.integers()),
}


@st.composite
def broken_default_event(draw: st.DrawFn, target: str) -> Breakage:
    """DefaultEvent input with ``target`` broken, the breakages listed by hand."""
    valid = draw(default_events())
    data = dict(valid)
    if target == UNKNOWN:
        key = draw(st.text(max_size=10).filter(lambda k: k not in DefaultEvent.__fields__))
        data[key] = draw(json_values)
        return valid, data, key, "unknown"
    if target == "tags[i]":
        tags = draw(st.lists(st.text(max_size=5), min_size=1, max_size=5))
        index = draw(st.integers(0, len(tags) - 1))
        tags[index] = draw(_not_str | st.none())
        data["tags"] = tags
        return valid, data, f"tags[{index}]", "value"
    if target in ("event_id", "user_id", "kind", "ts") and draw(st.integers(0, 4)) == 0:
        del data[target]
        return valid, data, target, "missing"
    data[target] = draw(DEFAULT_EVENT_BREAKAGES[target])
    return valid, data, target, "value"


# -- (a) valid events are accepted ---------------------------------------------------------------


@settings(BASE, max_examples=800)
@given(default_events())
def test_every_valid_default_event_is_accepted_and_round_trips(data: dict[str, Any]) -> None:
    event = DefaultEvent.from_dict(data)
    for name, value in data.items():
        assert getattr(event, name) == value
    assert DefaultEvent(**data) == event
    assert DefaultEvent.from_dict(event.to_dict()) == event
    assert DefaultEvent.from_json(event.to_json()) == event


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


#: Examples per schema: fewer for the big ones, whose data costs more to generate.
VALID_EXAMPLES = {Order: 200, Measures: 400, Containers: 300, Loose: 400, Defaults: 400,
                  Checked: 200, Sealed: 300}


@pytest.mark.parametrize("schema", list(VALID_EXAMPLES), ids=lambda s: s.__name__)
def test_every_valid_event_is_accepted_and_round_trips(schema: type[hookline.Event]) -> None:
    @settings(BASE, max_examples=VALID_EXAMPLES[schema])
    @given(valid_dicts(schema))
    def check(values: dict[str, Any]) -> None:
        _check_valid(schema, values)

    check()


def _check_valid(schema: type[hookline.Event], values: dict[str, Any]) -> None:
    event = schema.from_dict(values)
    declared = schema.__fields__
    extra = {k: v for k, v in values.items() if k not in declared}
    if schema.__extra__ == "properties":  # unknown keys are kept under properties
        assert event.properties == {**values.get("properties", {}), **extra}
    for name, value in values.items():
        if name in declared and name != "properties" and not declared[name].converts:
            assert _same(getattr(event, name), value)
    assert set(vars(event)) == set(declared)
    assert schema.from_dict(event.to_dict()) == event
    known = {k: v for k, v in values.items() if k in declared}
    assert schema(**known) == schema.from_dict(known)


# -- (b) one known breakage is refused, naming exactly that field ----------------------------


def _refused(build: Callable[[], Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        build()
    return caught.value.fields


def _check_breakage(schema: type[hookline.Event], breakage: Breakage) -> None:
    valid, data, path, kind = breakage
    assert _refused(lambda: schema.from_dict(data)) == [path]
    assert [e.path for e in schema.find_problems(data)] == [path]
    if kind == "unknown":
        return  # not a keyword of __init__ (a TypeError, as for any function)
    assert _refused(lambda: schema(**data)) == [path]
    if kind == "value" and not schema.__frozen__:
        event = schema.from_dict(valid)
        before = event.to_dict()
        name = re.match(r"[^.\[]+", path).group()  # type: ignore[union-attr]
        assert _refused(lambda: setattr(event, name, data[name])) == [path]
        assert event.to_dict() == before


@pytest.mark.parametrize("target", [*DEFAULT_EVENT_BREAKAGES, "tags[i]", UNKNOWN])
def test_one_broken_default_event_field_is_refused_by_name(target: str) -> None:
    @settings(BASE, max_examples=120)
    @given(broken_default_event(target))
    def check(breakage: Breakage) -> None:
        _check_breakage(DefaultEvent, breakage)

    check()


def _targets(schema: type[hookline.Schema]) -> list[str]:
    unknown = [UNKNOWN] if schema.__extra__ != "properties" else []
    return [*schema.__fields__, *unknown]


#: Examples per (schema, field): fewer for the big schemas, whose data costs more to generate.
BROKEN_EXAMPLES = {Order: 20, Address: 100, Line: 60, Measures: 60, Containers: 60,
                   Sealed: 60}


@pytest.mark.parametrize(
    ("schema", "target"),
    [pytest.param(schema, target, id=f"{schema.__name__}-{target}")
     for schema in BROKEN_EXAMPLES for target in _targets(schema)],
)
def test_one_broken_field_is_refused_by_its_path(
    schema: type[hookline.Event], target: str
) -> None:
    @settings(BASE, max_examples=BROKEN_EXAMPLES[schema])
    @given(broken(schema, target))
    def check(breakage: Breakage) -> None:
        _check_breakage(schema, breakage)

    check()


# -- (c) the fast path equals the reference path ---------------------------------------------


def _slots(value: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key) position inside nested dicts and lists."""
    if type(value) is dict:
        for key, item in value.items():
            yield value, key
            yield from _slots(item)
    elif type(value) is list:
        for index, item in enumerate(value):
            yield value, index
            yield from _slots(item)


@st.composite
def _edited(draw: st.DrawFn, value: Any) -> Any:
    """``value`` (a deep copy) with one to three edits: replaced, deleted or added entries."""
    value = copy.deepcopy(value)
    for _ in range(draw(st.integers(1, 3))):
        slots = list(_slots(value))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if not slots:
            return copy.deepcopy(draw(edge_values))
        container, key = draw(st.sampled_from(slots))
        if action == "replace":
            container[key] = copy.deepcopy(draw(edge_values))
        elif action == "delete":
            del container[key]
        elif type(container) is dict:
            container[draw(st.text(max_size=4))] = copy.deepcopy(draw(edge_values))
        else:
            container.insert(key, copy.deepcopy(draw(edge_values)))
    return value


@st.composite
def near_valid(draw: st.DrawFn, schema: type[hookline.Schema], target: str) -> dict[str, Any]:
    """Valid data whose ``target`` field is replaced, removed or edited inside."""
    data = draw(valid_dicts(schema))
    action = draw(st.sampled_from(["replace", "inside", "inside", "delete"]))
    if action == "delete":
        data.pop(target, None)
    elif action == "inside" and type(data.get(target)) in (dict, list):
        data[target] = draw(_edited(data[target]))
    else:
        data[target] = copy.deepcopy(draw(edge_values))
    if draw(st.integers(0, 3)) == 0:  # sometimes one more problem, elsewhere
        data[draw(st.sampled_from(list(schema.__fields__)) | st.text(max_size=4))] = (
            copy.deepcopy(draw(edge_values))
        )
    return data


def arbitrary_input(schema: type[hookline.Schema]) -> st.SearchStrategy[Any]:
    """Any JSON value, or an object whose keys are mostly the schema's own."""
    names = st.sampled_from(list(schema.__fields__)) | st.text(max_size=6)
    return st.dictionaries(names, edge_values, max_size=len(schema.__fields__) + 2) | json_values


def _outcome(build: Callable[[Any], Any], data: Any) -> tuple[str, Any]:
    try:
        event = build(data)
    except ValidationError as exc:
        assert exc.errors, "a ValidationError must name at least one bad field"
        return "refused", [(e.path, e.message, repr(e.value)) for e in exc.errors]
    return "accepted", event


def _assert_same_outcome(fast: tuple[str, Any], reference: tuple[str, Any]) -> None:
    assert fast[0] == reference[0], (fast, reference)
    if fast[0] == "refused":
        assert fast[1] == reference[1]
    else:
        assert type(fast[1]) is type(reference[1])
        assert fast[1] == reference[1]
        assert fast[1].to_dict() == reference[1].to_dict()


#: Examples per (schema, field) for near-valid data; arbitrary data gets ARBITRARY_EXAMPLES.
EQUIVALENCE_EXAMPLES = {DefaultEvent: 40, Address: 60, Line: 40, Order: 20, Measures: 40,
                        BoundedNaN: 80, Containers: 50, Loose: 60, Defaults: 40, Checked: 50,
                        Sealed: 50}
ARBITRARY_EXAMPLES = 100


@pytest.mark.parametrize(
    ("schema", "target"),
    [pytest.param(schema, target, id=f"{schema.__name__}-{target}")
     for schema in EQUIVALENCE_EXAMPLES for target in schema.__fields__],
)
def test_generated_code_behaves_exactly_like_the_descriptors(
    schema: type[hookline.Event], target: str
) -> None:
    @settings(BASE, max_examples=EQUIVALENCE_EXAMPLES[schema])
    @given(near_valid(schema, target))
    def check(value: Any) -> None:
        _check_equivalence(schema, value)

    check()


@pytest.mark.parametrize("schema", list(EQUIVALENCE_EXAMPLES), ids=lambda s: s.__name__)
def test_generated_code_behaves_exactly_like_the_descriptors_on_any_data(
    schema: type[hookline.Event],
) -> None:
    @settings(BASE, max_examples=ARBITRARY_EXAMPLES)
    @given(arbitrary_input(schema))
    def check(value: Any) -> None:
        _check_equivalence(schema, value)

    check()


def _check_equivalence(schema: type[hookline.Event], value: Any) -> None:
    reference = _outcome(schema.from_dict_by_descriptors, value)
    _assert_same_outcome(_outcome(schema.from_dict, value), reference)
    if type(value) is dict:
        keywords = {k: v for k, v in value.items() if k in schema.__fields__}
        _assert_same_outcome(
            _outcome(lambda d: schema(**d), keywords),
            _outcome(schema.from_dict_by_descriptors, keywords),
        )


@pytest.mark.parametrize(
    "schema", [s for s in EQUIVALENCE_EXAMPLES if not s.__frozen__], ids=lambda s: s.__name__
)
def test_assignment_accepts_exactly_what_the_fields_problems_accept(
    schema: type[hookline.Event],
) -> None:
    # The third door: __set__ stores a value as it is when the field's compiled rules accept
    # it, else explains it through problems(). Both come from the field's one set of rules.
    @settings(BASE, max_examples=ARBITRARY_EXAMPLES)
    @given(valid_dicts(schema), st.sampled_from(list(schema.__fields__)), edge_values)
    def check(data: dict[str, Any], name: str, value: Any) -> None:
        event = schema.from_dict(data)
        field = schema.__fields__[name]
        expected = [(e.path, e.message, repr(e.value)) for e in field.problems(value, name)]
        try:
            setattr(event, name, value)
        except ValidationError as exc:
            assert [(e.path, e.message, repr(e.value)) for e in exc.errors] == expected
        else:
            assert expected == []
            stored = value if value is None or not field.converts else field.convert(value)
            assert getattr(event, name) == stored or stored != stored

    check()


# -- ISO timestamps ------------------------------------------------------------------------------


class Stamped(hookline.Event):
    at = fields.Timestamp(iso=True)


@settings(BASE, max_examples=1000)
@given(iso_strings)
def test_iso_timestamps_become_the_exact_epoch_milliseconds(text: str) -> None:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert Stamped.from_dict({"at": text}).at == (moment - epoch) // timedelta(milliseconds=1)
