"""The models and their weights file: checked whole when loaded, scores in range, and the
public functions score as the stage does."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookline_ranking import (
    ControlModel,
    FreshnessModel,
    ModelError,
    default_model,
    load_model,
    new_history,
    relevance,
    remember,
)
from hookline_ranking._features import logit, sigmoid

counts = st.integers(min_value=0, max_value=10**9)
histories = st.tuples(counts, counts, counts)
amounts = st.floats(min_value=0, allow_nan=False, allow_infinity=False)
tag_lists = st.lists(st.text(max_size=4), max_size=30)
kinds = st.sampled_from(["purchase", "view", "click", "unknown"]) | st.text(max_size=8)
weights = st.floats(min_value=-50, max_value=50)


@given(kind=kinds, amount=amounts, tags=tag_lists, history=histories)
def test_the_control_score_is_a_probability(kind: str, amount: float, tags: list[str],
                                            history: tuple[int, int, int]) -> None:
    score = relevance(kind, amount, tags, list(history))
    assert 0.0 <= score <= 1.0
    assert score == default_model().control.score(kind, amount, tags, history)


@given(bias=weights, amount=weights, events=weights, value=amounts, history=histories)
def test_no_weights_overflow_the_score(bias: float, amount: float, events: float, value: float,
                                       history: tuple[int, int, int]) -> None:
    model = ControlModel(bias, {}, amount, 0.0, events, 0.0, 0.0)
    assert 0.0 <= model.score("view", value, [], history) <= 1.0


@given(z=st.floats(min_value=-20, max_value=20))
def test_logit_undoes_sigmoid(z: float) -> None:
    # (past |z| = 20, 1 - sigmoid(z) has too few digits left for an exact way back)
    assert math.isclose(logit(sigmoid(z)), z, abs_tol=1e-6)


def test_sigmoid_and_logit_at_the_edges() -> None:
    assert sigmoid(-1e6) == 0.0 and sigmoid(1e6) == 1.0
    assert math.isfinite(logit(0.0)) and math.isfinite(logit(1.0))


def test_history_counts_events_purchases_and_events_since_the_last_purchase() -> None:
    history = new_history()
    for kind in ("view", "click", "purchase", "view", "view"):
        remember(history, kind)
    assert history == [5, 1, 2]
    assert remember([0, 0, 0], "view") == [1, 0, 1]


def test_history_and_kind_weigh_as_the_file_says() -> None:
    model = ControlModel(bias=-1.0, kinds={"purchase": 2.0}, amount=0.0, tags=0.0, events=0.0,
                         purchases=1.0, since_purchase=0.0)
    assert model.logit("purchase", 5.0, [], [0, 0, 0]) == pytest.approx(1.0)
    assert model.logit("view", 5.0, [], [4, 3, 1]) == pytest.approx(-1.0 + math.log1p(3))
    assert relevance("view", 0, [], [4, 3, 1], model) == pytest.approx(sigmoid(
        -1.0 + math.log1p(3)))


def test_freshness_moves_the_control_score_on_the_logit_scale() -> None:
    neutral = FreshnessModel(0.0, 0.0, 0.0, 0.0)
    assert neutral.adjust(0.3, 5_000) == pytest.approx(0.3)
    fresh = FreshnessModel(bias=0.0, returning=0.0, gap=0.0, fresh=1.0)
    assert fresh.adjust(0.3, None) == pytest.approx(0.3)  # no earlier event: no freshness
    just_now = fresh.adjust(0.3, 0)
    assert just_now == pytest.approx(sigmoid(logit(0.3) + 1.0))
    an_hour_later = fresh.adjust(0.3, 3_600_000)
    assert an_hour_later == pytest.approx(sigmoid(logit(0.3) + math.exp(-2)))
    assert fresh.adjust(0.3, -60_000) == just_now  # an earlier timestamp counts as no gap


def test_the_weights_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    default_model().write(path)
    assert load_model(path).as_dict() == default_model().as_dict()
    assert load_model(None) is default_model()


@pytest.mark.parametrize(("changes", "message"), [
    ({"format": "v0"}, "format: must be 'hookline-ranking-model/1' (got 'v0')"),
    ({"control": {"amount": "high"}}, "control.amount: must be a finite number (got 'high')"),
    ({"control": {"kinds": {"view": None}}},
     "control.kinds.view: must be a finite number (got None)"),
    ({"freshness": {"gap": 1e999}}, "freshness.gap: must be a finite number (got inf)"),
    ({"control": {"amout": 1.0}}, "control.amout: unknown key"),
    ({"horizon": 0}, "horizon: must be an integer >= 1 or null (got 0)"),
    ({"control": []}, "control: must be a JSON object (got list [])"),
])
def test_a_bad_weights_file_names_the_file_the_key_and_the_value(
        model_file: Callable[..., Path], changes: dict[str, Any], message: str) -> None:
    path = model_file(**changes)
    with pytest.raises(ModelError) as raised:
        load_model(path)
    assert str(raised.value).startswith(f"model file {path}: {message}")


def test_a_missing_key_and_a_missing_or_broken_file_are_named(tmp_path: Path) -> None:
    data = default_model().as_dict()
    del data["freshness"]["fresh"]
    incomplete = tmp_path / "incomplete.json"
    incomplete.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelError, match=r"incomplete.json: freshness.fresh: missing"):
        load_model(incomplete)
    with pytest.raises(ModelError, match=r"nowhere.json: cannot read it \(No such file"):
        load_model(tmp_path / "nowhere.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(ModelError, match=r"broken.json: not JSON"):
        load_model(broken)
