"""``hookline run`` with the plugin, as a platform team runs it: ``/metrics`` scraped while
the run goes on, spans sent by the SDK configured from its environment variables, and the
exit status of a run stopped on an alert."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from _support import free_port, samples
from hookline.testing import EventFactory

pytestmark = pytest.mark.integration

#: The exit status of a run stopped on an alert (docs/cli.md).
EXIT_ALERT = 7


def configure(folder: Path, **settings: Any) -> None:
    """A hookline.toml selecting the monitoring and gate plugins, in batches of 20."""
    table = "\n".join(f"{key} = {json.dumps(value)}" for key, value in settings.items())
    (folder / "hookline.toml").write_text(
        'plugins = ["monitoring", "gate"]\nbatch_size = 20\n\n'
        f"[settings.monitoring]\n{table}\n", encoding="utf-8")


def write_events(folder: Path, events: list[dict[str, Any]]) -> Path:
    source = folder / "events.jsonl"
    source.write_text("".join(json.dumps(event) + "\n" for event in events), encoding="utf-8")
    return source


def hookline(folder: Path, *args: str, env: dict[str, str] | None = None
             ) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "hookline.cli", *args], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def test_metrics_are_served_during_the_run_and_end_at_the_reports_totals(
        site: Path, make_event: EventFactory, tmp_path: Path) -> None:
    port = free_port()
    configure(tmp_path, prometheus_port=port, tracing=False)
    events = [make_event(user_id=f"u{n % 5}", kind="bad" if n % 9 == 0 else "purchase",
                         properties={"sleep": 0.01}) for n in range(200)]  # 2 s or more
    write_events(tmp_path, events)
    running = hookline(tmp_path, "run", "events.jsonl", "--format", "json",
                       "--metrics-file", "end.prom")
    scrapes = []
    while running.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                        timeout=10) as response:
                scrapes.append(samples(response.read().decode("utf-8")))
        except (urllib.error.URLError, ConnectionError):
            pass  # not serving yet, or any more
        time.sleep(0.05)
    out, err = running.communicate(timeout=60)
    assert running.returncode == 0, err

    report = json.loads(out)
    during = [scrape for scrape in scrapes
              if 0 < scrape.get('hookline_events_total{outcome="accepted"}', 0) < 177]
    assert during, f"no scrape while the run went on ({len(scrapes)} scrapes)"
    for series in ("calls_total", "errors_total", "rejected_total", "latency_seconds_count"):
        assert f'hookline_stage_{series}{{stage="gate.check"}}' in during[0]
    accepted = [scrape.get('hookline_events_total{outcome="accepted"}', 0) for scrape in scrapes]
    assert accepted == sorted(accepted)  # counters only grow
    end = samples((tmp_path / "end.prom").read_text(encoding="utf-8"))
    assert (end['hookline_events_total{outcome="accepted"}'],
            end['hookline_events_total{outcome="dead_lettered"}']) == (
        report["accepted"], report["dead_lettered"]) == (177, 23)
    check = report["stages"]["gate.check"]
    assert end['hookline_stage_rejected_total{stage="gate.check"}'] == check["rejected"] == 23
    assert end['hookline_stage_calls_total{stage="gate.check"}'] == check["calls"]
    assert end['hookline_dead_letters_total{reason="bad kind"}'] == 23
    assert scrapes[-1]['hookline_events_total{outcome="accepted"}'] <= 177
    assert report["sections"]["monitoring"]["prometheus"] == (
        f"served http://127.0.0.1:{port}/metrics during the run")


def test_fail_on_alert_exits_with_its_own_status_after_committing_the_batch(
        site: Path, make_event: EventFactory, tmp_path: Path) -> None:
    configure(tmp_path, max_dead_letter_ratio=0.25, fail_on_alert=True, tracing=False)
    kinds = ["purchase"] * 40 + ["bad"] * 10 + ["purchase"] * 10 + ["purchase"] * 40
    write_events(tmp_path, [make_event(kind=kind) for kind in kinds])  # batch 3: 50 % bad

    stopped = hookline(tmp_path, "run", "events.jsonl", "--db", "out.db")
    _, err = stopped.communicate(timeout=120)

    assert stopped.returncode == EXIT_ALERT, err
    assert "hookline run: alert: dead-letter ratio 50.0% in batch 3 (10 of 20 events), over " \
           "max_dead_letter_ratio 25.0%; the run stopped after committing batch 3" in err
    with sqlite3.connect(tmp_path / "out.db") as connection:
        assert connection.execute("SELECT count(*) FROM events").fetchone() == (50,)
    again = hookline(tmp_path, "run", "events.jsonl", "--db", "out.db")
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err  # resumed after batch 3: the rest is clean
    with sqlite3.connect(tmp_path / "out.db") as connection:
        assert connection.execute("SELECT count(*) FROM events").fetchone() == (90,)


def json_objects(text: str) -> list[Any]:
    """Every JSON value printed in ``text``, one after the other (the console exporter prints
    each span as an indented object; the report follows)."""
    decoder, index = json.JSONDecoder(), 0
    found: list[Any] = []
    while True:
        index = text.find("{", index)
        if index == -1:
            return found
        value, index = decoder.raw_decode(text, index)
        found.append(value)


def test_spans_go_where_the_standard_environment_variables_say(
        site: Path, make_event: EventFactory, tmp_path: Path) -> None:
    configure(tmp_path)
    write_events(tmp_path, [make_event(kind="bad" if n == 3 else "purchase")
                            for n in range(40)])  # lines 16 and 32 are timed, one per batch
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "shop-events"}
    running = hookline(tmp_path, "run", "events.jsonl", "--format", "json", env=env)
    out, err = running.communicate(timeout=120)
    assert running.returncode == 0, err

    *spans, report = json_objects(out)
    names = sorted(span["name"] for span in spans)
    assert names == ["hookline batch 1", "hookline batch 2", "hookline run",
                     "stage gate.check", "stage gate.check", "stage gate.slow", "stage gate.slow"]
    assert {span["resource"]["attributes"]["service.name"] for span in spans} == {"shop-events"}
    (run,) = [span for span in spans if span["name"] == "hookline run"]
    assert run["attributes"]["hookline.run_id"] == report["run_id"]
    assert run["attributes"]["hookline.read"] == 40
    check = [span for span in spans if span["name"] == "stage gate.check"]
    assert sum(span["attributes"]["hookline.rejected"] for span in check) == 1
    assert {span["attributes"]["hookline.distribution"] for span in check} == {"gate-plugin"}
    assert {span["parent_id"] for span in spans if span["name"].startswith("hookline batch")} == {
        run["context"]["span_id"]}
    assert report["sections"]["monitoring"]["tracing"] == "on: console (OTEL_TRACES_EXPORTER)"
