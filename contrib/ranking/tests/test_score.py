"""The ``ranking.score`` stage and the ``score`` field, through a pipeline.

Events come from hookline's pytest plugin (the ``make_event`` fixture)."""

from __future__ import annotations

from typing import Any

import hookline
import pytest
from hookline.config import Config
from hookline.errors import PluginError
from hookline.testing import EventFactory

import hookline_ranking


def with_settings(**settings: Any) -> hookline.Pipeline:
    """A pipeline of the ranking plugin with ``settings`` as its ``[settings.ranking]`` table."""
    config = Config.from_mapping({"settings": {"ranking": settings}})
    return hookline.Pipeline.from_plugins([hookline_ranking], config)


@pytest.fixture
def pipeline() -> hookline.Pipeline:
    return hookline.Pipeline.from_plugins([hookline_ranking])


def score_of(pipeline: hookline.Pipeline, event: dict[str, Any]) -> float:
    score = pipeline.process(event).to_dict()["score"]
    assert isinstance(score, float)
    return score


@pytest.mark.parametrize("kind", ["purchase", "view", "click", "refund", "something-new"])
@pytest.mark.parametrize("amount", [0, 0.01, 40.0, 1e6, 1e300])
def test_score_is_in_range(
    pipeline: hookline.Pipeline, make_event: EventFactory, kind: str, amount: float
) -> None:
    assert 0.0 <= score_of(pipeline, make_event(kind=kind, amount=amount)) <= 1.0


def test_purchase_scores_higher_than_view(
    pipeline: hookline.Pipeline, make_event: EventFactory
) -> None:
    assert score_of(pipeline, make_event(kind="purchase")) > score_of(
        pipeline, make_event(kind="view")
    )
    # Even a free purchase beats an expensive-looking view with more tags.
    assert score_of(pipeline, make_event(kind="purchase", amount=0, tags=[])) > score_of(
        pipeline, make_event(kind="view", amount=0, tags=["a", "b"])
    )


def test_score_is_deterministic_and_rounded(
    pipeline: hookline.Pipeline, make_event: EventFactory
) -> None:
    rebuilt = hookline.Pipeline.from_plugins([hookline_ranking])
    data = make_event(amount=123.456, tags=["web", "promo"])
    scores = {score_of(p, dict(data)) for p in (pipeline, pipeline, rebuilt)}
    assert len(scores) == 1
    (score,) = scores
    assert score == round(score, 6)


def test_more_amount_and_tags_score_higher(
    pipeline: hookline.Pipeline, make_event: EventFactory
) -> None:
    assert score_of(pipeline, make_event(amount=500)) > score_of(pipeline, make_event(amount=5))
    assert score_of(pipeline, make_event(tags=["a", "b", "c"])) > score_of(
        pipeline, make_event(tags=["a"])
    )


def test_score_field_is_in_the_schema_and_validated(
    pipeline: hookline.Pipeline, make_event: EventFactory
) -> None:
    event: Any = pipeline.process(make_event())
    assert 0 <= event.score <= 1
    with pytest.raises(hookline.ValidationError, match="score"):
        event.score = 1.5
    with pytest.raises(hookline.ValidationError, match="score"):
        pipeline.process(make_event(score="high"))


def test_kind_weights_are_settings(make_event: EventFactory) -> None:
    pipeline = with_settings(kind_weights={"purchase": 0.0, "view": 1.0})
    assert score_of(pipeline, make_event(kind="view")) > score_of(
        pipeline, make_event(kind="purchase")
    )


def test_unknown_kind_uses_default_weight(make_event: EventFactory) -> None:
    low, high = with_settings(default_weight=0.0), with_settings(default_weight=1.0)
    assert score_of(high, make_event(kind="brand-new")) > score_of(
        low, make_event(kind="brand-new")
    )


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
