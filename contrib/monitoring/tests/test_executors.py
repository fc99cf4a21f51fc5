"""The plugin's figures are the run's, whatever the executor: what ``/metrics`` served after
each batch, the alerts, the spans and the report's phase figures are the same for a run
processed in worker processes as for one processed inline (the latencies aside: those are
measured anew, on the same sampled events)."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import hookline
import pytest
from _support import free_port, samples
from hookline.config import Config
from hookline.testing import EventFactory, write_installed

pytestmark = pytest.mark.integration  # worker processes, and a Dask cluster

#: A plugin that reads /metrics after each batch, once the monitoring plugin published it.
SCRAPER = textwrap.dedent('''
    import urllib.request

    import hookline

    SCRAPES = []


    @hookline.hookimpl(trylast=True)
    def hookline_batch_committed(run, report, pipeline):
        port = run.config["plugin_settings"]["monitoring"]["prometheus_port"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            SCRAPES.append(response.read().decode())
''')

#: Sample lines whose value is a measured time, or a count of times in a latency bucket.
TIMING = re.compile(r"_sum\{|_bucket\{")


def counts(text: str) -> dict[str, float]:
    return {key: value for key, value in samples(text).items() if not TIMING.search(key)}


def phases(report: Any) -> dict[str, dict[str, Any]]:
    """The report's phase figures, their measured latencies left out."""
    section = report.sections["monitoring"]
    return {phase: {key: value for key, value in section[phase].items()
                    if not key.endswith("_us")} for phase in ("validate", "enrich")}


def run(executor: str, source: Path, folder: Path, spans: Any
        ) -> tuple[list[str], Any, list[Any]]:
    """A run of ``source`` with ``executor``: what was scraped after each batch, the report,
    and the spans' figures."""
    spans.clear()
    config = Config(plugins=("monitoring", "gate", "scraper"), batch_size=100, plugin_settings={
        "monitoring": {"prometheus_port": free_port(), "max_dead_letter_ratio": 0.1,
                       "max_stage_error_rate": 0.01}})
    pipeline = hookline.Pipeline.from_entry_points(config)
    scrapes = sys.modules["scraper_plugin"].SCRAPES
    scrapes.clear()
    report = hookline.run([str(source)], db=str(folder / f"{executor}.db"), config=config,
                          pipeline=pipeline, executor=executor, workers=2)
    measured = {"hookline.time_ms", "hookline.p50_ms", "hookline.p99_ms",
                "hookline.events_per_s", "hookline.run_id", "hookline.db"}
    figures = sorted((span.name, sorted(item for item in span.attributes.items()
                                        if item[0] not in measured))
                     for span in spans.get_finished_spans())
    return list(scrapes), report, figures


@pytest.mark.parametrize("executor", ["process", "dask"])
def test_figures_are_the_same_as_inline(executor: str, site: Path, spans: Any,
                                        make_event: EventFactory, tmp_path: Path) -> None:
    write_installed(site, "scraper", SCRAPER)
    kinds = ["purchase"] * 90 + ["bad"] * 8 + ["boom"] * 2
    source = tmp_path / "events.jsonl"
    source.write_text("".join(
        json.dumps(make_event(user_id=f"u{n % 7}", kind=kinds[(n * 37) % 100])) + "\n"
        for n in range(450)))

    inline_scrapes, inline, inline_spans = run("inline", source, tmp_path, spans)
    other_scrapes, other, other_spans = run(executor, source, tmp_path, spans)

    assert len(inline_scrapes) == 5
    assert [counts(text) for text in other_scrapes] == [counts(text) for text in inline_scrapes]
    last = counts(other_scrapes[-1])
    assert last['hookline_stage_rejected_total{stage="gate.check"}'] == 36  # 8 % of 450
    assert last['hookline_monitoring_phase_events_total{phase="validate"}'] == 450
    sampled = [kinds[((number - 1) * 37) % 100] for number in range(16, 451, 16)]
    assert last['hookline_phase_latency_seconds_count{phase="validate"}'] == sampled.count(
        "purchase")  # the lines hookline timed, where the validate phase did not raise
    assert phases(other) == phases(inline)
    assert phases(other)["enrich"] == {"events": 405, "errors": 0, "rejected": 0, "dropped": 0,
                                       "timed": sampled.count("purchase")}
    assert (last['hookline_stage_calls_total{stage="gate.check"}']
            == other.stage_stats["gate.check"]["calls"])
    assert other.sections["monitoring"]["alerts"] == inline.sections["monitoring"]["alerts"]
    assert other.sections["monitoring"]["alerts"] != "none"
    assert other_spans == inline_spans
    assert len(other_spans) == 1 + 5 + 5 * 2  # the run, its batches, their two stages
