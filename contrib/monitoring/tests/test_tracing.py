"""OpenTelemetry: a span for the run, one per batch under it, one per stage under its batch,
sent to the tracer provider the application set (here: the SDK with an in-memory exporter)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hookline
from hookline.config import Config
from hookline.testing import EventFactory


def test_spans_for_the_run_its_batches_and_their_stages(
        site: Path, spans: Any, make_event: EventFactory, tmp_path: Path) -> None:
    lines = [make_event(user_id=f"u{n % 3}", kind="bad" if n % 10 == 0 else "purchase")
             for n in range(25)]
    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    config = Config(plugins=("monitoring", "gate"), batch_size=10, sample_every=1)
    pipeline = hookline.Pipeline.from_entry_points(config)

    report = hookline.run([str(source)], db=str(tmp_path / "out.db"), config=config,
                          pipeline=pipeline)

    finished = spans.get_finished_spans()
    (run,) = [span for span in finished if span.name == "hookline run"]
    batches = sorted((span for span in finished if span.name.startswith("hookline batch")),
                     key=lambda span: span.attributes["hookline.batch"])
    stages = [span for span in finished if span.name.startswith("stage ")]
    assert dict(run.attributes) == {
        "hookline.run_id": report.run_id, "hookline.inputs": (str(source),),
        "hookline.db": str(tmp_path / "out.db"), "hookline.read": 25, "hookline.accepted": 22,
        "hookline.dropped": 0, "hookline.dead_lettered": 3, "hookline.interrupted": False}
    assert run.parent is None and run.status.is_ok

    assert [span.attributes["hookline.read"] for span in batches] == [10, 10, 5]
    assert [span.attributes["hookline.dead_lettered"] for span in batches] == [1, 1, 1]
    for span in batches:
        assert span.parent.span_id == run.context.span_id
        assert run.start_time <= span.start_time <= span.end_time <= run.end_time

    assert len(stages) == 2 * len(batches)  # gate.check and gate.slow, in every batch
    by_batch = {span.context.span_id: span for span in batches}
    for span in stages:
        batch = by_batch[span.parent.span_id]
        assert batch.start_time == span.start_time <= span.end_time <= batch.end_time
        attributes = span.attributes
        assert {key: attributes[key] for key in ("hookline.plugin", "hookline.distribution",
                                                 "hookline.version")} == {
            "hookline.plugin": "gate", "hookline.distribution": "gate-plugin",
            "hookline.version": "1.0"}
        assert span.name == f"stage {attributes['hookline.stage']}"
        assert attributes["hookline.phase"] == (
            "validate" if attributes["hookline.stage"] == "gate.check" else "enrich")
        assert attributes["hookline.sample_every"] == 1
        assert attributes["hookline.calls"] == attributes["hookline.sampled_calls"] + (
            attributes["hookline.rejected"])
        assert attributes["hookline.p99_ms"] >= attributes["hookline.p50_ms"] > 0
    rejected = {span.attributes["hookline.batch"]: 0 for span in batches}
    for span in stages:
        if span.attributes["hookline.stage"] == "gate.check":
            rejected[by_batch[span.parent.span_id].attributes["hookline.batch"]] += (
                span.attributes["hookline.rejected"])
    assert rejected == {1: 1, 2: 1, 3: 1}
    assert report.sections["monitoring"]["tracing"] == "on: the application's tracer provider"


def test_stage_spans_follow_the_stage_statistics_sampling(
        site: Path, spans: Any, make_event: EventFactory, tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps(make_event()) + "\n" for _ in range(64)))
    config = Config(plugins=("monitoring", "gate"), batch_size=64, sample_every=16)
    hookline.run([str(source)], db=str(tmp_path / "out.db"), config=config,
                 pipeline=hookline.Pipeline.from_entry_points(config))
    (check,) = [span for span in spans.get_finished_spans() if span.name == "stage gate.check"]
    assert check.attributes["hookline.sample_every"] == 16
    assert check.attributes["hookline.sampled_calls"] == 4  # one event in 16 is timed
    assert check.attributes["hookline.calls"] == 64  # estimated from them
