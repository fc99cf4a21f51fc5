"""The phase wrappers: every call timed into hookline's metrics, signals passed through."""

from __future__ import annotations

from typing import Any
from unittest import mock

import hookline
import pytest
from hookline.behaviors import DEFAULT_METRICS
from hookline.errors import StageFailed
from hookline.hookspecs import PHASES
from hookline.metrics import Histogram
from hookline.testing import EventFactory, PipelineFactory
from hypothesis import given
from hypothesis import strategies as st

import hookline_monitoring
from hookline_monitoring import _phases

durations = st.integers(min_value=0, max_value=2**40)


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


@given(st.lists(st.tuples(durations, st.sampled_from([None, "reject", "drop", "error"])),
                max_size=30))
def test_the_wrapper_records_each_call_as_histogram_add_would(
        calls: list[tuple[int, str | None]]) -> None:
    latency, errors, expected = Histogram(), [0], Histogram()
    wrapper = _phases.timing_wrapper(latency, errors)
    outcomes: dict[str | None, BaseException | None] = {
        None: None, "reject": hookline.Reject("no"), "drop": hookline.Drop(),
        "error": KeyError("k")}
    for elapsed, kind in calls:
        with mock.patch.object(_phases, "perf_counter_ns", side_effect=[1_000, 1_000 + elapsed]):
            try:
                assert drive(wrapper, outcomes[kind]) == "result"
            except BaseException as exc:  # the very exception thrown in comes out
                assert exc is outcomes[kind]
        expected.add(elapsed)
    assert latency == expected
    assert errors == [sum(kind == "error" for _, kind in calls)]  # decisions are not errors


def test_phases_record_into_the_metrics_hookline_merges(
        make_pipeline: PipelineFactory, make_event: EventFactory, gate: Any) -> None:
    pipeline = make_pipeline(hookline_monitoring, ("gate", gate))
    _phases.reset(PHASES)
    for kind in ["purchase"] * 7 + ["bad", "noise", "boom"]:
        try:
            pipeline.process(make_event(kind=kind))
        except (hookline.Reject, hookline.Drop, StageFailed):
            pass
    figures = DEFAULT_METRICS.snapshot()
    assert figures["monitoring.validate"]["calls"] == 10
    assert figures["monitoring.validate"]["errors"] == 1  # the KeyError, not Reject or Drop
    assert figures["monitoring.enrich"]["calls"] == figures["monitoring.score"]["calls"] == 7
    assert figures["monitoring.score"]["errors"] == 0


def test_reset_starts_the_phases_from_zero_and_leaves_other_series_alone() -> None:
    latency, errors = _phases.phase_series("validate")
    latency.add(1_000)
    errors[0] = 3
    other, _ = DEFAULT_METRICS.series("someone.else")
    other.add(5)
    before = other.count
    _phases.reset(PHASES)
    assert _phases.phase_series("validate") == (latency, errors)  # the same objects
    assert (latency.count, errors) == (0, [0])
    assert other.count == before


def test_signals_and_errors_pass_through_the_wrappers_unchanged(
        make_pipeline: PipelineFactory, make_event: EventFactory, gate: Any) -> None:
    pipeline = make_pipeline(hookline_monitoring, ("gate", gate))
    data = make_event()
    assert pipeline.process(data).to_dict() == data
    with pytest.raises(hookline.Reject) as rejected:
        pipeline.process(make_event(kind="bad"))
    assert (rejected.value.reason, rejected.value.stage) == ("bad kind", "gate.check")
    with pytest.raises(StageFailed) as failed:
        pipeline.process(make_event(kind="boom"))
    assert isinstance(failed.value.error, KeyError)
