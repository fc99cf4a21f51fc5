"""What the core gives a plugin that watches a run batch by batch: ``hookline_batch_committed``
after each commit with the run's figures so far, the run's exposition (``Report.prometheus``),
the exit status of a run stopped on an alert, and settings for a plugin made of hook
functions."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _cli_site import Site, opened

import hookline
from hookline.config import Config
from hookline.errors import AlertFailed, BrokenPlugins
from hookline.testing import EventFactory


def _events(folder: Path, kinds: list[str]) -> Path:
    source = folder / "events.jsonl"
    factory = EventFactory()
    source.write_text("".join(json.dumps(factory(kind=kind)) + "\n" for kind in kinds))
    return source


class Refuse(hookline.Stage, phase="validate", name="refuse", abstract=True):
    """Dead-letters the events of kind "bad" (subclassed per test, in its own registry)."""

    def process(self, event: hookline.Event) -> None:
        if event.kind == "bad":
            raise hookline.Reject("bad kind")


class Watcher:
    """Sees each committed batch: the report's counts, the stage figures, the database."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.seen: list[tuple[int, int, int, int]] = []

    @hookline.hookimpl
    def hookline_batch_committed(self, run: Any, report: Any, pipeline: Any) -> None:
        with sqlite3.connect(self.db) as connection:
            stored = connection.execute("SELECT count(*) FROM events").fetchone()[0]
        rejected = pipeline.stats.stages["team.refuse"].rejected
        self.seen.append((report.read, report.dead_lettered, rejected, stored))


def test_batch_committed_sees_each_batch_once_it_is_committed(tmp_path: Path) -> None:
    with hookline.Registry().activate():
        class Team(Refuse, phase="validate", name="refuse"):
            pass

        watcher = Watcher(tmp_path / "out.db")
        config = Config(batch_size=4)
        pipeline = hookline.Pipeline.from_plugins([("team", Team), ("watch", watcher)], config)
        source = _events(tmp_path, ["ok", "bad", "ok", "ok", "ok", "ok", "bad", "bad", "ok"])
        report = hookline.run([str(source)], db=str(watcher.db), config=config,
                              pipeline=pipeline)
    assert watcher.seen == [(4, 1, 1, 3), (8, 3, 3, 5), (9, 3, 3, 6)]
    assert (report.read, report.dead_lettered) == (9, 3)


def test_an_exception_from_it_stops_the_run_after_that_batch(tmp_path: Path) -> None:
    class StopAtTwo:
        @hookline.hookimpl
        def hookline_batch_committed(self, run: Any, report: Any, pipeline: Any) -> None:
            if report.read >= 8:
                raise AlertFailed("dead-letter ratio 50.0% in batch 2", 2)

    config = Config(batch_size=4)
    pipeline = hookline.Pipeline.from_plugins([("stop", StopAtTwo())], config)
    source = _events(tmp_path, ["ok"] * 12)
    with pytest.raises(AlertFailed):
        hookline.run([str(source)], db=str(tmp_path / "out.db"), config=config,
                     pipeline=pipeline)
    with sqlite3.connect(tmp_path / "out.db") as connection:
        assert connection.execute("SELECT count(*) FROM events").fetchone() == (8,)


def test_the_runs_exposition_has_stage_run_and_dead_letter_families(tmp_path: Path) -> None:
    with hookline.Registry().activate():
        class Team(Refuse, phase="validate", name="refuse"):
            pass

        config = Config(sample_every=1)
        pipeline = hookline.Pipeline.from_plugins([("team", Team)], config)
        source = _events(tmp_path, ["ok", "bad", "ok"])
        with source.open("a") as handle:
            handle.write("{not json\n")
        report = hookline.run([str(source)], db=str(tmp_path / "out.db"), config=config,
                              pipeline=pipeline)
    text = report.prometheus(pipeline.stats)
    for line in ('hookline_stage_calls_total{stage="team.refuse"} 3',
                 'hookline_stage_rejected_total{stage="team.refuse"} 1',
                 'hookline_stage_dropped_total{stage="team.refuse"} 0',
                 'hookline_stage_latency_seconds_count{stage="team.refuse"} 2',
                 'hookline_events_total{outcome="accepted"} 2',
                 'hookline_events_total{outcome="dropped"} 0',
                 'hookline_events_total{outcome="dead_lettered"} 2',
                 'hookline_dead_letters_total{reason="bad kind"} 1',
                 'hookline_dead_letters_total{reason="malformed JSON"} 1'):
        assert f"\n{line}\n" in text, line
    assert hookline.Report().prometheus().startswith("# HELP hookline_events_total ")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> Iterator[Site]:
    with opened(tmp_path, monkeypatch, capsys) as site:
        yield site


ALERTING = '''
import hookline
from hookline import fields
from hookline.errors import AlertFailed


class Settings(hookline.Settings):
    stop_after = fields.Integer(minimum=1, default=1)


@hookline.hookimpl
def hookline_batch_committed(run, report, pipeline):
    stop_after = run.config["plugin_settings"].get("alerting", {}).get("stop_after", 1)
    if report.read >= stop_after:
        raise AlertFailed(f"{report.read} events read, stop_after {stop_after}", 1)
'''


def test_a_run_stopped_on_an_alert_exits_with_status_7(site: Site) -> None:
    site.install("alerting", ALERTING)
    site.config("[settings.alerting]\nstop_after = 3\n")
    result = site.hookline("run", str(site.events(10)))
    assert result.code == 7
    assert ("\nhookline run: alert: 10 events read, stop_after 3; the run stopped after "
            "committing batch 1 (fail_on_alert)") in result.err


def test_a_plugin_of_hook_functions_declares_its_settings_beside_them(site: Site) -> None:
    site.install("alerting", ALERTING)
    for table, problem in (({"stop_afte": 3}, "unknown key(s) stop_afte; did you mean "
                            "'stop_after'?"), ({"stop_after": 0}, "stop_after")):
        config = Config(plugins=("alerting",), plugin_settings={"alerting": table})
        with pytest.raises(BrokenPlugins) as refused:
            hookline.Pipeline.from_entry_points(config)
        assert "[settings.alerting]" in str(refused.value) and problem in str(refused.value)
    accepted = Config(plugins=("alerting",), plugin_settings={"alerting": {"stop_after": 5}})
    assert [r.name for r in hookline.Pipeline.from_entry_points(accepted).plugins.loaded()] == [
        "alerting"]
