"""Schemas: building events, their errors, the generated code, copies, subclasses, compose."""

from __future__ import annotations

import copy
import inspect
import linecache
import pickle
import subprocess
import sys
import traceback
from typing import Any

import pytest

import hookline
from hookline import DefaultEvent, ValidationError, fields
from hookline._schema import compose
from hookline.errors import FrozenInstanceError, InputError, SchemaError


def valid(**overrides: Any) -> dict[str, Any]:
    return {"event_id": "e1", "user_id": "u1", "kind": "purchase", "ts": 1_767_225_600_000,
            **overrides}


def failure(cls: type[hookline.Event], data: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        cls.from_dict(data)
    return caught.value


# Module-level schemas, so that their instances pickle by reference.


class Address(hookline.Event):
    city = fields.String(min_length=1)
    zip = fields.String(pattern="[0-9]{5}", optional=True)


class Customer(hookline.Event):
    name = fields.String(min_length=1)
    address = fields.Nested(Address)
    previous = fields.List(fields.Nested(Address), default=list)
    placed = fields.Timestamp(iso=True, optional=True)


class Frozen(hookline.Event, frozen=True):
    name = fields.String()
    tags = fields.List(fields.String(), default=list)


class Loose(hookline.Event, extra="properties"):
    kind = fields.String()
    count = fields.Integer(default=0)
    properties = fields.Mapping(default=dict)


class Purchase(DefaultEvent):
    sku = fields.String(min_length=1)
    quantity = fields.Integer(minimum=1, default=1)


# -- building and round trips --------------------------------------------------------------------


def test_from_dict_fills_defaults_and_round_trips_through_to_dict() -> None:
    event = DefaultEvent.from_dict(valid())
    assert event.to_dict() == {
        **valid(), "amount": 0, "currency": "USD", "tags": [], "properties": {},
    }
    assert DefaultEvent.from_dict(event.to_dict()) == event


def test_init_takes_keywords_and_equals_from_dict() -> None:
    data = valid(amount=12.5, tags=["a"], properties={"k": [1, {"n": None}]})
    assert DefaultEvent(**data) == DefaultEvent.from_dict(data)
    with pytest.raises(TypeError):
        DefaultEvent("e1", "u1", "purchase", 1)  # type: ignore[call-arg]


def test_json_round_trip() -> None:
    event = DefaultEvent.from_dict(valid(amount=3.25, tags=["ü"], properties={"x": [1, 2.5]}))
    text = event.to_json()
    assert DefaultEvent.from_json(text) == event
    assert DefaultEvent.from_json(text.encode()) == event
    assert "ü" in text  # not escaped


def test_from_json_errors_are_input_errors_or_validation_errors() -> None:
    with pytest.raises(InputError, match="malformed JSON"):
        DefaultEvent.from_json('{"event_id": ')
    with pytest.raises(ValidationError) as caught:
        DefaultEvent.from_json("[1, 2]")
    assert [(e.path, e.message) for e in caught.value.errors] == [("$", "must be an object")]


def test_non_dict_data_is_one_error_at_the_root() -> None:
    for data in [None, [], "event", 3, (("event_id", "e"),)]:
        assert failure(DefaultEvent, data).fields == ["$"]


def test_to_dict_is_a_copy_that_cannot_change_the_event() -> None:
    event = Customer.from_dict({"name": "n", "address": {"city": "Lyon"}, "previous": []})
    data = event.to_dict()
    assert data["address"] == {"city": "Lyon", "zip": None}
    data["previous"].append({"city": "x"})
    data["address"]["city"] = ""
    assert event.previous == []
    assert event.address.city == "Lyon"


def test_nested_round_trip_and_iso_conversion() -> None:
    event = Customer.from_dict({
        "name": "n", "address": {"city": "Lyon"}, "previous": [{"city": "Paris", "zip": "75001"}],
        "placed": "2026-01-01T00:00:00Z",
    })
    assert event.previous[0] == Address(city="Paris", zip="75001")
    assert event.placed == 1_767_225_600_000
    assert Customer.from_dict(event.to_dict()) == event
    assert Customer.from_json(event.to_json()) == event


# -- equality and repr ---------------------------------------------------------------------------


def test_equality_is_by_class_and_values() -> None:
    assert DefaultEvent.from_dict(valid()) == DefaultEvent.from_dict(valid())
    assert DefaultEvent.from_dict(valid()) != DefaultEvent.from_dict(valid(amount=1))
    assert DefaultEvent.from_dict(valid()) != valid()
    # A subclass with the same values is another kind of event.
    purchase = Purchase.from_dict(valid(sku="s"))
    assert purchase != DefaultEvent.from_dict(valid())
    with pytest.raises(TypeError):
        hash(purchase)  # mutable events are not hashable


def test_repr_shows_the_class_and_every_field_in_schema_order() -> None:
    event = DefaultEvent.from_dict(valid(tags=["a"]))
    assert repr(event) == (
        "DefaultEvent(event_id='e1', user_id='u1', kind='purchase', ts=1767225600000, "
        "amount=0, currency='USD', tags=['a'], properties={})"
    )


# -- frozen --------------------------------------------------------------------------------------


def test_frozen_refuses_assignment_but_builds_normally() -> None:
    event = Frozen.from_dict({"name": "a"})
    assert Frozen(name="a") == event
    with pytest.raises(FrozenInstanceError, match="frozen"):
        event.name = "b"
    with pytest.raises(AttributeError):  # FrozenInstanceError is an AttributeError
        event.tags = []
    assert event.name == "a"
    assert pickle.loads(pickle.dumps(event)) == event


def test_frozen_schema_has_a_working_reference_path() -> None:
    assert Frozen.from_dict_by_descriptors({"name": "a"}) == Frozen.from_dict({"name": "a"})


def test_extra_mode_must_be_known() -> None:
    with pytest.raises(SchemaError, match="extra"):
        type("Bad", (hookline.Event,), {}, extra="allow")


# -- unknown keys --------------------------------------------------------------------------------


def test_unknown_key_is_refused_by_default_and_named() -> None:
    error = failure(DefaultEvent, valid(amout=3))
    assert [(e.path, e.message, e.value) for e in error.errors] == [
        ("amout", "is not a field of the schema", 3),
    ]
    assert "amout" in str(error)


def test_a_non_string_key_is_reported_alike_by_the_generated_and_reference_paths() -> None:
    data: dict[Any, Any] = {**valid(), 7: "x"}
    with pytest.raises(ValidationError) as reference:
        DefaultEvent.from_dict_by_descriptors(data)
    fast = failure(DefaultEvent, data)
    assert [(e.path, e.message) for e in fast.errors] == [
        (e.path, e.message) for e in reference.value.errors
    ]


def test_extra_properties_keeps_unknown_keys_under_properties() -> None:
    event = Loose.from_dict({"kind": "k", "count": 2, "properties": {"a": 1}, "campaign": "x"})
    assert event.properties == {"a": 1, "campaign": "x"}
    assert event.to_dict() == {"kind": "k", "count": 2, "properties": {"a": 1, "campaign": "x"}}
    assert not hasattr(event, "campaign")


def test_extra_properties_without_a_properties_key() -> None:
    event = Loose.from_dict({"kind": "k", "campaign": "x", "n": [1]})
    assert event.properties == {"campaign": "x", "n": [1]}
    assert event.count == 0


def test_extra_properties_still_reports_bad_fields() -> None:
    error = failure(Loose, {"kind": 1, "campaign": "x"})
    assert error.fields == ["kind"]


# -- every bad field at once ---------------------------------------------------------------------


def test_every_bad_field_is_reported_in_schema_order_then_unknown_keys() -> None:
    data = {"zzz": 1, "tags": ["ok", 7], "amount": -1, "ts": 0, "kind": "",
            "event_id": "e", "aaa": None}
    error = failure(DefaultEvent, data)
    assert error.fields == ["user_id", "kind", "ts", "amount", "tags[1]", "zzz", "aaa"]
    assert [e.message for e in error.errors] == [
        "is required", "must not be empty", "must be a positive epoch-ms timestamp",
        "must be ≥ 0", "must be a string", "is not a field of the schema",
        "is not a field of the schema",
    ]
    assert error.schema == "DefaultEvent"


def test_init_reports_every_bad_keyword_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        DefaultEvent(event_id="", user_id="u", kind="k", ts=-5, currency="usd")
    assert caught.value.fields == ["event_id", "ts", "currency"]


def test_error_message_names_schema_field_and_value() -> None:
    error = failure(DefaultEvent, valid(amount=-2.5, currency="euro"))
    text = str(error)
    assert text.startswith("invalid DefaultEvent, 2 bad fields: ")
    assert "amount: must be ≥ 0 (got -2.5)" in text
    assert "currency: must match '[A-Z]{3}' (got 'euro')" in text


def test_error_message_truncates_huge_values() -> None:
    huge = "x" * 100_000
    error = failure(DefaultEvent, valid(user_id=huge))
    text = str(error)
    assert len(text) < 300
    assert "user_id: must have at most 256 characters" in text
    assert "(100002 chars)" in text
    assert error.errors[0].value is huge  # the error still carries the whole value
    assert len(repr(error.errors[0])) < 200


def test_at_names_the_input_line_and_keeps_the_errors() -> None:
    error = failure(DefaultEvent, valid(ts="now"))
    located = error.at(line=42, source="events.jsonl")
    assert str(located).startswith("events.jsonl, line 42: invalid DefaultEvent, 1 bad field")
    assert located.errors == error.errors
    assert error.line is None  # the original is unchanged
    assert str(error.at(line=3, source=None)).startswith("input, line 3: ")


def test_validation_error_pickles_with_its_location() -> None:
    located = failure(DefaultEvent, valid(ts="now", bogus=1)).at(line=7, source="in.jsonl")
    clone = pickle.loads(pickle.dumps(located))
    assert clone.errors == located.errors
    assert str(clone) == str(located)
    missing = pickle.loads(pickle.dumps(failure(DefaultEvent, {})))
    assert missing.errors == failure(DefaultEvent, {}).errors
    assert missing.errors[0].value is fields.MISSING  # the marker stays the one marker


def test_validation_error_is_a_value_error() -> None:
    # Callers that catch ValueError around parsing keep working.
    with pytest.raises(ValueError):
        DefaultEvent.from_dict({})


# -- the generated code --------------------------------------------------------------------------


def test_generated_code_is_readable_by_inspect_and_linecache() -> None:
    DefaultEvent.from_dict(valid())  # compiled on first use
    source = inspect.getsource(DefaultEvent.from_dict)
    assert source.startswith("def from_dict(data):")
    assert "amount" in source
    filename = DefaultEvent.from_dict.__code__.co_filename
    assert filename.startswith("<hookline generated from_dict hookline._schema.DefaultEvent")
    assert linecache.getlines(filename)
    assert DefaultEvent.from_dict.__qualname__ == "DefaultEvent.from_dict"
    init = DefaultEvent.__init__
    assert init.__code__.co_filename.startswith(
        "<hookline generated __init__ hookline._schema.DefaultEvent"
    )
    assert inspect.getsource(init).startswith("def __init__(")
    assert init.__qualname__ == "DefaultEvent.__init__"


class Broken(Exception):
    pass


def explode(value: Any) -> bool:
    raise Broken("validator bug")


class Fragile(hookline.Event):
    name = fields.String(validators=[explode])


def test_tracebacks_through_generated_code_show_its_source() -> None:
    with pytest.raises(Broken) as caught:
        Fragile.from_dict({"name": "x"})
    text = "".join(traceback.format_exception(caught.value))
    assert f"<hookline generated from_dict {__name__}.Fragile #" in text
    assert "_f_name.problems(v_name, 'name')" in text  # the generated line itself


def test_importing_and_declaring_schemas_compiles_nothing() -> None:
    # Code generation waits for the first instance: `import hookline` and a module that
    # declares schemas (defaults included) stay cheap to import.
    code = (
        "import sys, hookline\n"
        "from hookline import fields\n"
        "class Click(hookline.Event):\n"
        "    n = fields.Integer(minimum=0, default=0)\n"
        "print('hookline._codegen' in sys.modules)\n"
        "Click.from_dict({})\n"
        "print('hookline._codegen' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()
    assert out == ["False", "True"]


def test_each_class_gets_its_own_generated_filename() -> None:
    first = type("Same", (hookline.Event,), {"a": fields.Integer()})
    second = type("Same", (hookline.Event,), {"b": fields.String()})
    first.from_dict({"a": 1})
    second.from_dict({"b": "x"})
    one = first.from_dict.__code__.co_filename
    two = second.from_dict.__code__.co_filename
    assert one != two
    assert "a" in "".join(linecache.getlines(one))
    assert "v_b" in "".join(linecache.getlines(two))


def test_reads_are_plain_instance_attributes_and_assignment_is_still_validated() -> None:
    event = DefaultEvent.from_dict(valid())
    for name in DefaultEvent.__fields__:
        assert name not in vars(DefaultEvent)
        assert vars(event)[name] is getattr(event, name)
    assert isinstance(DefaultEvent.__fields__["amount"], fields.Number)
    with pytest.raises(ValidationError):
        event.amount = -1
    assert event.amount == 0


# -- copies and pickles --------------------------------------------------------------------------


def test_pickle_round_trip() -> None:
    for event in [
        DefaultEvent.from_dict(valid(tags=["a"], properties={"k": {"n": [1]}})),
        Customer.from_dict({"name": "n", "address": {"city": "Lyon"}, "placed": 5}),
        Purchase.from_dict(valid(sku="s", quantity=3)),
    ]:
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            clone = pickle.loads(pickle.dumps(event, protocol))
            assert clone == event
            assert type(clone) is type(event)


def test_copy_and_deepcopy() -> None:
    event = DefaultEvent.from_dict(valid(tags=["a"]))
    shallow = copy.copy(event)
    assert shallow == event
    shallow.amount = 5
    assert event.amount == 0
    deep = copy.deepcopy(event)
    deep.tags.append("b")
    assert event.tags == ["a"]
    assert deep != event


# -- subclasses ----------------------------------------------------------------------------------


def test_subclass_inherits_and_extends_fields_in_order() -> None:
    assert list(Purchase.__fields__) == [*DefaultEvent.__fields__, "sku", "quantity"]
    event = Purchase.from_dict(valid(sku="s"))
    assert event.quantity == 1
    assert event.currency == "USD"
    assert failure(Purchase, valid()).fields == ["sku"]
    # The base is unchanged: the new field is unknown to it.
    assert failure(DefaultEvent, valid(sku="s")).fields == ["sku"]


def test_subclass_may_tighten_a_base_field_in_place() -> None:
    class Strict(DefaultEvent):
        amount = fields.Number(minimum=1, default=1)

    assert list(Strict.__fields__) == list(DefaultEvent.__fields__)
    assert failure(Strict, valid(amount=0.5)).fields == ["amount"]
    assert DefaultEvent.from_dict(valid(amount=0.5)).amount == 0.5


# -- compose -------------------------------------------------------------------------------------


def test_compose_adds_plugin_fields() -> None:
    event_class = compose(DefaultEvent, {
        "fraud": {"risk": fields.Number(minimum=0, maximum=1, default=0)},
        "ranking": {"score": fields.Number(optional=True)},
    })
    assert issubclass(event_class, DefaultEvent)
    assert list(event_class.__fields__)[-2:] == ["risk", "score"]
    event = event_class.from_dict(valid(risk=0.5))
    assert (event.risk, event.score) == (0.5, None)
    with pytest.raises(ValidationError) as caught:
        event.risk = 2
    assert caught.value.fields == ["risk"]
    with pytest.raises(ValidationError):
        event_class.from_dict(valid(risk="high"))


def test_compose_without_contributions_is_the_base() -> None:
    assert compose(DefaultEvent, {}) is DefaultEvent
    assert compose(DefaultEvent, {"quiet": {}}) is DefaultEvent


def test_compose_accepts_the_same_field_declared_identically_by_two_plugins() -> None:
    event_class = compose(DefaultEvent, {
        "fraud": {"country": fields.String(pattern="[A-Z]{2}", optional=True)},
        "geo": {"country": fields.String(pattern="[A-Z]{2}", optional=True)},
    })
    assert event_class.from_dict(valid(country="FR")).country == "FR"


def test_compose_refuses_a_field_declared_differently_naming_both_plugins() -> None:
    with pytest.raises(SchemaError) as caught:
        compose(DefaultEvent, {
            "fraud": {"country": fields.String(pattern="[A-Z]{2}")},
            "geo": {"country": fields.String(pattern="[A-Z]{3}")},
        })
    text = str(caught.value)
    assert "'country'" in text
    assert "'fraud'" in text
    assert "'geo'" in text


def test_compose_refuses_redeclaring_a_base_field_differently() -> None:
    with pytest.raises(SchemaError) as caught:
        compose(DefaultEvent, {"fraud": {"amount": fields.Number()}})
    text = str(caught.value)
    assert "'fraud'" in text
    assert "'amount'" in text
    assert "DefaultEvent" in text
    # Redeclaring it identically is harmless.
    same = compose(DefaultEvent, {"fraud": {"amount": fields.Number(minimum=0, default=0)}})
    assert same.from_dict(valid()).amount == 0


def test_compose_refuses_something_that_is_not_a_field() -> None:
    with pytest.raises(SchemaError, match="'fraud'.*'risk'"):
        compose(DefaultEvent, {"fraud": {"risk": float}})  # type: ignore[dict-item]


def test_compose_gives_each_class_its_own_field_objects() -> None:
    shared = fields.Number(minimum=0, default=0)
    first = compose(DefaultEvent, {"fraud": {"risk": shared}}, name="First")
    second = compose(DefaultEvent, {"fraud": {"risk": shared}}, name="Second")
    assert first.__fields__["risk"] is not second.__fields__["risk"]
    event = second.from_dict(valid())
    with pytest.raises(ValidationError) as caught:
        event.risk = -1
    assert caught.value.schema == "Second"
