"""The Monitor's pure parts: the histogram it records in, counters, summary."""

from __future__ import annotations

import math
import random
from typing import Any
from unittest import mock

import hookline
import pytest
from hookline.hookspecs import PHASES
from hookline.metrics import Histogram
from hypothesis import given
from hypothesis import strategies as st

from hookline_monitoring import Monitor, PhaseStats, _monitor
from hookline_monitoring._monitor import timing_wrapper

durations = st.integers(min_value=0, max_value=2**64 - 1)


def test_latency_goes_into_hooklines_own_histogram() -> None:
    # One histogram type for hookline's stage statistics, timed() and this plugin (the core's
    # own tests check that its statistics use hookline.metrics.Histogram too).
    assert type(PhaseStats().latency) is Histogram


@given(durations)
def test_record_counts_one_call_of_its_duration(ns: int) -> None:
    stats = PhaseStats()
    stats.record(ns)
    expected = Histogram()
    expected.add(ns)
    assert stats.latency == expected
    assert (stats.events, stats.max_ns, stats.latency.sum_ns) == (1, ns, ns)


@given(st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=200))
def test_percentiles_are_within_an_eighth_of_the_exact_value(samples: list[int]) -> None:
    stats = PhaseStats()
    for ns in samples:
        stats.record(ns)
    ordered = sorted(samples)
    summary = stats.summary()
    for q, key in ((0.5, "p50_us"), (0.99, "p99_us")):
        exact = ordered[max(1, math.ceil(len(ordered) * q)) - 1]
        # Rounded to the nanosecond in the summary: half a nanosecond more.
        assert abs(summary[key] * 1000 - exact) <= exact / 8 + 1


def test_percentiles_of_a_known_distribution() -> None:
    stats = PhaseStats()
    rng = random.Random(7)
    samples = [rng.randrange(1_000, 2_000) for _ in range(980)] + [1_000_000] * 20
    for ns in samples:
        stats.record(ns)
    summary = stats.summary()
    assert 1.0 <= summary["p50_us"] <= 2.0
    assert 875.0 <= summary["p99_us"] <= 1_000.0  # clamped to the observed max
    assert summary["max_us"] == 1_000.0
    assert summary["mean_us"] == pytest.approx(sum(samples) / len(samples) / 1000, abs=1e-3)


def test_empty_histogram() -> None:
    summary = PhaseStats().summary()
    assert summary == {
        "events": 0,
        "errors": 0,
        "mean_us": 0.0,
        "p50_us": 0.0,
        "p99_us": 0.0,
        "max_us": 0.0,
        "outcomes": {},
    }


def test_exceptions_are_outcomes_and_only_real_errors_are_errors() -> None:
    stats = PhaseStats()
    for exc in (hookline.Reject("no"), hookline.Drop(), KeyError("x"), hookline.Reject("no")):
        stats.record_exception(exc)
    assert stats.outcomes == {"Reject": 2, "Drop": 1, "KeyError": 1}
    assert stats.errors == 1


def test_reset_clears_in_place() -> None:
    monitor = Monitor()
    stats = monitor["validate"]
    stats.record(1234)
    stats.record_exception(ValueError())
    monitor.reset()
    assert monitor["validate"] is stats
    assert stats.summary() == PhaseStats().summary()
    assert stats.latency.count == 0


def test_summary_lists_every_phase_in_pipeline_order() -> None:
    monitor = Monitor()
    monitor["score"].record(2_000)
    summary = monitor.summary()
    assert tuple(summary) == PHASES
    assert summary["score"]["events"] == 1
    assert summary["score"]["mean_us"] == 2.0
    assert summary["validate"]["events"] == 0


def drive(wrapper: Any, outcome: BaseException | None) -> Any:
    """Run a wrapper the way pluggy does: enter, then send the result or throw the error."""
    generator = wrapper("event")
    next(generator)
    try:
        if outcome is None:
            generator.send("result")
        else:
            generator.throw(outcome)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the wrapper must finish after one yield")


@given(st.lists(st.tuples(durations, st.sampled_from([None, "reject", "error"])), max_size=30))
def test_the_inlined_wrapper_records_exactly_like_record(
    calls: list[tuple[int, str | None]],
) -> None:
    by_wrapper, by_record = PhaseStats(), PhaseStats()
    wrapper = timing_wrapper(by_wrapper)
    errors: dict[str | None, BaseException | None] = {
        None: None,
        "reject": hookline.Reject("no"),
        "error": KeyError("k"),
    }
    for elapsed, kind in calls:
        outcome = errors[kind]
        with mock.patch.object(_monitor, "perf_counter_ns", side_effect=[1_000, 1_000 + elapsed]):
            try:
                assert drive(wrapper, outcome) == "result"
            except BaseException as exc:  # the very exception thrown in comes out
                assert exc is outcome
                by_record.record_exception(exc)
        by_record.record(elapsed)
    assert by_wrapper.summary() == by_record.summary()
    assert by_wrapper.latency == by_record.latency
