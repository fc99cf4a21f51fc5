"""Latency histograms and the Prometheus text format: the one of each that hookline uses.

A run's per-stage statistics (``hookline run --profile``, the report's ``p50 µs``/``p99 µs``
columns), the :func:`hookline.behaviors.timed` behaviour and the hookline-monitoring plugin all
record latencies in a :class:`Histogram` and write them with :func:`prometheus_histogram`.
This module is public, added to hookline's contract on purpose: a plugin that measures
something can do the same, and gets the same buckets, percentiles and exposition.

The histogram is log-linear, like HdrHistogram with two bits of precision: a duration below
8 ns has a bucket of its own; above, every power of two is split into four buckets of equal
width. A bucket is at most a quarter as wide as its lower bound, so a percentile read from the
middle of its bucket is within 12.5 % of the exact one. The table has a fixed size
(:data:`N_BUCKETS`, every duration below 2**64 ns) and histograms merge by adding tables.
Each bucket is one int holding its samples and their total time, ``samples << 64 | ns``, so
recording a sample is one addition: ``bins[bucket_index(ns)] += ns + SAMPLE``.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from typing import Any

__all__ = [
    "BUCKETS",
    "N_BUCKETS",
    "SAMPLE",
    "Histogram",
    "Metrics",
    "bucket_bounds",
    "bucket_index",
    "prometheus_counter",
    "prometheus_histogram",
]

_SUB_BITS = 2  # four buckets per power of two
#: By bit length: how far to shift a duration right, and where its power of two's buckets
#: start. Two table reads find a bucket faster than computing both (see ``timed()``).
_SHIFTS = tuple(max(0, length - _SUB_BITS - 1) for length in range(65))
_OFFSETS = tuple(shift << _SUB_BITS for shift in _SHIFTS)

#: Added, with a sample's nanoseconds, to its bucket: a bucket counts samples from bit 64 up.
SAMPLE = 1 << 64
_NS = SAMPLE - 1


def bucket_index(ns: int) -> int:
    """The histogram bucket of a duration of ``ns`` nanoseconds, ``0 <= ns < 2**64``."""
    length = ns.bit_length()
    return (ns >> _SHIFTS[length]) + _OFFSETS[length]


def bucket_bounds(index: int) -> tuple[int, int]:
    """The durations ``[low, high)``, in nanoseconds, that fall into bucket ``index``."""
    exact = 1 << (_SUB_BITS + 1)
    if index < exact:
        return index, index + 1
    shift = (index >> _SUB_BITS) - 1
    mantissa = (index & ((1 << _SUB_BITS) - 1)) | (1 << _SUB_BITS)
    return mantissa << shift, (mantissa + 1) << shift


#: How many buckets a histogram has: enough for every duration below 2**64 ns (584 years).
N_BUCKETS = bucket_index(2**64 - 1) + 1

_FIRST_BOUND, _LAST_BOUND = 7, 34
#: The upper bounds of the Prometheus buckets, in seconds: powers of two of nanoseconds,
#: 128 ns, 256 ns, … 17 s (each is where a histogram bucket starts, so their counts are exact).
BUCKETS: tuple[float, ...] = tuple(2**i / 1e9 for i in range(_FIRST_BOUND, _LAST_BOUND + 1))
_BOUND_INDEXES = tuple(bucket_index(2**i) for i in range(_FIRST_BOUND, _LAST_BOUND + 1))


class Histogram:
    """Latency samples in nanoseconds, in log-linear buckets; mergeable, percentiles within
    12.5 %.

    ``bins`` is the table itself, :data:`N_BUCKETS` ints, each ``samples << 64 | total ns``
    of its bucket. :meth:`add` records a sample; code that records on every call of something
    (a wrapper) can skip the method call with ``bins[bucket_index(ns)] += ns + SAMPLE``.
    :meth:`merge` and :meth:`reset` change ``bins`` in place, so such code keeps recording
    into the same histogram. The total time of all samples must stay below 2**64 ns. Pickles
    by its table.
    """

    __slots__ = ("bins",)

    def __init__(self) -> None:
        self.bins = [0] * N_BUCKETS

    def add(self, ns: int) -> None:
        """Record one sample of ``ns`` nanoseconds (``0 <= ns < 2**64``)."""
        length = ns.bit_length()
        self.bins[(ns >> _SHIFTS[length]) + _OFFSETS[length]] += ns + SAMPLE

    @property
    def count(self) -> int:
        """How many samples were recorded."""
        return sum(self.bins) >> 64

    @property
    def sum_ns(self) -> int:
        """The total of all samples, in nanoseconds."""
        return sum(self.bins) & _NS

    def counts(self) -> list[int]:
        """The samples in each bucket (bucket ``i`` holds :func:`bucket_bounds`\\ ``(i)``)."""
        return [packed >> 64 for packed in self.bins]

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile (``0 <= q <= 1``) in nanoseconds, None when empty.

        It is the middle of the bucket holding the ``ceil(q * count)``-th smallest sample,
        within 12.5 % of that sample (half a nanosecond for samples below 8 ns).
        """
        if not 0 <= q <= 1:
            raise ValueError(f"q={q!r} is not a quantile between 0 and 1")
        counts = self.counts()
        total = sum(counts)
        if not total:
            return None
        rank, seen = max(1, math.ceil(q * total)), 0
        for index, count in enumerate(counts):
            seen += count
            if seen >= rank:
                low, high = bucket_bounds(index)
                return (low + high - 1) / 2
        raise AssertionError("unreachable: rank <= total")  # pragma: no cover

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s samples to these (in place)."""
        bins = self.bins
        for index, packed in enumerate(other.bins):
            if packed:
                bins[index] += packed

    def reset(self) -> None:
        """Forget every sample (in place)."""
        self.bins[:] = [0] * N_BUCKETS

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.bins == other.bins

    def __repr__(self) -> str:
        return f"<hookline Histogram: {self.count} samples, p50 {self.quantile(0.5)} ns>"


# --------------------------------------------------------------------------------------------
# The Prometheus text exposition format (version 0.0.4)

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _family(name: str, help: str, kind: str, label: str) -> list[str]:
    """The HELP and TYPE lines of a family, once its names are checked."""
    if not _METRIC_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a Prometheus metric name")
    if (not _LABEL_NAME.fullmatch(label) or label.startswith("__")
            or (kind == "histogram" and label == "le")):
        raise ValueError(f"{label!r} is not a Prometheus label name for a {kind}")
    help = help.replace("\\", "\\\\").replace("\n", "\\n")
    return [f"# HELP {name} {help}", f"# TYPE {name} {kind}"]


def _label(label: str, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return f'{label}="{escaped}"'


def prometheus_counter(name: str, help: str, values: Mapping[str, int], *,
                       label: str = "stage") -> str:
    """A counter family in the Prometheus text format: ``# HELP``, ``# TYPE`` and one sample
    per item of ``values``, labelled ``label="<key>"``.

    Raises ValueError when ``name`` or ``label`` is not a valid Prometheus name. Families
    written by this function and :func:`prometheus_histogram` concatenate into an exposition.
    """
    lines = _family(name, help, "counter", label)
    lines += [f"{name}{{{_label(label, key)}}} {value}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def prometheus_histogram(name: str, help: str, histograms: Mapping[str, Histogram], *,
                         label: str = "stage") -> str:
    """A histogram family in the Prometheus text format, one series per item of
    ``histograms``, labelled ``label="<key>"``, in seconds.

    Each series has the cumulative ``<name>_bucket`` samples at the bounds :data:`BUCKETS`
    and ``+Inf``, then ``<name>_sum`` and ``<name>_count``. A bound is a power of two of
    nanoseconds where a histogram bucket starts: its count, the samples shorter than it, is
    exact (a sample of exactly the bound's nanoseconds counts in the next one).
    """
    lines = _family(name, help, "histogram", label)
    for key, histogram in histograms.items():
        labels = _label(label, key)
        counts = histogram.counts()
        seen, start = 0, 0
        for bound, stop in zip(BUCKETS, _BOUND_INDEXES):
            seen += sum(counts[start:stop])
            start = stop
            lines.append(f'{name}_bucket{{{labels},le="{bound!r}"}} {seen}')
        total = sum(counts)
        lines += [f'{name}_bucket{{{labels},le="+Inf"}} {total}',
                  f"{name}_sum{{{labels}}} {histogram.sum_ns / 1e9!r}",
                  f"{name}_count{{{labels}}} {total}"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Metrics: named call counters and latency histograms


class _Series:
    """The figures of one name: its latency histogram and its error count (a one-item list,
    so that wrappers update it in place)."""

    __slots__ = ("errors", "latency", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.latency = Histogram()
        self.errors = [0]


class Metrics:
    """Calls, errors and a latency :class:`Histogram` per name: what
    :func:`hookline.behaviors.timed` records.

    An object, not a global: a pipeline, a run or a test has its own
    (:data:`hookline.behaviors.DEFAULT_METRICS` serves hand use). Pickles by its figures, so
    a worker's metrics can be shipped back and :meth:`merge`\\ d. Recording takes no lock:
    under the GIL each update is a few bytecodes with no call in between, so concurrent calls
    do not lose counts (on a free-threaded build they may, rarely).
    """

    def __init__(self) -> None:
        self._series: dict[str, _Series] = {}
        self._lock = threading.Lock()

    def series(self, name: str) -> tuple[Histogram, list[int]]:
        """The histogram and the one-item error count of ``name``, made on first use (two
        wrappers of one name share them); a recorder keeps both and updates them in place."""
        with self._lock:
            found = self._series.get(name)
            if found is None:
                found = self._series[name] = _Series(name)
            return found.latency, found.errors

    def _all(self) -> list[_Series]:
        with self._lock:
            return sorted(self._series.values(), key=lambda series: series.name)

    def names(self) -> list[str]:
        """The names recorded so far, sorted."""
        return [series.name for series in self._all()]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """``{name: {"calls", "errors", "p50_us", "p99_us", "mean_us"}}``.

        ``errors`` counts calls that raised an ``Exception`` (``Reject``/``Drop`` count as
        calls, not errors); latencies are in microseconds, the quantiles read from the
        histogram (within 12.5 %), 0.0 before any call.
        """
        figures = {}
        for series in self._all():
            latency = series.latency
            calls = latency.count
            figures[series.name] = {
                "calls": calls,
                "errors": series.errors[0],
                "p50_us": (latency.quantile(0.5) or 0.0) / 1e3,
                "p99_us": (latency.quantile(0.99) or 0.0) / 1e3,
                "mean_us": latency.sum_ns / calls / 1e3 if calls else 0.0,
            }
        return figures

    def prometheus_text(self, prefix: str = "hookline_stage") -> str:
        """The figures in the Prometheus text format: the counters ``<prefix>_calls_total``
        and ``<prefix>_errors_total`` and the histogram ``<prefix>_latency_seconds``,
        labelled ``stage="<name>"``.

        ``prefix`` keeps the families apart from others in one exposition.
        """
        everything = self._all()
        return (
            prometheus_counter(f"{prefix}_calls_total", "Calls of each timed stage.",
                               {s.name: s.latency.count for s in everything})
            + prometheus_counter(f"{prefix}_errors_total",
                                 "Calls of each timed stage that raised an error.",
                                 {s.name: s.errors[0] for s in everything})
            + prometheus_histogram(f"{prefix}_latency_seconds",
                                   "Latency of each timed stage's calls.",
                                   {s.name: s.latency for s in everything}))

    def merge(self, other: Metrics) -> None:
        """Add ``other``'s figures to these."""
        for theirs in other._all():
            latency, errors = self.series(theirs.name)
            latency.merge(theirs.latency)
            errors[0] += theirs.errors[0]

    def reset(self) -> None:
        """Set every figure to zero (wrappers already made go on recording into them)."""
        for series in self._all():
            series.latency.reset()
            series.errors[0] = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"series": [(s.name, s.latency.bins, s.errors[0]) for s in self._all()]}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._series, self._lock = {}, threading.Lock()
        for name, bins, errors in state["series"]:
            latency, counted = self.series(name)
            latency.bins[:], counted[0] = bins, errors

    def __repr__(self) -> str:
        return f"<hookline Metrics: {len(self._series)} series>"
