"""Issue 17's acceptance, end to end with the ``hookline`` command: train on a stored run, run
again with the trained weights and half of the users in the experiment, read the experiment."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Ran, check_readout

from hookline_ranking import load_model, new_history, relevance, remember

EVENTS = 40_000


@pytest.mark.integration
def test_train_then_a_half_experiment_then_its_readout(tmp_path: Path,
                                                       hookline_cli: Callable[..., Ran]) -> None:
    def ok(*args: object) -> Ran:
        ran = hookline_cli(*args)
        assert ran.code == 0, f"hookline {' '.join(map(str, args))}: {ran.err}"
        return ran

    ok("generate", "-n", EVENTS, "--seed", "11", "-o", "first.jsonl")
    ok("run", "first.jsonl", "--db", "first.db")
    trained = ok("ranking", "train", "--db", "first.db", "--out", "model.json")
    assert "held-out AUC: control 0." in trained.out

    (tmp_path / "hookline.toml").write_text('[settings.ranking]\nmodel = "model.json"\n',
                                            encoding="utf-8")
    ok("generate", "-n", EVENTS, "--seed", "12", "-o", "second.jsonl")
    ok("run", "second.jsonl", "--db", "second.db", "--flag", "ranking.experimental=0.5")

    with sqlite3.connect(tmp_path / "second.db") as connection:
        variants = dict(connection.execute(
            "SELECT user_id, group_concat(DISTINCT score_model) FROM events GROUP BY user_id"))
        rows = connection.execute("SELECT user_id, kind, amount, tags, ts, score, score_model "
                                  "FROM events ORDER BY rowid").fetchall()
    assert set(variants.values()) == {"control", "freshness"}  # one variant per user
    share = sum(v == "freshness" for v in variants.values()) / len(variants)
    assert 0.45 < share < 0.55

    # every stored score is the trained model's, computed here from the stored events
    model = load_model(tmp_path / "model.json")
    histories: dict[str, list[int]] = {}
    latest: dict[str, int] = {}
    for user, kind, amount, tags, ts, score, variant in rows:
        history = histories.setdefault(user, new_history())
        expected = relevance(kind, amount, json.loads(tags), history, model.control)
        remember(history, kind)
        if variant == "freshness":
            last = latest.get(user)
            expected = model.freshness.adjust(expected, None if last is None else ts - last)
            latest[user] = ts if last is None else max(last, ts)
        assert score == expected

    printed = ok("ranking", "experiment", "--db", "second.db", "--format", "json")
    hand = check_readout(tmp_path / "second.db", json.loads(printed.out))
    text = ok("ranking", "experiment", "--db", "second.db").out
    for variant in ("control", "freshness"):
        h = hand[variant]
        assert (f"{100 * h['conversion']:.2f} %  [{100 * h['low']:.2f} %, "
                f"{100 * h['high']:.2f} %]") in text
    assert "freshness - control: mean score" in text


@pytest.mark.integration
def test_the_process_executor_scores_as_inline(tmp_path: Path,
                                               hookline_cli: Callable[..., Ran]) -> None:
    """Each user's history lives in one worker: the scores equal an inline run's."""
    assert hookline_cli("generate", "-n", 20_000, "--seed", "5", "-o", "in.jsonl").code == 0
    for name, extra in (("inline", []), ("process", ["--executor", "process", "--workers", 2])):
        ran = hookline_cli("run", "in.jsonl", "--db", f"{name}.db", "--batch-size", 1000,
                           "--flag", "ranking.experimental=0.5", *extra)
        assert ran.code == 0, ran.err
    stored = {}
    for name in ("inline", "process"):
        with sqlite3.connect(tmp_path / f"{name}.db") as connection:
            stored[name] = connection.execute(
                "SELECT event_id, score, score_model FROM events ORDER BY event_id").fetchall()
    assert len(stored["inline"]) > 15_000
    assert stored["process"] == stored["inline"]
