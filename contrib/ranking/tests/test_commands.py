"""``hookline ranking train`` and ``hookline ranking experiment``, run as a user runs them:
the ``hookline`` command of a process of its own, finding this plugin through its entry point."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Ran, check_readout
from hookline.testing import EventFactory, PipelineFactory, RunReporter

import hookline_ranking
from hookline_ranking import FLAG, load_model, relevance
from hookline_ranking._experiment import newcombe, wilson

Cli = Callable[..., Ran]


@pytest.fixture
def experiment_db(make_pipeline: PipelineFactory, make_event: EventFactory,
                  run_report: RunReporter) -> Path:
    """A run of 60 users, half in the experiment, a third of whom purchase."""
    events = [make_event(user_id=f"u{i % 60}",
                         kind="purchase" if i % 60 % 3 == 0 and i % 4 == 0 else "view")
              for i in range(600)]
    return run_report(make_pipeline(hookline_ranking, flags={FLAG: "0.5"}), events).db


def test_wilson_and_newcombe_match_published_values() -> None:
    # Newcombe (1998), table I and II: 0/10, 5/10 and the difference 56/70 - 48/80
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    p1, p2 = 56 / 70, 48 / 80
    assert newcombe(p1, wilson(56, 70), p2, wilson(48, 80)) == pytest.approx(
        (0.0524, 0.3339), abs=1e-4)


def test_experiment_prints_both_variants_as_computed_by_hand(experiment_db: Path,
                                                             hookline_cli: Cli) -> None:
    ran = hookline_cli("ranking", "experiment", "--db", experiment_db, "--format", "json")
    assert ran.code == 0, ran.err
    hand = check_readout(experiment_db, json.loads(ran.out))
    assert {"control", "freshness", "difference"} <= set(hand)
    text = hookline_cli("ranking", "experiment", "--db", f"sqlite:///{experiment_db}")
    assert text.code == 0, text.err
    for variant in ("control", "freshness"):
        h = hand[variant]
        line = next(line for line in text.out.splitlines() if line.startswith(variant))
        assert line.split()[1:3] == [f"{h['users']:,}", f"{h['events']:,}"]
        assert (f"{100 * h['conversion']:.2f} %  [{100 * h['low']:.2f} %, "
                f"{100 * h['high']:.2f} %]") in line
    d = hand["difference"]
    assert (f"freshness - control: mean score {d['mean_score']:+.6f}, conversion "
            f"{100 * d['conversion']:+.2f} points (95 % CI {100 * d['low']:+.2f} to "
            f"{100 * d['high']:+.2f})") in text.out


def test_experiment_with_one_variant_says_what_is_missing(
        make_pipeline: PipelineFactory, make_event: EventFactory, run_report: RunReporter,
        hookline_cli: Cli) -> None:
    db = run_report(make_pipeline(hookline_ranking), make_event.many(5)).db
    ran = hookline_cli("ranking", "experiment", "--db", db)
    assert ran.code == 0
    assert "needs events of both control and freshness" in ran.out
    assert json.loads(hookline_cli("ranking", "experiment", "--db", db, "--format",
                                   "json").out)["difference"] is None


def test_experiment_refuses_what_it_cannot_read(
        tmp_path: Path, make_pipeline: PipelineFactory, make_event: EventFactory,
        run_report: RunReporter, hookline_cli: Cli) -> None:
    missing = hookline_cli("ranking", "experiment", "--db", tmp_path / "none.db")
    assert missing.code == 1
    assert f"no database at {tmp_path / 'none.db'}" in missing.err
    unranked = run_report(make_pipeline(), make_event.many(3)).db
    ran = hookline_cli("ranking", "experiment", "--db", unranked)
    assert ran.code == 1
    assert "the events table has no score or score_model column" in ran.err
    remote = hookline_cli("ranking", "experiment", "--db", "postgresql://db/events")
    assert remote.code == 1 and "postgresql:// databases are not supported" in remote.err
    assert hookline_cli("ranking").code == 2  # a subcommand is required


def test_the_commands_are_listed_under_hookline(hookline_cli: Cli) -> None:
    listing = " ".join(hookline_cli("--help").out.split())
    assert "ranking the ranking model: train its weights, read its experiment" in listing
    train = hookline_cli("ranking", "train", "--help").out
    assert "--horizon K" in train and "--holdout SHARE" in train and "--out PATH" in train


def test_train_fits_weights_a_run_then_scores_with(tmp_path: Path, hookline_cli: Cli,
                                                   make_pipeline: PipelineFactory) -> None:
    assert hookline_cli("generate", "-n", "4000", "--seed", "3", "-o", "events.jsonl").code == 0
    assert hookline_cli("run", "events.jsonl", "--db", "run.db").code == 0
    ran = hookline_cli("ranking", "train", "--db", "run.db", "--out", "model.json",
                       "--horizon", "5")
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    assert lines[1].startswith("label: a purchase within the next 5 events (")
    assert lines[2].startswith("held-out AUC: control 0.") and ", freshness 0." in lines[2]
    assert lines[3] == "wrote model.json"
    model = load_model(tmp_path / "model.json")
    with sqlite3.connect(tmp_path / "run.db") as connection:
        (stored,) = connection.execute("SELECT COUNT(*) FROM events").fetchone()
    assert model.training["train_events"] + model.training["held_out_events"] == stored
    assert model.horizon == 5
    assert f"{model.training['held_out_auc']['control']:.4f}" in lines[2]
    trained = make_pipeline(hookline_ranking,
                            settings={"ranking": {"model": str(tmp_path / "model.json")}})
    event = {"event_id": "e1", "user_id": "new", "kind": "view", "ts": 1, "amount": 3.0}
    assert trained.process(event).score == relevance("view", 3.0, [], None, model.control)


def test_train_refuses_events_without_both_labels(
        tmp_path: Path, make_pipeline: PipelineFactory, make_event: EventFactory,
        run_report: RunReporter, hookline_cli: Cli) -> None:
    views = [make_event(user_id=f"u{i % 20}", kind="view") for i in range(200)]
    db = run_report(make_pipeline(hookline_ranking), views).db
    ran = hookline_cli("ranking", "train", "--db", db, "--out", tmp_path / "m.json")
    assert ran.code == 1
    assert "every training event has the same label (no purchase within the next 10 " \
           "events)" in ran.err
    assert not (tmp_path / "m.json").exists()
    assert hookline_cli("ranking", "train", "--db", db, "--out", "m.json",
                        "--holdout", "1.5").code == 2
