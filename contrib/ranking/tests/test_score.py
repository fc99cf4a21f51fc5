"""The ``ranking.score`` stage and the ``score`` field, through a pipeline."""

from __future__ import annotations

from typing import Any

import hookline
import pytest
from hookline.config import Config
from hookline.errors import PluginError

import hookline_ranking


def make_event(**overrides: Any) -> dict[str, Any]:
    """A valid event of the default schema, with ``overrides`` applied."""
    event: dict[str, Any] = {
        "event_id": "e-1",
        "user_id": "u-1",
        "kind": "purchase",
        "ts": 1_700_000_000_000,
        "amount": 40.0,
        "currency": "USD",
        "tags": ["web", "promo"],
        "properties": {},
    }
    event.update(overrides)
    return event


def with_settings(**settings: Any) -> hookline.Pipeline:
    """A pipeline of the ranking plugin with ``settings`` as its ``[settings.ranking]`` table."""
    config = Config.from_mapping({"settings": {"ranking": settings}})
    return hookline.Pipeline.from_plugins([hookline_ranking], config)


@pytest.fixture
def pipeline() -> hookline.Pipeline:
    return hookline.Pipeline.from_plugins([hookline_ranking])


def score_of(pipeline: hookline.Pipeline, **overrides: Any) -> float:
    score = pipeline.process(make_event(**overrides)).to_dict()["score"]
    assert isinstance(score, float)
    return score


@pytest.mark.parametrize("kind", ["purchase", "view", "click", "refund", "something-new"])
@pytest.mark.parametrize("amount", [0, 0.01, 40.0, 1e6, 1e300])
def test_score_is_in_range(pipeline: hookline.Pipeline, kind: str, amount: float) -> None:
    assert 0.0 <= score_of(pipeline, kind=kind, amount=amount) <= 1.0


def test_purchase_scores_higher_than_view(pipeline: hookline.Pipeline) -> None:
    assert score_of(pipeline, kind="purchase") > score_of(pipeline, kind="view")
    # Even a free purchase beats an expensive-looking view with more tags.
    assert score_of(pipeline, kind="purchase", amount=0, tags=[]) > score_of(
        pipeline, kind="view", amount=0, tags=["a", "b"]
    )


def test_score_is_deterministic_and_rounded(pipeline: hookline.Pipeline) -> None:
    rebuilt = hookline.Pipeline.from_plugins([hookline_ranking])
    scores = {score_of(p, amount=123.456) for p in (pipeline, pipeline, rebuilt)}
    assert len(scores) == 1
    (score,) = scores
    assert score == round(score, 6)


def test_more_amount_and_tags_score_higher(pipeline: hookline.Pipeline) -> None:
    assert score_of(pipeline, amount=500) > score_of(pipeline, amount=5)
    assert score_of(pipeline, tags=["a", "b", "c"]) > score_of(pipeline, tags=["a"])


def test_score_field_is_in_the_schema_and_validated(pipeline: hookline.Pipeline) -> None:
    event: Any = pipeline.process(make_event())
    assert 0 <= event.score <= 1
    with pytest.raises(hookline.ValidationError, match="score"):
        event.score = 1.5
    with pytest.raises(hookline.ValidationError, match="score"):
        pipeline.process(make_event(score="high"))


def test_kind_weights_are_settings() -> None:
    pipeline = with_settings(kind_weights={"purchase": 0.0, "view": 1.0})
    assert score_of(pipeline, kind="view") > score_of(pipeline, kind="purchase")


def test_unknown_kind_uses_default_weight() -> None:
    low, high = with_settings(default_weight=0.0), with_settings(default_weight=1.0)
    assert score_of(high, kind="brand-new") > score_of(low, kind="brand-new")


@pytest.mark.parametrize(
    "settings",
    [
        {"kind_weights": {"purchase": 2}},
        {"default_weight": -0.1},
        {"amount_cap": 0},
        {"tag_cap": 0},
    ],
)
def test_out_of_range_settings_are_refused(settings: dict[str, Any]) -> None:
    (name,) = settings
    with pytest.raises(PluginError, match=f"ranking\\.score.*{name}"):
        with_settings(**settings)
