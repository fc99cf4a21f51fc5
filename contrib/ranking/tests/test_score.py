"""``ranking.score``: the control model over the event and the user's history in state,
through real pipelines and runs (fixtures of hookline's pytest plugin)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import hookline
import pytest
from hookline.errors import PluginError
from hookline.testing import EventFactory, PipelineFactory, RunReporter

import hookline_ranking
from hookline_ranking import load_model, new_history, relevance, remember

KINDS = ["view", "click", "purchase", "view", "add_to_cart", "purchase", "refund", "view"]


def by_hand(events: list[dict[str, Any]], model: Any = None) -> list[float]:
    """The control scores of ``events`` computed with the public functions, in order."""
    histories: dict[str, list[int]] = {}
    scores = []
    for e in events:
        history = histories.setdefault(e["user_id"], new_history())
        scores.append(relevance(e["kind"], e["amount"], e["tags"], history, model))
        remember(history, e["kind"])
    return scores


def mixed(make_event: EventFactory, users: int = 3) -> list[dict[str, Any]]:
    return [make_event(user_id=f"u{i % users}", kind=kind, amount=float(i * 7 % 50),
                       tags=["sale"] * (i % 3))
            for i, kind in enumerate(KINDS * 3)]


def test_every_event_gets_the_control_score_of_its_users_history(
        make_pipeline: PipelineFactory, make_event: EventFactory) -> None:
    pipeline = make_pipeline(hookline_ranking)
    events = mixed(make_event)
    scored = [pipeline.process(dict(e)) for e in events]
    assert [e.score for e in scored] == by_hand(events)
    assert {e.score_model for e in scored} == {"control"}
    assert all(0 <= e.score <= 1 for e in scored)


def test_the_history_changes_the_score(make_pipeline: PipelineFactory,
                                       make_event: EventFactory) -> None:
    pipeline = make_pipeline(hookline_ranking)
    first = pipeline.process(make_event(user_id="u1", kind="view"))
    for _ in range(5):
        pipeline.process(make_event(user_id="u1", kind="purchase"))
    later = pipeline.process(make_event(user_id="u1", kind="view"))
    stranger = pipeline.process(make_event(user_id="u2", kind="view"))
    assert later.score != first.score
    assert stranger.score == first.score  # each user has a history of their own


def test_the_model_file_is_a_setting(make_pipeline: PipelineFactory, make_event: EventFactory,
                                     model_file: Callable[..., Path]) -> None:
    path = model_file(control={"kinds": {"view": 5.0, "purchase": -5.0}})
    pipeline = make_pipeline(hookline_ranking, settings={"ranking": {"model": str(path)}})
    view = pipeline.process(make_event(user_id="a", kind="view"))
    purchase = pipeline.process(make_event(user_id="b", kind="purchase"))
    assert view.score > 0.9 > 0.1 > purchase.score
    assert view.score == relevance("view", 10.0, [], None, load_model(path).control)


def test_a_bad_model_file_stops_the_pipeline_naming_the_stage_and_the_file(
        make_pipeline: PipelineFactory, model_file: Callable[..., Path], tmp_path: Path) -> None:
    bad = model_file(control={"bias": "x"})
    with pytest.raises(PluginError, match=r"ranking\.(score|freshness) .*cannot start: model "
                                          r"file .*control\.bias: must be a finite number"):
        make_pipeline(hookline_ranking, settings={"ranking": {"model": str(bad)}})
    with pytest.raises(PluginError, match=r"model file .*absent\.json: cannot read it"):
        make_pipeline(hookline_ranking,
                      settings={"ranking": {"model": str(tmp_path / "absent.json")}})
    with pytest.raises(PluginError, match="modle"):
        make_pipeline(hookline_ranking, settings={"ranking": {"modle": "x.json"}})


def test_the_fields_are_validated(make_pipeline: PipelineFactory,
                                  make_event: EventFactory) -> None:
    event: Any = make_pipeline(hookline_ranking).process(make_event())
    with pytest.raises(hookline.ValidationError, match="score"):
        event.score = 1.5
    with pytest.raises(hookline.ValidationError, match="score_model"):
        event.score_model = "champion"


def test_an_input_cannot_choose_its_score_or_variant(make_pipeline: PipelineFactory,
                                                     make_event: EventFactory) -> None:
    pipeline = make_pipeline(hookline_ranking)
    forged = pipeline.process(make_event(score=1.0, score_model="freshness"))
    assert forged.score_model == "control"
    assert forged.score == relevance("purchase", 10.0, [], None)


def test_the_history_holds_across_batches_and_runs(
        make_pipeline: PipelineFactory, make_event: EventFactory,
        run_report: RunReporter) -> None:
    events = mixed(make_event)
    first = run_report(make_pipeline(hookline_ranking, config=hookline.config.Config(
        batch_size=4)), events[:10])
    second = run_report(make_pipeline(hookline_ranking), events[10:], db=first.db)
    stored = second.query("SELECT score, score_model FROM events ORDER BY rowid")
    assert [score for score, _ in stored] == by_hand(events)
    assert {variant for _, variant in stored} == {"control"}
    state = dict(second.query("SELECT key, value FROM stage_state "
                              "WHERE stage = 'ranking.score'"))
    histories: dict[str, list[int]] = {}
    for e in events:
        remember(histories.setdefault(e["user_id"], new_history()), e["kind"])
    assert {user: f"{history}" for user, history in histories.items()} == state
