"""The runner: nothing lost, counts that add up, exactly-once writes, resumable runs."""

from __future__ import annotations

import gc
import gzip
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import hookline
from hookline._generate import write_jsonl
from hookline.config import Config
from hookline.testing import database_content


class BlockXTS(hookline.Stage, phase="validate", name="block_xts"):
    def process(self, event: hookline.Event) -> None:
        if event.currency == "XTS":
            raise hookline.Reject("currency XTS is blocked")
        if event.kind == "signup":
            raise hookline.Drop()


class Flaky(hookline.Stage, phase="enrich", name="flaky"):
    def process(self, event: hookline.Event) -> None:
        if event.user_id.endswith("7"):
            raise RuntimeError("lookup service down")


def _pipeline(*stages: type[hookline.Stage]) -> hookline.Pipeline:
    return hookline.Pipeline.from_plugins([("team", s) for s in stages])


def _rows(db: Path, query: str) -> list[Any]:
    with sqlite3.connect(db) as connection:
        return connection.execute(query).fetchall()


def test_every_line_ends_exactly_once_and_counts_add_up(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    stats = write_jsonl(source, 5000, invalid_rate=0.1, seed=3)
    db = tmp_path / "out.db"
    report = hookline.run([str(source)], db=str(db), pipeline=_pipeline(BlockXTS, Flaky),
                          config=Config(batch_size=700))
    assert report.read == 5000
    assert report.accepted + report.dropped + report.dead_lettered == 5000
    assert report.dropped > 0 and report.accepted > 0
    assert _rows(db, "SELECT count(*) FROM events")[0][0] == report.accepted
    dead = _rows(db, "SELECT line, stage, reason, plugin, error FROM dead_letters")
    assert len(dead) == report.dead_lettered
    # each input line is in exactly one place
    accepted_lines = report.accepted + report.dropped
    assert len({line for line, *_ in dead}) == len(dead)
    assert accepted_lines + len(dead) == 5000
    stages = {stage for _, stage, *_ in dead}
    assert {"schema", "team.block_xts", "team.flaky"} <= stages
    assert sum(1 for _, stage, *_ in dead if stage in ("schema", "parse")) == stats.invalid
    flaky = next(row for row in dead if row[1] == "team.flaky")
    assert flaky[2] == "team.flaky raised RuntimeError: lookup service down"
    assert flaky[3] == "team" and "RuntimeError" in flaky[4]
    schema = next(row for row in dead if row[1] == "schema")
    assert f"line {schema[0]}" in schema[2]


def test_aggregates_match_the_events_table(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    write_jsonl(source, 3000, invalid_rate=0.05, seed=5)
    db = tmp_path / "out.db"
    hookline.run([str(source)], db=str(db), pipeline=_pipeline(), config=Config(batch_size=500))
    expected = _rows(db, "SELECT kind, count(*), sum(amount), min(amount), max(amount) "
                         "FROM events GROUP BY kind ORDER BY kind")
    got = _rows(db, "SELECT kind, count, amount_sum, amount_min, amount_max FROM agg_by_kind "
                    "ORDER BY kind")
    assert [(k, c, round(s, 6), lo, hi) for k, c, s, lo, hi in got] == [
        (k, c, round(s, 6), lo, hi) for k, c, s, lo, hi in expected]


def test_rerunning_the_same_input_adds_nothing_and_appends_are_resumed(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    write_jsonl(source, 2000, invalid_rate=0.05, seed=1)
    db = tmp_path / "out.db"
    first = hookline.run([str(source)], db=str(db), pipeline=_pipeline(),
                         config=Config(batch_size=300))
    before = database_content(db)
    again = hookline.run([str(source)], db=str(db), pipeline=_pipeline())
    assert again.read == 0
    assert database_content(db) == before
    extra = [json.dumps({"event_id": f"new-{i}", "user_id": "u1", "kind": "click", "ts": 5})
             for i in range(10)]
    with open(source, "a") as handle:
        handle.write("\n".join(extra) + "\n")
    appended = hookline.run([str(source)], db=str(db), pipeline=_pipeline())
    assert (appended.read, appended.accepted) == (10, 10)
    assert first.accepted + 10 == _rows(db, "SELECT count(*) FROM events")[0][0]


def test_an_interrupted_run_resumes_to_the_same_database(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    write_jsonl(source, 3000, invalid_rate=0.1, seed=9)
    whole, parts = tmp_path / "whole.db", tmp_path / "parts.db"
    hookline.run([str(source)], db=str(whole), pipeline=_pipeline(BlockXTS),
                 config=Config(batch_size=250))

    class StopAfter:
        """A stop request that arrives after a few batches, like SIGTERM would."""

        def __init__(self, batches: int) -> None:
            self.left = batches

        def is_set(self) -> bool:
            self.left -= 1
            return self.left < 0

    first = hookline.run([str(source)], db=str(parts), pipeline=_pipeline(BlockXTS),
                         config=Config(batch_size=250), stop=StopAfter(3))  # type: ignore[arg-type]
    assert first.interrupted and first.read == 1000
    rest = hookline.run([str(source)], db=str(parts), pipeline=_pipeline(BlockXTS),
                        config=Config(batch_size=250))
    assert first.read + rest.read == 3000
    assert database_content(parts) == database_content(whole)


def test_duplicate_event_ids_are_counted_not_inserted(tmp_path: Path) -> None:
    line = {"event_id": "same", "user_id": "u1", "kind": "click", "ts": 5}
    source = tmp_path / "dupes.jsonl"
    source.write_text("\n".join(json.dumps(line) for _ in range(3)) + "\n")
    db = tmp_path / "out.db"
    report = hookline.run([str(source)], db=str(db), pipeline=_pipeline())
    assert (report.accepted, report.duplicates, report.dead_lettered) == (1, 2, 0)
    assert _rows(db, "SELECT count(*) FROM events") == [(1,)]
    assert _rows(db, "SELECT count(*) FROM dead_letters") == [(0,)]


def test_duplicates_can_still_be_dead_lettered(tmp_path: Path) -> None:
    line = {"event_id": "same", "user_id": "u1", "kind": "click", "ts": 5}
    source = tmp_path / "dupes.jsonl"
    source.write_text("\n".join(json.dumps(line) for _ in range(3)) + "\n")
    db = tmp_path / "out.db"
    report = hookline.run([str(source)], db=str(db), pipeline=_pipeline(),
                          duplicates="dead-letter")
    assert (report.accepted, report.duplicates, report.dead_lettered) == (1, 2, 0)
    assert report.stages["dedupe"] == 2 and report.balanced
    assert _rows(db, "SELECT DISTINCT reason FROM dead_letters") == [
        ("duplicate event_id 'same'",)]


def test_gzip_glob_and_broken_lines(tmp_path: Path) -> None:
    good = {"event_id": "g1", "user_id": "u1", "kind": "click", "ts": 5}
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as handle:
        handle.write(json.dumps(good) + "\n\n{\"event_id\": \"broken\n")
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(b'{"event_id": "g2", "user_id": '
                                                         b'"u1", "kind": "view", "ts": 9}'))
    db = tmp_path / "out.db"
    report = hookline.run([str(tmp_path / "*.jsonl.gz")], db=str(db), pipeline=_pipeline())
    assert (report.read, report.accepted, report.dead_lettered) == (3, 2, 1)
    assert _rows(db, "SELECT line, stage FROM dead_letters") == [(3, "parse")]


def test_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.jsonl"):
        hookline.run([str(tmp_path / "nothing.jsonl")], db=str(tmp_path / "x.db"),
                     pipeline=_pipeline())


def test_the_jsonl_sink_holds_each_accepted_event_once_across_a_resume(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    write_jsonl(source, 1000, invalid_rate=0.1, seed=4)
    out, db = tmp_path / "accepted.jsonl", tmp_path / "out.db"

    class StopAfterTwo:
        calls = 0

        def is_set(self) -> bool:
            self.calls += 1
            return self.calls >= 2

    hookline.run([str(source)], db=str(db), pipeline=_pipeline(), config=Config(batch_size=100),
                 jsonl=str(out), stop=StopAfterTwo())  # type: ignore[arg-type]
    with open(out, "a") as handle:  # a batch written by a run that died before its commit
        handle.write('{"event_id": "uncommitted"}\n')
    report = hookline.run([str(source)], db=str(db), pipeline=_pipeline(),
                          config=Config(batch_size=100), jsonl=str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    ids = [line["event_id"] for line in lines]
    assert len(ids) == len(set(ids)) == _rows(db, "SELECT count(*) FROM events")[0][0]
    assert "uncommitted" not in ids and report.read > 0


def test_a_row_turns_back_into_the_events_json_line() -> None:
    """The JSONL sink writes each accepted event from its row: the same text as dumping
    ``event.to_dict()`` compactly, lists and mappings included, non-ASCII kept."""
    from hookline._sinks.sqlite import Rows

    rows = Rows(hookline.DefaultEvent)
    for event in (
        hookline.DefaultEvent.from_dict({"event_id": "é1", "user_id": "u", "kind": "view",
                                         "ts": 5, "tags": ["a", "ü"],
                                         "properties": {"k": [1, {"n": None}]}}),
        hookline.DefaultEvent.from_dict({"event_id": "e2", "user_id": "u", "kind": "buy",
                                         "ts": 6, "amount": 2.5}),
    ):
        expected = json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=False)
        assert rows.json_line(rows(event)) == expected


class _Collector(hookline.Stage, phase="validate", name="collector"):
    """Notes the collector's settings the stages run under; fails on ``user_id`` u13."""

    seen: list[tuple[int, bool]] = []

    def process(self, event: hookline.Event) -> None:
        _Collector.seen.append((gc.get_threshold()[0], gc.get_freeze_count() > 0))
        if event.user_id == "u13":
            raise RuntimeError("down")


@pytest.mark.parametrize("policy", ["dead-letter", "fail-run"])
def test_a_run_tunes_the_garbage_collector_and_gives_it_back(tmp_path: Path,
                                                             policy: str) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps({"event_id": f"e{n}", "user_id": f"u{n}",
                                          "kind": "view", "ts": n + 1}) + "\n"
                              for n in range(20)))
    before = gc.get_threshold(), gc.get_freeze_count()
    _Collector.seen.clear()
    config = Config(error_policy={"team.collector": policy})
    run = lambda: hookline.run([str(source)], db=str(tmp_path / f"{policy}.db"),  # noqa: E731
                               pipeline=hookline.Pipeline.from_plugins(
                                   [("team", _Collector)], config), config=config)
    if policy == "fail-run":
        with pytest.raises(hookline.errors.RunAborted):
            run()
    else:
        assert run().dead_lettered == 1
    assert set(_Collector.seen) == {(10_000, True)}  # fewer passes, startup objects frozen
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
