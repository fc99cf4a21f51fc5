"""The flagged experiment: off by default, on for a stable share of users when rolled out."""

from __future__ import annotations

from typing import Any

import hookline
import pytest
from hookline.testing import PipelineFactory

import hookline_ranking


@pytest.fixture
def pipeline_with(make_pipeline: PipelineFactory) -> Any:
    """A ranking pipeline with these flag values, in a flag set of its own."""

    def build(**flags: Any) -> hookline.Pipeline:
        return make_pipeline(("ranking", hookline_ranking), flags=flags)

    return build


def _event(user: str) -> dict[str, Any]:
    return {"event_id": f"e-{user}", "user_id": user, "kind": "purchase", "ts": 1,
            "amount": 10.0, "tags": ["sale"]}


def test_off_by_default_and_on_for_a_stable_quarter_of_users(pipeline_with: Any) -> None:
    off = pipeline_with()
    assert off.process(_event("u1")).variants == []
    rollout = pipeline_with(**{"ranking.experimental": "0.25"})
    users = [f"u{i:05d}" for i in range(4000)]
    boosted = {u for u in users if rollout.process(_event(u)).variants == ["ranking.freshness"]}
    assert 0.23 < len(boosted) / len(users) < 0.27
    again = pipeline_with(**{"ranking.experimental": "0.25"})
    assert boosted == {u for u in users if again.process(_event(u)).variants}


def test_the_boost_raises_the_score(pipeline_with: Any) -> None:
    base = pipeline_with().process(_event("u1")).score
    boosted = pipeline_with(**{"ranking.experimental": "on"}).process(_event("u1")).score
    assert boosted == min(1.0, round(base + 0.1, 6))
