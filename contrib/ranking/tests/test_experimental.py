"""The experiment: ``ranking.freshness`` behind the flag ``ranking.experimental``, for a
stable share of users, reading the events' timestamps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hookline.testing import EventFactory, PipelineFactory, RunReporter

import hookline_ranking
from hookline_ranking import FLAG, load_model, relevance

MINUTE = 60_000


def test_off_by_default_and_on_for_a_stable_half_of_the_users(
        make_pipeline: PipelineFactory, make_event: EventFactory) -> None:
    off = make_pipeline(hookline_ranking)
    assert off.process(make_event()).score_model == "control"
    users = [f"u{i:05d}" for i in range(3000)]
    half = make_pipeline(hookline_ranking, flags={FLAG: "0.5"})
    treated = {u for u in users if half.process(make_event(user_id=u)).score_model == "freshness"}
    assert 0.47 < len(treated) / len(users) < 0.53
    again = make_pipeline(hookline_ranking, flags={FLAG: "0.5"})
    assert treated == {u for u in users
                       if again.process(make_event(user_id=u)).score_model == "freshness"}
    more = make_pipeline(hookline_ranking, flags={FLAG: "0.6"})
    assert treated <= {u for u in users
                       if more.process(make_event(user_id=u)).score_model == "freshness"}


def test_the_freshness_score_reads_the_timestamps(
        make_pipeline: PipelineFactory, make_event: EventFactory,
        model_file: Callable[..., Path]) -> None:
    path = model_file(freshness={"bias": 0.0, "returning": 0.0, "gap": 0.0, "fresh": 2.0})
    model = load_model(path)
    pipeline = make_pipeline(hookline_ranking, settings={"ranking": {"model": str(path)}},
                             flags={FLAG: "on"})
    ts = 1_767_225_600_000
    gaps: list[int | None] = [None, MINUTE, 120 * MINUTE, -5 * MINUTE, 0]
    stamps = [ts, ts + MINUTE, ts + 121 * MINUTE, ts + 116 * MINUTE, ts + 121 * MINUTE]
    history = [0, 0, 0]
    for stamp, gap in zip(stamps, gaps):
        event: Any = pipeline.process(make_event(user_id="u1", kind="view", ts=stamp))
        control = relevance("view", 10.0, [], history, model.control)
        history = [history[0] + 1, 0, history[2] + 1]
        assert event.score_model == "freshness"
        assert event.score == model.freshness.adjust(control, gap)
    # right after an event the score is higher than two hours later (fresh > 0)
    soon = model.freshness.adjust(0.2, MINUTE)
    assert soon > model.freshness.adjust(0.2, 120 * MINUTE) > 0.2


def test_a_run_stores_one_variant_per_user(make_pipeline: PipelineFactory,
                                           make_event: EventFactory,
                                           run_report: RunReporter) -> None:
    events = [make_event(user_id=f"u{i % 40}", kind="purchase" if i % 7 == 0 else "view")
              for i in range(400)]
    result = run_report(make_pipeline(hookline_ranking, flags={FLAG: "0.5"}), events)
    per_user = result.query("SELECT user_id, COUNT(DISTINCT score_model), MIN(score_model), "
                            "MIN(variants) FROM events GROUP BY user_id")
    assert len(per_user) == 40
    assert all(count == 1 for _, count, _, _ in per_user)
    variants = {variant for _, _, variant, _ in per_user}
    assert variants == {"control", "freshness"}
    # hookline's own record of the flagged stages agrees
    assert all((variant == "freshness") == (ran == '["ranking.freshness"]')
               for _, _, variant, ran in per_user)
    assert result.query("SELECT COUNT(*) FROM events WHERE score IS NULL") == [(0,)]
