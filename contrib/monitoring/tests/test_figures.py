"""A batch's figures: the difference between the run's figures at two commits."""

from __future__ import annotations

from typing import Any

import hookline
from hookline.metrics import Histogram
from hookline.testing import PipelineFactory

from hookline_monitoring._figures import Tracker


def test_each_batch_gets_its_own_counts_stages_and_samples(
        make_pipeline: PipelineFactory, gate: Any) -> None:
    stats = make_pipeline(("gate", gate)).stats
    report = hookline.Report()
    tracker = Tracker()

    report.read, report.accepted, report.dead_lettered = 10, 8, 2
    check = stats.stage("gate.check")
    check.rejected = 2
    for ns in (1_000, 2_000):
        check.latency.add(ns)
    first = tracker.batch(report, stats)
    assert first is not None

    report.read, report.accepted, report.dropped, report.dead_lettered = 25, 20, 1, 4
    check.rejected, check.dropped, check.errors = 3, 1, 1
    check.latency.add(64_000)
    stats.stage("gate.slow")  # known, but no call in this batch
    second = tracker.batch(report, stats)
    assert second is not None

    assert (first.number, first.read, first.accepted, first.dropped, first.dead_lettered) == (
        1, 10, 8, 0, 2)
    assert (second.number, second.read, second.accepted, second.dropped,
            second.dead_lettered) == (2, 15, 12, 1, 2)
    assert second.dead_letter_ratio == 2 / 15
    one, two = first.stages["gate.check"], second.stages["gate.check"]
    sample = stats.sample_every
    assert (one.calls, one.errors, one.rejected, one.dropped) == (2 * sample + 2, 0, 2, 0)
    assert (two.calls, two.errors, two.rejected, two.dropped) == (sample + 3, 1, 1, 1)
    only_the_second = Histogram()
    only_the_second.add(64_000)
    assert two.latency == only_the_second
    assert set(second.stages) == {"gate.check"}  # a stage that did nothing is left out
    assert first.end_ns == second.start_ns and second.end_ns >= second.start_ns
    assert second.seconds > 0 and second.events_per_s == 15 / second.seconds
    assert tracker.batch(report, stats) is None  # nothing more read: not a batch
    assert tracker.batches == 2
