"""Fault isolation in runs: error policies, the circuit breaker, stateful stages, the CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import hookline
from hookline.cli import main
from hookline.config import Config
from hookline.errors import RunAborted


def _lines(path: Path, count: int, **extra: Any) -> Path:
    path.write_text("".join(
        json.dumps({"event_id": f"e{i}", "user_id": f"u{i % 10}", "kind": "click",
                    "ts": 1_000 + i, **extra}) + "\n" for i in range(count)))
    return path


class Broken(hookline.Stage, phase="enrich", name="broken"):
    def process(self, event: hookline.Event) -> None:
        if int(event.event_id[1:]) % 2:
            raise ValueError("odd ids upset me")
        event.tags = ["enriched"]


def _rows(db: Path, query: str) -> list[Any]:
    with sqlite3.connect(db) as connection:
        return connection.execute(query).fetchall()


def test_skip_plugin_policy_keeps_the_event_and_counts_the_error(tmp_path: Path) -> None:
    config = Config(error_policy={"team": "skip-plugin"})
    pipeline = hookline.Pipeline.from_plugins([("team", Broken)], config)
    report = hookline.run([str(_lines(tmp_path / "in.jsonl", 10))], db=str(tmp_path / "o.db"),
                          pipeline=pipeline, config=config)
    assert (report.accepted, report.dead_lettered) == (10, 0)
    assert report.stage_stats["team.broken"]["skipped_errors"] == 5
    assert _rows(tmp_path / "o.db", "SELECT count(*) FROM events WHERE tags = '[]'") == [(5,)]


def test_fail_run_policy_stops_before_the_batch_and_resumes(tmp_path: Path) -> None:
    source = _lines(tmp_path / "in.jsonl", 10)
    config = Config(error_policy={"team.broken": "fail-run"}, batch_size=1)
    pipeline = hookline.Pipeline.from_plugins([("team", Broken)], config)
    with pytest.raises(RunAborted, match="line 2"):
        hookline.run([str(source)], db=str(tmp_path / "o.db"), pipeline=pipeline, config=config)
    assert _rows(tmp_path / "o.db", "SELECT event_id FROM events") == [("e0",)]


def test_the_breaker_quarantines_a_stage_that_keeps_failing(tmp_path: Path) -> None:
    class Down(hookline.Stage, phase="enrich", name="down"):
        def process(self, event: hookline.Event) -> None:
            raise ConnectionError("service down")

    config = Config(quarantine_after=20, batch_size=50)
    pipeline = hookline.Pipeline.from_plugins([("team", Down)], config)
    report = hookline.run([str(_lines(tmp_path / "in.jsonl", 200))], db=str(tmp_path / "o.db"),
                          pipeline=pipeline, config=config)
    assert report.quarantined == ["team.down"]
    assert (report.dead_lettered, report.accepted) == (50, 150)
    assert report.stage_stats["team.down"]["quarantined"] is True
    assert "QUARANTINED" in report.format()


def test_stateful_stage_decides_the_same_after_a_resume(tmp_path: Path) -> None:
    class Velocity(hookline.Stage, phase="validate", name="velocity"):
        """Reject a user's events after their third."""

        def process(self, event: hookline.Event) -> None:
            seen = self.state.get(event.user_id, 0) + 1
            self.state[event.user_id] = seen
            if seen > 3:
                raise hookline.Reject(f"{event.user_id} is too fast ({seen} events)")

    source = _lines(tmp_path / "in.jsonl", 100)
    config = Config(batch_size=10)

    def pipeline() -> hookline.Pipeline:
        return hookline.Pipeline.from_plugins([("fraud", Velocity)], config)

    whole = hookline.run([str(source)], db=str(tmp_path / "whole.db"), pipeline=pipeline(),
                         config=config)

    class StopSoon:
        def __init__(self) -> None:
            self.calls = 0

        def is_set(self) -> bool:
            self.calls += 1
            return self.calls >= 2

    part = hookline.run([str(source)], db=str(tmp_path / "part.db"), pipeline=pipeline(),
                        config=config, stop=StopSoon())  # type: ignore[arg-type]
    rest = hookline.run([str(source)], db=str(tmp_path / "part.db"), pipeline=pipeline(),
                        config=config)
    assert (part.read, part.accepted + rest.accepted) == (20, whole.accepted) == (20, 30)
    query = "SELECT event_id FROM events ORDER BY event_id"
    assert _rows(tmp_path / "part.db", query) == _rows(tmp_path / "whole.db", query)


def test_cli_exit_codes_and_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOOKLINE_DISABLE_PLUGIN_AUTOLOAD", "1")  # no plugin at all
    source = tmp_path / "in.jsonl"
    source.write_text('{"broken\n' + json.dumps({"event_id": "a", "user_id": "u", "kind": "k",
                                                  "ts": 1}) + "\n")
    assert main(["run", str(source), "--max-dead-letter-ratio", "0.6",
                 "--metrics-file", "m.prom"]) == 0
    assert "hookline_stage_errors_total" in (tmp_path / "m.prom").read_text()
    assert main(["run", str(source), "--db", "two.db", "--max-dead-letter-ratio", "0.4"]) == 3
    assert "over the limit of 40.00%" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.jsonl")]) == 1


def test_runs_and_quarantines_are_logged_with_structured_fields(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Down(hookline.Stage, phase="enrich", name="down_again"):
        def process(self, event: hookline.Event) -> None:
            raise ConnectionError("service down")

    config = Config(quarantine_after=5, batch_size=10)
    pipeline = hookline.Pipeline.from_plugins([("team", Down)], config)
    with caplog.at_level("INFO", logger="hookline.runner"):
        report = hookline.run([str(_lines(tmp_path / "in.jsonl", 30))],
                              db=str(tmp_path / "o.db"), pipeline=pipeline, config=config)
    finished = [r for r in caplog.records if "finished" in r.getMessage()]
    assert finished and finished[0].accepted == report.accepted == 20  # type: ignore[attr-defined]
    warned = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warned[0].stage == "team.down_again"  # type: ignore[attr-defined]
