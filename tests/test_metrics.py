"""hookline.metrics: the one latency histogram and the one Prometheus text writer (issue 13)."""

from __future__ import annotations

import json
import math
import pickle
import re
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hookline
from hookline import behaviors
from hookline._stats import Stats
from hookline.behaviors import timed
from hookline.config import Config
from hookline.metrics import (
    BUCKETS,
    N_BUCKETS,
    Histogram,
    Metrics,
    bucket_bounds,
    bucket_index,
    prometheus_counter,
    prometheus_histogram,
)

durations = st.integers(min_value=0, max_value=2**64 - 1)
#: Samples whose total stays below 2**64 ns, as the histogram requires.
samples = st.lists(st.integers(min_value=0, max_value=2**40), max_size=200)


# --------------------------------------------------------------------------------------------
# Buckets


@given(durations)
def test_every_duration_falls_into_its_bucket_at_most_a_quarter_wide(ns: int) -> None:
    index = bucket_index(ns)
    low, high = bucket_bounds(index)
    assert 0 <= index < N_BUCKETS
    assert low <= ns < high
    assert high - low <= max(1, low // 4)


def test_buckets_tile_every_duration_below_two_to_the_64() -> None:
    expected_low = 0
    for index in range(N_BUCKETS):
        low, high = bucket_bounds(index)
        assert low == expected_low
        expected_low = high
    assert expected_low == 2**64


def test_every_prometheus_bound_is_where_a_bucket_starts() -> None:
    assert BUCKETS[0] == 128e-9 and 17 < BUCKETS[-1] < 18
    for bound in BUCKETS:
        ns = round(bound * 1e9)
        assert bucket_bounds(bucket_index(ns))[0] == ns


# --------------------------------------------------------------------------------------------
# Histogram


def _histogram(values: list[int]) -> Histogram:
    histogram = Histogram()
    for ns in values:
        histogram.add(ns)
    return histogram


@given(samples)
def test_count_sum_and_counts(values: list[int]) -> None:
    histogram = _histogram(values)
    assert histogram.count == len(values)
    assert histogram.sum_ns == sum(values)
    counts = histogram.counts()
    assert len(counts) == N_BUCKETS
    for ns in values:
        assert counts[bucket_index(ns)] >= 1


@given(st.lists(st.integers(min_value=0, max_value=2**40), min_size=1, max_size=200),
       st.floats(min_value=0, max_value=1))
def test_a_quantile_is_within_an_eighth_of_the_exact_one(values: list[int], q: float) -> None:
    exact = sorted(values)[max(1, math.ceil(q * len(values))) - 1]
    estimate = _histogram(values).quantile(q)
    assert estimate is not None
    assert abs(estimate - exact) <= exact / 8 + 0.5


def test_quantiles_of_an_empty_histogram_and_bad_quantiles() -> None:
    assert Histogram().quantile(0.5) is None
    with pytest.raises(ValueError, match="between 0 and 1"):
        _histogram([5]).quantile(1.5)


@given(samples, samples)
def test_merge_adds_samples_in_place(first: list[int], second: list[int]) -> None:
    merged = _histogram(first)
    bins = merged.bins
    merged.merge(_histogram(second))
    assert merged == _histogram(first + second)
    assert merged.bins is bins  # code recording into the table goes on recording into it


def test_reset_keeps_the_table_and_a_histogram_pickles_by_it() -> None:
    histogram = _histogram([100, 2_000, 2_000, 3_000_000])
    copy = pickle.loads(pickle.dumps(histogram))
    assert copy == histogram and copy.quantile(0.5) == histogram.quantile(0.5)
    bins = histogram.bins
    histogram.reset()
    assert histogram.bins is bins and histogram.count == 0 and histogram != copy


def test_stats_timed_and_metrics_record_into_the_one_histogram() -> None:
    assert type(Stats().stage("fraud.velocity").latency) is Histogram
    latency, _ = Metrics().series("fraud.velocity")
    assert type(latency) is Histogram
    assert behaviors.Metrics is Metrics and behaviors.BUCKETS is BUCKETS


@given(st.lists(durations.filter(lambda ns: ns < 2**56), max_size=20))
def test_timed_records_each_call_as_histogram_add_does(elapsed: list[int]) -> None:
    clock = iter([tick for ns in elapsed for tick in (1_000, 1_000 + ns)])
    where = Metrics()
    with mock.patch.object(time, "perf_counter_ns", lambda: next(clock)):
        wrapped = timed(name="s", metrics=where)(lambda: None)
        for _ in elapsed:
            wrapped()
    assert where.series("s")[0] == _histogram(elapsed)


# --------------------------------------------------------------------------------------------
# The Prometheus text format

_METRIC = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_PAIR = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_LABELS = rf"\{{{_PAIR}(?:,{_PAIR})*\}}"
_VALUE = r"(?:[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|[+-]Inf|NaN)"
_SAMPLE = re.compile(rf"^({_METRIC})({_LABELS})? ({_VALUE})$")
_COMMENT = re.compile(rf"^# (?:HELP {_METRIC} .*|TYPE {_METRIC} (?:counter|gauge|histogram))$")


def exposition_samples(text: str) -> dict[str, float]:
    """Check every line of an exposition and return ``{'name{labels}': value}``."""
    assert text.endswith("\n")
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert _COMMENT.match(line), f"bad comment line: {line!r}"
            continue
        sample = _SAMPLE.match(line)
        assert sample, f"bad sample line: {line!r}"
        key = sample[1] + (sample[2] or "")
        assert key not in found, f"sample given twice: {key}"
        found[key] = float(sample[3])
    return found


def _bounds(found: dict[str, float], family: str, labels: str) -> dict[str, float]:
    prefix = f"{family}_bucket{{{labels},le="
    return {key[len(prefix) + 1:-2]: value for key, value in found.items()
            if key.startswith(prefix)}


@given(samples)
def test_a_histogram_family_counts_the_samples_below_each_bound(values: list[int]) -> None:
    text = prometheus_histogram("t_seconds", "Test.", {"a": _histogram(values)})
    found = exposition_samples(text)
    buckets = _bounds(found, "t_seconds", 'stage="a"')
    assert list(buckets) == [repr(bound) for bound in BUCKETS] + ["+Inf"]
    for bound in BUCKETS:
        assert buckets[repr(bound)] == sum(ns < round(bound * 1e9) for ns in values)
    assert buckets["+Inf"] == found['t_seconds_count{stage="a"}'] == len(values)
    assert found['t_seconds_sum{stage="a"}'] == pytest.approx(sum(values) / 1e9)
    assert text.count("# TYPE t_seconds histogram\n") == 1


def test_families_escape_label_values_and_help_and_concatenate() -> None:
    odd = 'fraud."odd"\\name\nx'
    text = (prometheus_counter("c_total", "Counts.\nTwo lines \\ here", {odd: 3, "b": 0},
                               label="plugin")
            + prometheus_histogram("h_seconds", "Latency.", {odd: _histogram([1_000])}))
    found = exposition_samples(text)
    label = r'fraud.\"odd\"\\name\nx'
    assert found[f'c_total{{plugin="{label}"}}'] == 3 and found['c_total{plugin="b"}'] == 0
    assert found[f'h_seconds_count{{stage="{label}"}}'] == 1
    assert "# HELP c_total Counts.\\nTwo lines \\\\ here\n" in text


@pytest.mark.parametrize(("name", "label"), [("bad-name", "stage"), ("1st", "stage"),
                                             ("ok", "bad label"), ("ok", "le"),
                                             ("ok", "__reserved")])
def test_invalid_names_are_refused(name: str, label: str) -> None:
    with pytest.raises(ValueError, match="is not a Prometheus"):
        prometheus_histogram(name, "x", {}, label=label)


def test_stats_write_errors_rejections_and_sampled_latency() -> None:
    stats = Stats(sample_every=1)
    stats.stage("fraud.velocity").errors = 2
    stats.stage("fraud.velocity").rejected = 5
    stats.probe(["fraud.velocity"])(0, 1_500)
    found = exposition_samples(stats.prometheus())
    label = 'stage="fraud.velocity"'
    assert found[f"hookline_stage_errors_total{{{label}}}"] == 2
    assert found[f"hookline_stage_rejected_total{{{label}}}"] == 5
    assert found[f"hookline_stage_latency_seconds_count{{{label}}}"] == 1
    assert _bounds(found, "hookline_stage_latency_seconds", label)["2.048e-06"] == 1
    assert _bounds(found, "hookline_stage_latency_seconds", label)["1.024e-06"] == 0
    assert stats.as_dict()["fraud.velocity"]["p50_us"] == pytest.approx(1.5, rel=1 / 8)


class _Gate(hookline.Stage, phase="validate", name="gate"):
    """Refuses every third event: those end the validate phase by raising."""

    def process(self, event: Any) -> None:
        if event.ts % 3 == 0:
            raise hookline.Reject("every third")


class _Tag(hookline.Stage, phase="score", name="tag"):
    def process(self, event: Any) -> None:
        event.tags = [*event.tags, "scored"]


def test_each_phase_with_stages_is_timed_on_the_sampled_events(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(
        json.dumps({"event_id": f"e{n}", "user_id": "u", "kind": "view", "ts": n}) + "\n"
        for n in range(1, 301)))
    config = Config(sample_every=4)
    pipeline = hookline.Pipeline.from_plugins([_Gate, _Tag], config)
    report = hookline.run([str(source)], db=str(tmp_path / "out.db"), config=config,
                          pipeline=pipeline)
    # Lines 4, 8, ... 300 are sampled; validate returns on the two in three not refused,
    # and each of those goes on through score. enrich has no stage: it is not run.
    sampled = [n for n in range(1, 301) if n % 4 == 0]
    passed = [n for n in sampled if n % 3]
    assert {name: phase["timed"] for name, phase in report.phase_stats.items()} == {
        "validate": len(passed), "score": len(passed)}
    assert 0 < report.phase_stats["score"]["p50_us"] <= report.phase_stats["score"]["max_us"]
    found = exposition_samples(pipeline.stats.prometheus())
    assert found['hookline_phase_latency_seconds_count{phase="validate"}'] == len(passed)
    assert hookline.Report.from_dict(report.as_dict()).phase_stats == report.phase_stats


# --------------------------------------------------------------------------------------------
# Metrics: what timed() records


class _Flaky:
    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures, self.error = failures, error

    def __call__(self) -> None:
        if self.failures:
            self.failures -= 1
            raise self.error


def test_metrics_text_is_valid_exposition_with_a_consistent_histogram() -> None:
    where = Metrics()
    wrapped = timed(name='fraud."odd"\\name', metrics=where)(_Flaky(1, ValueError("x")))
    with pytest.raises(ValueError):
        wrapped()
    for _ in range(9):
        wrapped()
    timed(name="fraud.sleepy", metrics=where)(time.sleep)(0.002)
    text = where.prometheus_text()
    found = exposition_samples(text)
    label = r'stage="fraud.\"odd\"\\name"'
    assert found[f"hookline_stage_calls_total{{{label}}}"] == 10
    assert found[f"hookline_stage_errors_total{{{label}}}"] == 1
    assert found[f"hookline_stage_latency_seconds_count{{{label}}}"] == 10
    assert 0 < found[f"hookline_stage_latency_seconds_sum{{{label}}}"] < 1
    sleepy = {float(bound): count for bound, count in
              _bounds(found, "hookline_stage_latency_seconds", 'stage="fraud.sleepy"').items()
              if bound != "+Inf"}
    assert sleepy[max(b for b in sleepy if b < 0.002)] == 0 and sleepy[max(sleepy)] == 1


def test_metrics_families_can_take_another_prefix() -> None:
    where = Metrics()
    timed(name="s", metrics=where)(lambda: None)()
    found = exposition_samples(where.prometheus_text(prefix="hookline_timed"))
    assert found['hookline_timed_calls_total{stage="s"}'] == 1
    assert found['hookline_timed_latency_seconds_count{stage="s"}'] == 1
    assert not [name for name in found if name.startswith("hookline_stage")]
    with pytest.raises(ValueError, match="not a Prometheus metric name"):
        where.prometheus_text(prefix="bad-prefix")


def test_metrics_merge_reset_and_pickle() -> None:
    first, second = Metrics(), Metrics()
    timed(name="s", metrics=first)(lambda: None)()
    for _ in range(2):
        timed(name="s", metrics=second)(lambda: None)()
    failing = timed(name="t", metrics=second)(_Flaky(1, KeyError("k")))
    with pytest.raises(KeyError):
        failing()
    first.merge(pickle.loads(pickle.dumps(second)))
    figures: dict[str, Any] = first.snapshot()
    assert {name: (f["calls"], f["errors"]) for name, f in figures.items()} == {
        "s": (3, 0), "t": (1, 1)}
    first.reset()
    assert first.snapshot()["s"]["calls"] == 0
    assert first.snapshot()["s"]["p50_us"] == 0.0



def test_the_metrics_file_has_timed_families_only_when_something_was_timed() -> None:
    behaviors.DEFAULT_METRICS.series("team.earlier")  # a series an earlier run left, reset
    behaviors.DEFAULT_METRICS.reset()
    report = hookline.Report(accepted=3)
    assert "hookline_timed_" not in report.prometheus()  # nothing timed since
    timed()(lambda: None)()
    assert 'hookline_timed_calls_total{stage="' in report.prometheus()
    behaviors.DEFAULT_METRICS.reset()
