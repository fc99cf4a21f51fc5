"""The plugin in whole runs: alerts through ``hookline_alert``, ``fail_on_alert``, ``/metrics``
while the run goes on, and the report's section.

Each run writes batches of ten events whose kinds are chosen per batch, so that which batch
breaches which threshold is known in advance.
"""

from __future__ import annotations

import sqlite3
import sys
import urllib.request
from pathlib import Path
from typing import Any

import hookline
import pytest
from _support import Pager, free_port, samples
from hookline.config import Config
from hookline.errors import AlertFailed, ConfigError
from hookline.testing import EventFactory, PipelineFactory, RunReporter

import hookline_monitoring

#: Per batch of ten events, how many are refused by the gate ("bad"): 0 %, 50 %, 50 %, 0 %,
#: then 50 % again. With a limit of 20 %, the dead-letter ratio breaches in batches 2 and 5.
BAD_PER_BATCH = [0, 5, 5, 0, 5]


def events(make_event: EventFactory) -> list[dict[str, Any]]:
    return [make_event(user_id=f"u{n % 4}", kind="bad" if n < bad else "purchase")
            for bad in BAD_PER_BATCH for n in range(10)]


def monitored(make_pipeline: PipelineFactory, gate: Any, *others: Any, **settings: Any
              ) -> hookline.Pipeline:
    """A pipeline of the monitoring plugin, the gate and ``others``, in batches of ten, every
    stage call timed (so the figures do not depend on sampling)."""
    return make_pipeline(hookline_monitoring, ("gate", gate), *others,
                         settings={"monitoring": {"tracing": False, **settings}},
                         config=Config(batch_size=10, sample_every=1))


def test_an_alert_fires_once_per_breach_into_hookline_alert(
        make_pipeline: PipelineFactory, make_event: EventFactory, run_report: RunReporter,
        gate: Any, caplog: pytest.LogCaptureFixture) -> None:
    pager = Pager()
    pipeline = monitored(make_pipeline, gate, ("pager", pager), max_dead_letter_ratio=0.2)
    caplog.set_level("WARNING", logger="hookline.monitoring")

    result = run_report(pipeline, events(make_event))

    assert [(alert.name, alert.batch, alert.value, alert.threshold) for alert in pager.alerts] == [
        ("max_dead_letter_ratio", 2, 0.5, 0.2), ("max_dead_letter_ratio", 5, 0.5, 0.2)]
    assert {alert.run_id for alert in pager.alerts} == {result.report.run_id}
    message = ("dead-letter ratio 50.0% in batch 2 (5 of 10 events), over max_dead_letter_ratio "
               "20.0%")
    assert pager.alerts[0].message == message
    assert [record.getMessage() for record in caplog.records] == [
        f"alert: {alert.message}" for alert in pager.alerts]
    section = result.report.sections["monitoring"]
    assert section["batches"] == 5
    assert section["alerts"] == [alert.message for alert in pager.alerts]
    assert "[monitoring]" in result.report.format()


def test_fail_on_alert_stops_the_run_after_committing_the_batch(
        make_pipeline: PipelineFactory, make_event: EventFactory, run_report: RunReporter,
        gate: Any, tmp_path: Path) -> None:
    pager = Pager()
    pipeline = monitored(make_pipeline, gate, ("pager", pager), max_dead_letter_ratio=0.2,
                         fail_on_alert=True)
    db = tmp_path / "stopped.db"
    with pytest.raises(AlertFailed) as stopped:
        run_report(pipeline, events(make_event), db=db)
    assert stopped.value.batch == 2
    assert "dead-letter ratio 50.0% in batch 2" in str(stopped.value)
    assert len(pager.alerts) == 1  # hookline_alert was called before the run stopped
    with sqlite3.connect(db) as connection:  # batches 1 and 2 are committed, no more
        assert connection.execute("SELECT count(*) FROM events").fetchone() == (15,)
        assert connection.execute("SELECT count(*) FROM dead_letters").fetchone() == (5,)


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        text: str = response.read().decode("utf-8")
        return text


