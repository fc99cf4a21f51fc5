"""The flagged experiment: off by default, on for a stable share of users when rolled out."""

from __future__ import annotations

from typing import Any

import hookline
from hookline.config import Config
from hookline.flags import Flags
from hookline.loader import load_objects

import hookline_ranking


def _pipeline(**flags: Any) -> hookline.Pipeline:
    config = Config(cli_flags=flags)
    plugins = load_objects([("ranking", hookline_ranking)], config)
    return hookline.Pipeline(plugins, config, flags=Flags())


def _event(user: str) -> dict[str, Any]:
    return {"event_id": f"e-{user}", "user_id": user, "kind": "purchase", "ts": 1,
            "amount": 10.0, "tags": ["sale"]}


def test_off_by_default_and_on_for_a_stable_quarter_of_users() -> None:
    off = _pipeline()
    assert off.process(_event("u1")).variants == []
    rollout = _pipeline(**{"ranking.experimental": "0.25"})
    users = [f"u{i:05d}" for i in range(4000)]
    boosted = {u for u in users if rollout.process(_event(u)).variants == ["ranking.freshness"]}
    assert 0.23 < len(boosted) / len(users) < 0.27
    again = _pipeline(**{"ranking.experimental": "0.25"})
    assert boosted == {u for u in users if again.process(_event(u)).variants}


def test_the_boost_raises_the_score() -> None:
    base = _pipeline().process(_event("u1")).score
    boosted = _pipeline(**{"ranking.experimental": "on"}).process(_event("u1")).score
    assert boosted == min(1.0, round(base + 0.1, 6))
