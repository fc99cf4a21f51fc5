"""Alert thresholds on a batch's figures: once per breach, per stage, with the figures."""

from __future__ import annotations

import logging

import pytest
from hookline.metrics import Histogram

from hookline_monitoring import Settings
from hookline_monitoring._alerts import Alerts
from hookline_monitoring._figures import BatchFigures, StageFigures


def batch(number: int, read: int = 100, dead: int = 0, seconds: float = 1.0,
          stages: dict[str, StageFigures] | None = None) -> BatchFigures:
    return BatchFigures(number, read, read - dead, 0, dead, seconds, 0, int(seconds * 1e9), 1,
                        stages or {})


def stage(name: str, calls: int = 100, errors: int = 0, *latencies_ns: int) -> StageFigures:
    latency = Histogram()
    for ns in latencies_ns:
        latency.add(ns)
    return StageFigures(name, calls, errors, 0, 0, latency)


def alerts(**settings: object) -> Alerts:
    return Alerts(Settings.from_dict(settings), "run-1")


def test_a_breach_fires_once_and_again_after_it_ended(caplog: pytest.LogCaptureFixture) -> None:
    watch = alerts(max_dead_letter_ratio=0.1)
    caplog.set_level(logging.INFO, logger="hookline.monitoring")
    fired = [len(watch.check(batch(n, dead=dead))) for n, dead in
             enumerate([0, 30, 40, 5, 20, 20], start=1)]
    assert fired == [0, 1, 0, 0, 1, 0]
    first, second = watch.fired
    assert (first.name, first.stage, first.value, first.threshold, first.batch,
            first.run_id) == ("max_dead_letter_ratio", None, 0.3, 0.1, 2, "run-1")
    assert first.message == ("dead-letter ratio 30.0% in batch 2 (30 of 100 events), over "
                             "max_dead_letter_ratio 10.0%")
    assert second.batch == 5
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [f"alert: {first.message}",
                        "the run is back within max_dead_letter_ratio in batch 4",
                        f"alert: {second.message}"]
    assert [record.levelname for record in caplog.records] == ["WARNING", "INFO", "WARNING"]


def test_each_stage_is_checked_on_its_own_with_its_own_threshold() -> None:
    watch = alerts(max_stage_error_rate=0.05, stage_max_error_rate={"ml.score": 0.5})
    fired = watch.check(batch(1, stages={
        "fraud.velocity": stage("fraud.velocity", 100, 10),  # 10 % > 5 %
        "fraud.amount": stage("fraud.amount", 100, 1),  # 1 %
        "ml.score": stage("ml.score", 100, 20),  # 20 % < its own 50 %
    }))
    assert [(alert.stage, alert.value) for alert in fired] == [("fraud.velocity", 0.1)]
    assert fired[0].message == ("stage fraud.velocity: error rate 10.0% in batch 1 (10 errors in "
                                "~100 calls), over max_stage_error_rate 5.0%")
    # the same stage still over: nothing new; another stage crossing: its own alert
    again = watch.check(batch(2, stages={"fraud.velocity": stage("fraud.velocity", 100, 9),
                                         "fraud.amount": stage("fraud.amount", 100, 6)}))
    assert [alert.stage for alert in again] == ["fraud.amount"]


def test_p99_latency_of_the_batchs_sampled_calls() -> None:
    watch = alerts(max_stage_p99_ms=2, stage_max_p99_ms={"ml.score": 50})
    slow = [1_000_000] * 90 + [9_000_000] * 10  # p99: 9 ms
    fired = watch.check(batch(1, stages={"a.fast": stage("a.fast", 100, 0, *[500_000] * 100),
                                         "a.slow": stage("a.slow", 100, 0, *slow),
                                         "ml.score": stage("ml.score", 100, 0, *slow)}))
    assert [alert.stage for alert in fired] == ["a.slow"]
    assert 8.0 <= fired[0].value <= 10.0  # a histogram's p99: within 12.5 %
    assert fired[0].message.startswith("stage a.slow: p99 latency ")
    assert "(of 100 sampled calls), over max_stage_p99_ms 2 ms" in fired[0].message
    # a stage without sampled calls in a batch has no p99 to check: its breach goes on
    assert watch.check(batch(2, stages={"a.slow": stage("a.slow", 3, 0)})) == []
    assert ("max_stage_p99_ms", "a.slow") in watch.breached


def test_events_per_second_below_the_floor() -> None:
    watch = alerts(min_events_per_s=1000)
    assert watch.check(batch(1, read=5000, seconds=2.0)) == []
    (slow,) = watch.check(batch(2, read=5000, seconds=10.0))
    assert (slow.value, slow.threshold) == (500.0, 1000)
    assert slow.message == ("500 events/s in batch 2 (5,000 events in 10.00 s), under "
                            "min_events_per_s 1,000")


def test_no_threshold_no_alert_and_names_lists_the_set_ones() -> None:
    quiet = alerts()
    assert quiet.check(batch(1, dead=100, stages={"a.b": stage("a.b", 10, 10, 10**9)})) == []
    assert quiet.names == []
    assert alerts(max_stage_p99_ms=1, min_events_per_s=5).names == ["max_stage_p99_ms",
                                                                     "min_events_per_s"]