class Scraper:
    """Reads ``/metrics`` after each batch, once the monitoring plugin has published it (its
    implementation runs last), with the report's counts at that moment."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.scrapes: list[tuple[dict[str, float], tuple[int, int, int]]] = []

    @hookline.hookimpl(trylast=True)
    def hookline_batch_committed(self, run: Any, report: Any, pipeline: Any) -> None:
        counts = (report.accepted, report.dropped, report.dead_lettered)
        self.scrapes.append((samples(_scrape(self.url)), counts))


def test_metrics_during_the_run_carry_the_stage_series_and_end_at_the_reports_totals(
        make_pipeline: PipelineFactory, make_event: EventFactory, run_report: RunReporter,
        gate: Any) -> None:
    port = free_port()
    scraper = Scraper(f"http://127.0.0.1:{port}/metrics")
    pipeline = monitored(make_pipeline, gate, ("scraper", scraper), prometheus_port=port,
                         max_dead_letter_ratio=0.2)
    lines = [*events(make_event), make_event(kind="noise"), make_event(kind="boom"), "{oops"]

    report = run_report(pipeline, lines).report

    assert len(scraper.scrapes) == 6
    for scraped, (accepted, dropped, dead) in scraper.scrapes:  # each batch's own figures
        assert scraped['hookline_events_total{outcome="accepted"}'] == accepted
        assert scraped['hookline_events_total{outcome="dropped"}'] == dropped
        assert scraped['hookline_events_total{outcome="dead_lettered"}'] == dead
        for series in ("calls_total", "errors_total", "rejected_total", "dropped_total",
                       "latency_seconds_count"):
            assert f'hookline_stage_{series}{{stage="gate.check"}}' in scraped
    last, _ = scraper.scrapes[-1]
    stages = report.stage_stats
    for name in ("gate.check", "gate.slow"):
        assert last[f'hookline_stage_calls_total{{stage="{name}"}}'] == stages[name]["calls"]
        assert last[f'hookline_stage_errors_total{{stage="{name}"}}'] == stages[name]["errors"]
        assert (last[f'hookline_stage_rejected_total{{stage="{name}"}}']
                == stages[name]["rejected"])
        assert last[f'hookline_stage_dropped_total{{stage="{name}"}}'] == stages[name]["dropped"]
    assert stages["gate.check"]["errors"] == 1 and stages["gate.check"]["dropped"] == 1
    assert (last['hookline_events_total{outcome="accepted"}'],
            last['hookline_events_total{outcome="dropped"}'],
            last['hookline_events_total{outcome="dead_lettered"}']) == (
        report.accepted, report.dropped, report.dead_lettered)
    assert {key: value for key, value in last.items()
            if key.startswith("hookline_dead_letters_total")} == {
        f'hookline_dead_letters_total{{reason="{reason}"}}': count
        for reason, count in report.reasons.items()}
    assert last['hookline_monitoring_alerts_total{alert="max_dead_letter_ratio"}'] == 2
    section = report.sections["monitoring"]
    for phase in ("validate", "enrich"):  # each phase's counts, and hookline's own timings
        for figure in ("events", "errors", "rejected", "dropped"):
            assert (last[f'hookline_monitoring_phase_{figure}_total{{phase="{phase}"}}']
                    == section[phase][figure])
        assert (last[f'hookline_phase_latency_seconds_count{{phase="{phase}"}}']
                == section[phase]["timed"])
    assert section["validate"]["events"] == report.read - 1  # "{oops" never reached it
    assert not any("phase=\"score\"" in key for key in last)  # no stage: not run
    # the run is over: so is the endpoint, and its port is free again
    with pytest.raises(OSError):
        _scrape(scraper.url)
    assert report.sections["monitoring"]["prometheus"] == (
        f"served http://127.0.0.1:{port}/metrics during the run")


class Crash:
    """Another plugin whose batch hook fails: the run stops without ``hookline_run_end``."""

    @hookline.hookimpl(trylast=True)
    def hookline_batch_committed(self, run: Any, report: Any, pipeline: Any) -> None:
        raise RuntimeError("the disk of the audit log is full")


def test_the_next_run_closes_what_a_run_stopped_by_an_error_left_open(
        make_pipeline: PipelineFactory, make_event: EventFactory, run_report: RunReporter,
        gate: Any) -> None:
    port = free_port()
    crashing = monitored(make_pipeline, gate, ("crash", Crash()), prometheus_port=port)
    with pytest.raises(RuntimeError):
        run_report(crashing, events(make_event))
    assert 'hookline_events_total{outcome="accepted"} 10' in _scrape(
        f"http://127.0.0.1:{port}/metrics")  # still served: the run did not end normally
    report = run_report(monitored(make_pipeline, gate, prometheus_port=port),
                        events(make_event)).report
    assert report.sections["monitoring"]["prometheus"] == (
        f"served http://127.0.0.1:{port}/metrics during the run")


def test_a_port_in_use_stops_the_run_before_its_first_batch(
        make_pipeline: PipelineFactory, make_event: EventFactory, run_report: RunReporter,
        gate: Any) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        pipeline = monitored(make_pipeline, gate, prometheus_port=port)
        with pytest.raises(ConfigError) as refused:
            run_report(pipeline, events(make_event))
    assert f"[settings.monitoring] prometheus_port = {port}: cannot serve /metrics" in str(
        refused.value)


def test_without_the_sdk_there_is_no_tracing(
        make_pipeline: PipelineFactory, make_event: EventFactory, run_report: RunReporter,
        gate: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in sys.modules if name.startswith("opentelemetry")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # import opentelemetry fails
    pipeline = monitored(make_pipeline, gate, tracing=True)
    report = run_report(pipeline, events(make_event)).report
    assert report.sections["monitoring"]["tracing"] == "off: opentelemetry-sdk is not installed"
    assert report.accepted == 35
