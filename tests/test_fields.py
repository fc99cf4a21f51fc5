"""Field descriptors: what each field type accepts and refuses, and what the user is told.

Every check goes through the three doors a user has: ``from_dict`` (generated, inlined
checks), the generated keyword ``__init__``, and assignment to an existing event (the
descriptor's ``__set__``). They must agree on the value stored and on the errors.
"""

from __future__ import annotations

import enum
import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import hookline
from hookline import FieldError, ValidationError, fields
from hookline.errors import SchemaError

# -- helpers -----------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def one(field: fields.Field[Any], **others: fields.Field[Any]) -> type[hookline.Event]:
    """A schema with ``field`` as ``x`` (and ``others``), made fresh for each test."""
    return type("One", (hookline.Event,), {"x": field, **others})


def accepts(field: fields.Field[Any], value: Any) -> Any:
    """Store ``value`` through every door; return what is stored (the same for all)."""
    cls = one(field)
    by_dict = cls.from_dict({"x": value}).x
    by_init = cls(x=value).x
    event = cls.from_dict({"x": by_dict})
    event.x = value
    assert same(by_init, by_dict)
    assert same(event.x, by_dict)
    return by_dict


def same(a: Any, b: Any) -> bool:
    """Equal, counting NaN as equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def rejects(field: fields.Field[Any], value: Any) -> list[FieldError]:
    """Every door refuses ``value`` with the same errors; return them."""
    cls = one(field)
    with pytest.raises(ValidationError) as by_dict:
        cls.from_dict({"x": value})
    with pytest.raises(ValidationError) as by_init:
        cls(x=value)
    assert by_init.value.errors == by_dict.value.errors
    return by_dict.value.errors


def rejects_assignment(event: hookline.Event, name: str, value: Any) -> list[FieldError]:
    """Assignment refuses ``value`` and leaves the event as it was."""
    before = event.to_dict()
    with pytest.raises(ValidationError) as caught:
        setattr(event, name, value)
    assert event.to_dict() == before
    return caught.value.errors


def message(field: fields.Field[Any], value: Any) -> str:
    (error,) = rejects(field, value)
    assert error.path == "x"
    assert error.value is value
    return error.message


class Code(str):
    """A str subclass: the strict fields refuse it (no silent acceptance of look-alikes)."""


class Level(enum.IntEnum):
    LOW = 1


# -- String --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "a", "ü€😀", "x" * 1000])
def test_string_accepts_any_str_and_stores_it_unchanged(value: str) -> None:
    assert accepts(fields.String(), value) == value


@pytest.mark.parametrize("value", [1, 1.5, True, b"abc", ["a"], {"a": 1}, Code("abc")])
def test_string_refuses_non_str_and_str_subclasses(value: Any) -> None:
    assert message(fields.String(), value) == "must be a string"


def test_string_length_bounds_are_inclusive_and_named_in_the_message() -> None:
    field = fields.String(min_length=2, max_length=4)
    assert accepts(field, "ab") == "ab"
    assert accepts(field, "abcd") == "abcd"
    assert message(field, "a") == "must have at least 2 characters"
    assert message(field, "abcde") == "must have at most 4 characters"
    assert message(fields.String(min_length=1), "") == "must not be empty"


def test_string_pattern_must_match_the_whole_value() -> None:
    field = fields.String(pattern="[A-Z]{3}")
    assert accepts(field, "EUR") == "EUR"
    for bad in ["eur", "EURO", "EU", " EUR", "EUR\n"]:
        assert message(field, bad) == "must match '[A-Z]{3}'"


def test_string_null_is_refused_and_called_null() -> None:
    assert message(fields.String(), None) == "must be a string, not null"


# -- Number --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, -1, 2**63 - 1, -2**63, 0.5, -0.0, 1e308, 5e-324, 2e80])
def test_number_accepts_ints_and_finite_floats(value: float) -> None:
    stored = accepts(fields.Number(), value)
    assert stored == value
    assert type(stored) is type(value)  # no coercion: an int stays an int


@pytest.mark.parametrize("field", [fields.Number(), fields.Integer(), fields.Timestamp(),
                                   fields.Number(maximum=1e30), fields.Integer(minimum=-2**80)])
@pytest.mark.parametrize("value", [2**63, 2**80, -2**63 - 1])
def test_an_int_that_sqlite_cannot_store_is_refused(field: fields.Field[Any], value: int
                                                    ) -> None:
    if value < 0 and isinstance(field, fields.Timestamp):
        return
    assert "must fit in 64 bits" in message(field, value)


@pytest.mark.parametrize("value", [True, False, "1", None, [1], Level.LOW])
def test_number_refuses_bools_strings_and_int_subclasses(value: Any) -> None:
    assert "must be a number" in message(fields.Number(), value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_number_refuses_nan_and_infinities_unless_allowed(value: float) -> None:
    assert message(fields.Number(), value) == "must be a finite number"
    assert same(accepts(fields.Number(allow_nan=True), value), value)


def test_number_bounds_inclusive_and_exclusive() -> None:
    inclusive = fields.Number(minimum=0, maximum=10)
    assert accepts(inclusive, 0) == 0
    assert accepts(inclusive, 10.0) == 10.0
    assert message(inclusive, -0.001) == "must be ≥ 0"
    assert message(inclusive, 10.5) == "must be ≤ 10"
    exclusive = fields.Number(
        minimum=0, maximum=10, exclusive_minimum=True, exclusive_maximum=True
    )
    assert accepts(exclusive, 0.001) == 0.001
    assert message(exclusive, 0) == "must be > 0"
    assert message(exclusive, 10) == "must be < 10"


def test_number_nan_with_bounds_gets_one_answer_on_every_path() -> None:
    # allow_nan admits NaN as a number, but NaN is neither ≥ 0 nor < 0: the generated
    # from_dict, __init__, assignment and the reference path must still agree on it.
    cls = one(fields.Number(minimum=0, allow_nan=True))
    outcomes = []
    for build in (cls.from_dict, cls.from_dict_by_descriptors, lambda d: cls(**d)):
        try:
            outcomes.append(("accepted", math.isnan(build({"x": math.nan}).x)))
        except ValidationError as exc:
            assert exc.errors, "a ValidationError must name at least one bad field"
            outcomes.append(("refused", [(e.path, e.message) for e in exc.errors]))
    assert outcomes[0] == outcomes[1] == outcomes[2]


# -- Integer -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -5, 2**63 - 1, -2**63])
def test_integer_accepts_ints(value: int) -> None:
    assert accepts(fields.Integer(), value) == value


@pytest.mark.parametrize("value", [1.0, 0.0, True, False, "1", Level.LOW, math.nan])
def test_integer_refuses_floats_even_integral_ones_and_bools(value: Any) -> None:
    assert message(fields.Integer(), value) == "must be an integer"


def test_integer_bounds() -> None:
    field = fields.Integer(minimum=1, maximum=3, exclusive_maximum=True)
    assert accepts(field, 1) == 1
    assert accepts(field, 2) == 2
    assert message(field, 0) == "must be ≥ 1"
    assert message(field, 3) == "must be < 3"


# -- Boolean -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, False])
def test_boolean_accepts_true_and_false(value: bool) -> None:
    assert accepts(fields.Boolean(), value) is value


@pytest.mark.parametrize("value", [0, 1, "true", "false", 1.0])
def test_boolean_refuses_look_alikes(value: Any) -> None:
    assert message(fields.Boolean(), value) == "must be true or false"


# -- Choice --------------------------------------------------------------------------------------


def test_choice_accepts_its_values_and_lists_them_when_refusing() -> None:
    field = fields.Choice(["card", "cash"])
    assert accepts(field, "card") == "card"
    assert message(field, "cheque") == "must be one of 'card', 'cash'"
    assert message(field, Code("card")).startswith("must be one of")


def test_choice_compares_with_the_type_one_is_not_true() -> None:
    numbers = fields.Choice([1, 2])
    assert accepts(numbers, 1) == 1
    for look_alike in [True, 1.0, "1"]:
        assert message(numbers, look_alike).startswith("must be one of")
    flags = fields.Choice([True])
    assert accepts(flags, True) is True
    assert message(flags, 1).startswith("must be one of")
    mixed = fields.Choice([0, "0", False, 1.5])
    for value in [0, "0", False, 1.5]:
        stored = accepts(mixed, value)
        assert type(stored) is type(value)
        assert stored == value
    for bad in [0.0, True, "1.5", None]:
        assert message(mixed, bad).startswith("must be one of")


@pytest.mark.parametrize("values", [[], [[1]], [None], [{"a": 1}], [b"x"]])
def test_choice_declaration_needs_scalar_values(values: list[Any]) -> None:
    with pytest.raises(SchemaError):
        fields.Choice(values)


# -- Timestamp -----------------------------------------------------------------------------------


def test_timestamp_is_positive_epoch_ms_int() -> None:
    field = fields.Timestamp()
    assert accepts(field, 1) == 1
    assert accepts(field, 1_767_225_600_000) == 1_767_225_600_000
    assert message(field, 0) == "must be a positive epoch-ms timestamp"
    assert message(field, -1) == "must be a positive epoch-ms timestamp"
    for bad in [1.5, 1000.0, True, "1767225600000", "2026-01-01T00:00:00Z"]:
        assert message(field, bad) == "must be epoch ms (int > 0)"


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("2026-01-01T00:00:00Z", 1_767_225_600_000),
        ("2026-01-01T00:00:00+00:00", 1_767_225_600_000),
        ("2026-01-01T01:00:00+01:00", 1_767_225_600_000),
        ("2025-12-31T19:00:00-05:00", 1_767_225_600_000),
        ("2026-01-01T00:00:00.250Z", 1_767_225_600_250),
    ],
)
def test_timestamp_iso_accepts_z_and_offsets_and_stores_epoch_ms(text: str, millis: int) -> None:
    assert accepts(fields.Timestamp(iso=True), text) == millis


@pytest.mark.parametrize(
    "text",
    [
        "2004-10-18T04:59:32.524Z",
        "2038-02-04T21:32:50.141+00:00",
        "1974-04-18T19:04:30.371Z",
    ],
)
def test_timestamp_iso_milliseconds_are_exact(text: str) -> None:
    # Through float seconds (timestamp() * 1000) these land one millisecond early.
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    exact = (moment - _EPOCH) // timedelta(milliseconds=1)
    assert accepts(fields.Timestamp(iso=True), text) == exact


@pytest.mark.parametrize(
    "text", ["2026-01-01T00:00:00", "2026-01-01", "yesterday", "", "1970-01-01T00:00:00Z"]
)
def test_timestamp_iso_refuses_naive_unparsable_and_non_positive(text: str) -> None:
    assert message(fields.Timestamp(iso=True), text) == "must be an ISO-8601 timestamp"


def test_timestamp_iso_still_accepts_epoch_ms_and_names_both_forms() -> None:
    field = fields.Timestamp(iso=True)
    assert accepts(field, 5) == 5
    assert message(field, 1.5) == "must be epoch ms (int > 0) or an ISO-8601 string"


# -- List ----------------------------------------------------------------------------------------


def test_list_checks_each_item_and_names_its_index() -> None:
    field = fields.List(fields.String())
    assert accepts(field, ["a", "b"]) == ["a", "b"]
    errors = rejects(field, ["a", "b", 3, "d", None])
    assert [(e.path, e.message, e.value) for e in errors] == [
        ("x[2]", "must be a string", 3),
        ("x[4]", "must be a string, not null", None),
    ]


@pytest.mark.parametrize("value", [("a",), "ab", {"a": 1}, {"a"}])
def test_list_refuses_tuples_strings_and_other_containers(value: Any) -> None:
    assert message(fields.List(fields.String()), value) == "must be a list"


def test_untyped_list_accepts_anything_in_a_list() -> None:
    assert accepts(fields.List(), [1, "a", None, [2]]) == [1, "a", None, [2]]


def test_list_length_bounds() -> None:
    field = fields.List(fields.Integer(), min_length=1, max_length=2)
    assert message(field, []) == "must have at least 1 items"
    assert message(field, [1, 2, 3]) == "must have at most 2 items"


def test_list_of_optional_items_accepts_none_items() -> None:
    assert accepts(fields.List(fields.Integer(optional=True)), [1, None]) == [1, None]


def test_list_of_lists_checks_the_inner_items() -> None:
    errors = rejects(fields.List(fields.List(fields.Integer())), [[1], [2, "3"]])
    assert [(e.path, e.value) for e in errors] == [("x[1][1]", "3")]


def test_list_of_timestamps_converts_each_item() -> None:
    stored = accepts(fields.List(fields.Timestamp(iso=True)), ["2026-01-01T00:00:00Z", 7])
    assert stored == [1_767_225_600_000, 7]


# -- Mapping -------------------------------------------------------------------------------------


def test_mapping_accepts_a_json_object() -> None:
    value = {"a": 1, "b": [None, {"c": "d"}]}
    assert accepts(fields.Mapping(), value) == value


@pytest.mark.parametrize("value", [[("a", 1)], "a", 1])
def test_mapping_refuses_non_objects(value: Any) -> None:
    assert message(fields.Mapping(), value) == "must be an object"


def test_mapping_refuses_non_string_keys() -> None:
    assert message(fields.Mapping(), {1: "a"}) == "keys must be strings, not 1"


def test_mapping_validates_keys_and_values_naming_the_key() -> None:
    field = fields.Mapping(keys=fields.String(pattern="[a-z]+"), values=fields.Integer())
    assert accepts(field, {"a": 1, "bc": 2}) == {"a": 1, "bc": 2}
    errors = rejects(field, {"ok": 1, "Bad": 2, "v": "3"})
    assert [(e.path, e.value) for e in errors] == [("x.Bad<key>", "Bad"), ("x.v", "3")]


def test_mapping_of_lists_checks_the_list_items() -> None:
    errors = rejects(fields.Mapping(values=fields.List(fields.Integer())), {"k": [1, "2"]})
    assert [(e.path, e.value) for e in errors] == [("x.k[1]", "2")]


def at_most_three(value: Any) -> bool:
    return len(value) <= 3


def test_untyped_containers_with_validators_store_valid_values() -> None:
    assert accepts(fields.Mapping(validators=[at_most_three]), {"a": 1}) == {"a": 1}
    assert accepts(fields.List(validators=[at_most_three]), [1, "a"]) == [1, "a"]
    assert message(fields.List(validators=[at_most_three]), [1, 2, 3, 4]) == (
        "failed validator at_most_three"
    )


def test_mapping_assignment_stores_the_new_object() -> None:
    event = hookline.DefaultEvent(event_id="e", user_id="u", kind="k", ts=1)
    event.properties = {"campaign": "spring"}
    assert event.properties == {"campaign": "spring"}
    assert rejects_assignment(event, "properties", ["campaign"])[0].path == "properties"


# -- Nested --------------------------------------------------------------------------------------


class Address(hookline.Event):
    city = fields.String(min_length=1)
    zip = fields.String(pattern=r"[0-9]{5}", optional=True)


def test_nested_builds_the_inner_schema_and_names_inner_paths() -> None:
    cls = one(fields.Nested(Address))
    event = cls.from_dict({"x": {"city": "Lyon"}})
    assert event.x == Address(city="Lyon")
    assert isinstance(event.x, Address)
    assert event.to_dict() == {"x": {"city": "Lyon", "zip": None}}
    with pytest.raises(ValidationError) as caught:
        cls.from_dict({"x": {"city": "", "zip": "1", "street": "Main"}})
    assert caught.value.fields == ["x.city", "x.zip", "x.street"]


def test_nested_accepts_an_instance_and_refuses_other_types() -> None:
    address = Address(city="Lyon")
    assert accepts(fields.Nested(Address), address) is address
    assert message(fields.Nested(Address), ["Lyon"]) == "must be an object (Address)"


def test_nested_assignment_validates_and_converts() -> None:
    cls = one(fields.Nested(Address))
    event = cls(x={"city": "Lyon"})
    event.x = {"city": "Paris", "zip": "75001"}
    assert event.x == Address(city="Paris", zip="75001")
    assert rejects_assignment(event, "x", {"city": 3})[0].path == "x.city"


# -- defaults and optional -----------------------------------------------------------------------


def test_value_default_fills_a_missing_key() -> None:
    cls = one(fields.Integer(), y=fields.Number(default=2.5))
    assert cls.from_dict({"x": 1}).y == 2.5
    assert cls(x=1).y == 2.5


def test_factory_default_gives_each_instance_a_fresh_value() -> None:
    cls = one(fields.Integer(), tags=fields.List(fields.String(), default=list))
    first, second = cls.from_dict({"x": 1}), cls(x=2)
    first.tags.append("a")
    assert second.tags == []
    assert cls.from_dict({"x": 3}).tags == []


def test_a_mutable_default_value_is_not_shared_between_instances() -> None:
    # `default=[]` is an easy mistake; it must either be refused when declared or give each
    # event its own list -- never let one event's append show up in another.
    try:
        cls = one(fields.Integer(), tags=fields.List(fields.String(), default=[]))
    except SchemaError:
        return
    first, second = cls(x=1), cls(x=2)
    first.tags.append("leak")
    assert second.tags == []


def test_converting_fields_convert_their_default_too() -> None:
    cls = one(fields.Timestamp(iso=True, default="2026-01-01T00:00:00Z"))
    assert cls.from_dict({}).x == 1_767_225_600_000
    assert cls().x == 1_767_225_600_000
    nested = one(fields.Nested(Address, default={"city": "Lyon"}))
    assert nested.from_dict({}).x == Address(city="Lyon")


def test_optional_field_accepts_none_and_defaults_to_none() -> None:
    cls = one(fields.String(min_length=1, optional=True))
    assert cls.from_dict({}).x is None
    assert cls().x is None
    assert cls.from_dict({"x": None}).x is None
    assert cls.from_dict({"x": "a"}).x == "a"
    with pytest.raises(ValidationError) as caught:
        cls.from_dict({"x": ""})
    assert caught.value.fields == ["x"]


def test_required_field_missing_is_reported_as_required() -> None:
    cls = one(fields.String())
    with pytest.raises(ValidationError) as caught:
        cls.from_dict({})
    assert [(e.path, e.message) for e in caught.value.errors] == [("x", "is required")]
    with pytest.raises(ValidationError):
        cls()


@pytest.mark.parametrize(
    "declare",
    [
        lambda: fields.Number(minimum=0, default=-1),
        lambda: fields.String(pattern="[A-Z]{3}", default="usd"),
        lambda: fields.Integer(default=1.0),
        lambda: fields.Choice(["a"], default="b"),
        lambda: fields.String(default=None),
        lambda: fields.Timestamp(default=0),
        lambda: fields.Boolean(default=1),
    ],
)
def test_invalid_default_is_a_schema_error_before_the_first_instance(declare: Any) -> None:
    # Declaring compiles nothing (importing a module of schemas stays cheap): the schema
    # checks its defaults when it compiles, so every door refuses before any instance exists.
    cls = type("Bad", (hookline.Event,), {"x": declare()})
    for build in (cls.from_dict, cls.from_dict_by_descriptors, lambda d: cls(**d)):
        with pytest.raises(SchemaError, match=r"default is invalid: Bad\.x: "):
            build({"x": 1})


def test_invalid_default_factory_never_produces_an_invalid_event() -> None:
    # A factory is only known by calling it; either the schema refuses it or every path
    # refuses the event it would produce. A stored "x" in an Integer field is neither.
    cls = one(fields.Integer(default=lambda: "x"))
    for build in (cls.from_dict, cls.from_dict_by_descriptors, lambda d: cls(**d)):
        with pytest.raises((SchemaError, ValidationError)):
            build({})


@pytest.mark.parametrize("bound", [math.inf, -math.inf, math.nan])
def test_an_infinite_bound_is_refused_when_declared(bound: float) -> None:
    with pytest.raises(SchemaError, match="bound must be finite"):
        fields.Number(minimum=bound)
    with pytest.raises(SchemaError, match="bound must be finite"):
        fields.Integer(maximum=bound)


# -- a field of your own -------------------------------------------------------------------------


class Even(fields.Field[int]):
    """A field written the documented way: a plain check(), no rules."""

    kind = "an even integer"

    def check(self, value: Any) -> str | None:
        return None if type(value) is int and value % 2 == 0 else "must be an even integer"


def test_a_field_of_your_own_with_a_plain_check_works_through_every_door() -> None:
    assert accepts(Even(), 4) == 4
    assert message(Even(), 3) == "must be an even integer"
    assert message(Even(), None) == "must be an even integer, not null"
    assert accepts(fields.List(Even()), [2, 4]) == [2, 4]
    assert [e.path for e in rejects(fields.List(Even()), [2, 3])] == ["x[1]"]
    event = one(Even()).from_dict({"x": 2})
    assert rejects_assignment(event, "x", 5)[0].message == "must be an even integer"


# -- validators ----------------------------------------------------------------------------------


def no_spaces(value: str) -> bool:
    return " " not in value


def not_reserved(value: str) -> None:
    if value in {"admin", "root"}:
        raise ValueError(f"{value!r} is reserved")


def test_validator_returning_false_is_named_in_the_message() -> None:
    field = fields.String(validators=[no_spaces])
    assert accepts(field, "ab") == "ab"
    assert message(field, "a b") == "failed validator no_spaces"


def test_validator_raising_valueerror_gives_its_message() -> None:
    field = fields.String(validators=[no_spaces, not_reserved])
    assert message(field, "admin") == "'admin' is reserved"


def test_validators_run_only_after_the_type_check() -> None:
    calls: list[Any] = []

    def record(value: Any) -> bool:
        calls.append(value)
        return True

    assert message(fields.Integer(validators=[record]), "7") == "must be an integer"
    assert calls == []
    assert accepts(fields.Integer(validators=[record]), 7) == 7


def test_validator_errors_in_list_items_name_the_index() -> None:
    field = fields.List(fields.String(validators=[no_spaces]))
    errors = rejects(field, ["a", "b c"])
    assert [(e.path, e.message) for e in errors] == [("x[1]", "failed validator no_spaces")]


# -- assignment ----------------------------------------------------------------------------------


def test_assignment_is_validated_and_a_refused_value_is_not_stored() -> None:
    event = hookline.DefaultEvent(event_id="e", user_id="u", kind="k", ts=1)
    errors = rejects_assignment(event, "amount", -1)
    assert [(e.path, e.message, e.value) for e in errors] == [("amount", "must be ≥ 0", -1)]
    assert rejects_assignment(event, "ts", True)[0].message == "must be epoch ms (int > 0)"
    event.amount = 2.5
    assert event.amount == 2.5


def test_assignment_to_an_unknown_attribute_or_deletion_is_refused() -> None:
    event = hookline.DefaultEvent(event_id="e", user_id="u", kind="k", ts=1)
    with pytest.raises(AttributeError, match="no field 'amout'"):
        event.amout = 3  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        del event.amount


# -- field names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["_secret", "__x", "to_dict", "from_dict", "from_json"])
def test_private_names_and_schema_attribute_names_are_refused(name: str) -> None:
    with pytest.raises(SchemaError, match=repr(name)):
        type("Bad", (hookline.Event,), {name: fields.String()})


@pytest.mark.parametrize("name", ["risk-score", "class", "2fa", "a b"])
def test_a_name_that_is_not_an_identifier_is_refused_when_declared(name: str) -> None:
    # type() and schema.compose accept any string; such a field can never be passed to the
    # generated __init__, so refuse it at class creation rather than at the first event.
    with pytest.raises(SchemaError):
        cls = type("Bad", (hookline.Event,), {name: fields.String()})
        cls.from_dict({name: "x"})


@pytest.mark.parametrize("name", ["data", "errors", "missing", "problems", "len", "all", "cls"])
def test_field_names_that_are_ordinary_words_work_on_every_path(name: str) -> None:
    # The generated code has locals of its own; a field must never collide with them.
    cls = type(
        "Words",
        (hookline.Event,),
        {"label": fields.String(min_length=1), name: fields.Integer(), "n": fields.Number(),
         "counts": fields.Mapping(values=fields.Integer()), "names": fields.List(fields.String())},
    )
    values = {"label": "a", name: 7, "n": 1.5, "counts": {"k": 1}, "names": ["b"]}
    assert cls.from_dict(values).to_dict() == values
    assert cls(**values).to_dict() == values


def test_a_field_named_like_a_loop_of_another_keeps_its_own_value() -> None:
    # The generated code loops over a list's items; the loop must not reuse a field's local.
    cls = type("Lists", (hookline.Event,), {
        "tags_i": fields.String(), "tags": fields.List(fields.String()),
        "props_k": fields.String(), "props": fields.Mapping(values=fields.Integer()),
        "n": fields.Integer(default=0),  # a default: the values are gathered from locals
    })
    values = {"tags_i": "mine", "tags": ["a", "b"], "props_k": "also", "props": {"k": 1}}
    assert cls.from_dict(values).to_dict() == {**values, "n": 0}
    assert cls(**values).to_dict() == {**values, "n": 0}


def test_self_as_a_field_name_is_refused_or_works() -> None:
    try:
        cls = type("Selfish", (hookline.Event,), {"self": fields.Integer()})
    except SchemaError:
        return
    assert cls(**{"self": 1}).to_dict() == {"self": 1}


def test_field_repr_shows_its_options() -> None:
    assert repr(fields.Number(minimum=0, default=0)) == "Number(minimum=0, default=0)"
    assert repr(fields.String(optional=True)) == "String(optional=True)"
