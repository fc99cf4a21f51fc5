"""The pure functions behind the score: range, monotony, saturation, determinism."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from hookline_ranking import DEFAULT_KIND_WEIGHTS, amount_signal, relevance, tag_signal

amounts = st.floats(min_value=0, allow_nan=False, allow_infinity=False)
tag_lists = st.lists(st.text(max_size=5), max_size=12)
kinds = st.sampled_from([*DEFAULT_KIND_WEIGHTS, "unknown"]) | st.text(max_size=10)


@given(kind=kinds, amount=amounts, tags=tag_lists)
def test_relevance_is_a_rounded_number_in_the_unit_interval(
    kind: str, amount: float, tags: list[str]
) -> None:
    score = relevance(kind, amount, tags)
    assert 0.0 <= score <= 1.0
    assert score == round(score, 6)
    assert relevance(kind, amount, list(tags)) == score


@given(a=amounts, b=amounts)
def test_amount_signal_grows_with_amount(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert 0.0 <= amount_signal(low) <= amount_signal(high) <= 1.0


def test_amount_signal_is_log_scaled_and_saturates() -> None:
    assert amount_signal(0) == 0.0
    assert amount_signal(1000, cap=1000) == 1.0
    assert amount_signal(1e9, cap=1000) == 1.0
    assert math.isclose(amount_signal(math.sqrt(1001) - 1, cap=1000), 0.5)


def test_tag_signal_counts_distinct_tags_up_to_the_cap() -> None:
    assert tag_signal([]) == 0.0
    assert tag_signal(["a", "a", "b"], cap=4) == 0.5
    assert tag_signal([str(i) for i in range(50)], cap=5) == 1.0


def test_kind_weight_dominates() -> None:
    assert relevance("purchase", 0, []) > relevance("view", 10_000, ["a", "b", "c", "d", "e"])
    assert relevance("purchase", 1000, ["a", "b", "c", "d", "e"]) == 1.0
    assert relevance("view", 0, [], kind_weights={"view": 0.0}) == 0.0


def test_unknown_kind_falls_back_to_the_default_weight() -> None:
    assert relevance("new", 0, [], default_weight=0.5) == relevance(
        "x", 0, [], kind_weights={"x": 0.5}
    )
