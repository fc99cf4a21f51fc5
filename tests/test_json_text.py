"""hookline._json: the same text as json.dumps, and the same errors, call after call."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookline._json import encoder

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=20)
FORMS = [{}, {"separators": (",", ":"), "ensure_ascii": False}]


@pytest.mark.parametrize("options", FORMS)
@given(value=values)
def test_the_text_is_what_json_dumps_gives(options: dict[str, Any], value: Any) -> None:
    assert encoder(**options)(value) == json.dumps(value, **options)


def test_after_a_failure_the_same_containers_encode_again() -> None:
    dumps = encoder(separators=(",", ":"))
    inner: list[Any] = [1, 2]
    outer = {"a": inner, "b": object()}
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps(outer)  # fails inside outer, with outer and inner being encoded
    del outer["b"]
    assert dumps(outer) == '{"a":[1,2]}'  # not refused as a circular reference
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="Circular reference"):
        dumps(cycle)
    assert dumps([inner, inner]) == "[[1,2],[1,2]]"


def test_default_turns_other_objects_into_json() -> None:
    dumps = encoder(default=lambda value: sorted(value))
    assert dumps({"tags": {"b", "a"}}) == json.dumps({"tags": ["a", "b"]})
