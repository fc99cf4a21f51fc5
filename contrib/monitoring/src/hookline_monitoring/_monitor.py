"""Counters and a fixed-bucket latency histogram per phase, cheap enough for every event.

The histogram is log-linear, like HdrHistogram with two bits of precision: durations
below 8 ns have a bucket each; above, every power of two is split into four buckets of
equal width. A bucket is at most 25 % as wide as its lower bound, so a percentile read
from the bucket's midpoint is off by at most 12.5 %. Finding a bucket costs one
``int.bit_length()`` and two shifts, and the table has a fixed size (``N_BUCKETS``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from time import perf_counter_ns
from typing import Any

from hookline.hookspecs import PHASES

_SUB_BITS = 2  # four buckets per power of two
_EXACT = 1 << (_SUB_BITS + 1)  # durations below this have a bucket each


def bucket_index(ns: int) -> int:
    """Return the histogram bucket of a duration of ``ns`` nanoseconds (``0 <= ns < 2**64``)."""
    if ns < _EXACT:
        return ns
    shift = ns.bit_length() - _SUB_BITS - 1
    return (shift << _SUB_BITS) + (ns >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """Return the durations ``[low, high)`` in nanoseconds that fall into bucket ``index``."""
    if index < _EXACT:
        return index, index + 1
    shift = (index >> _SUB_BITS) - 1
    mantissa = (index & ((1 << _SUB_BITS) - 1)) | (1 << _SUB_BITS)
    return mantissa << shift, (mantissa + 1) << shift


#: Enough buckets for every duration below 2**64 ns (about 584 years).
N_BUCKETS = bucket_index(2**64 - 1) + 1


def percentile_ns(buckets: list[int], q: float) -> float:
    """Return the approximate ``q``-quantile (0 < q <= 1) of the durations in ``buckets``.

    The value is the midpoint of the bucket holding the ``ceil(q * n)``-th smallest
    duration; ``0.0`` when the histogram is empty.
    """
    total = sum(buckets)
    if total == 0:
        return 0.0
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= rank:
            low, high = bucket_bounds(index)
            return (low + high - 1) / 2
    raise AssertionError("unreachable: rank <= total")  # pragma: no cover


class PhaseStats:
    """What happened in one phase: calls, time spent, and how calls ended.

    ``events`` counts every call, whatever its outcome (it is the histogram's total);
    ``outcomes`` counts the calls that ended in an exception, by the exception's type name
    (``Reject``, ``Drop``, ``KeyError``…); ``errors`` counts those that are real errors
    (``Exception`` subclasses), not the ``Reject``/``Drop`` decisions, which are
    ``BaseException``.
    """

    __slots__ = ("buckets", "errors", "max_ns", "outcomes", "total_ns")

    def __init__(self) -> None:
        self.buckets = [0] * N_BUCKETS
        self.errors = 0
        self.total_ns = 0
        self.max_ns = 0
        self.outcomes: dict[str, int] = {}

    @property
    def events(self) -> int:
        """How many calls were recorded."""
        return sum(self.buckets)

    def reset(self) -> None:
        """Forget everything, in place (the hook wrappers hold on to this object)."""
        self.buckets[:] = [0] * N_BUCKETS
        self.errors = self.total_ns = self.max_ns = 0
        self.outcomes.clear()

    def record(self, elapsed_ns: int) -> None:
        """Count one call that took ``elapsed_ns`` nanoseconds.

        The phase wrappers (``timing_wrapper``) inline this body; a test keeps them equal.
        """
        self.total_ns += elapsed_ns
        if elapsed_ns > self.max_ns:
            self.max_ns = elapsed_ns
        self.buckets[bucket_index(elapsed_ns)] += 1

    def record_exception(self, exc: BaseException) -> None:
        """Count a call that ended by raising ``exc``."""
        name = type(exc).__name__
        self.outcomes[name] = self.outcomes.get(name, 0) + 1
        if isinstance(exc, Exception):
            self.errors += 1

    def summary(self) -> dict[str, Any]:
        """Return the numbers of the run report, durations in microseconds."""
        events = self.events
        return {
            "events": events,
            "errors": self.errors,
            "mean_us": round(self.total_ns / events / 1000, 3) if events else 0.0,
            "p50_us": round(min(percentile_ns(self.buckets, 0.50), self.max_ns) / 1000, 3),
            "p99_us": round(min(percentile_ns(self.buckets, 0.99), self.max_ns) / 1000, 3),
            "max_us": round(self.max_ns / 1000, 3),
            "outcomes": dict(sorted(self.outcomes.items())),
        }


def timing_wrapper(stats: PhaseStats) -> Callable[[Any], Generator[None, Any, Any]]:
    """Return a pluggy ``wrapper=True`` generator function that times one phase in ``stats``.

    It runs for every event, so :meth:`PhaseStats.record` is inlined (one Python call less
    per event); exceptions are counted and re-raised unchanged, ``Reject``/``Drop`` included.
    """
    buckets = stats.buckets
    record_exception = stats.record_exception

    def wrapper(event: Any) -> Generator[None, Any, Any]:
        t0 = perf_counter_ns()
        try:
            return (yield)
        except BaseException as exc:
            record_exception(exc)
            raise
        finally:
            ns = perf_counter_ns() - t0
            stats.total_ns += ns
            if ns > stats.max_ns:
                stats.max_ns = ns
            if ns < _EXACT:
                buckets[ns] += 1
            else:
                shift = ns.bit_length() - _SUB_BITS - 1
                buckets[(shift << _SUB_BITS) + (ns >> shift)] += 1

    return wrapper


class Monitor:
    """One :class:`PhaseStats` per phase, reset in place at the start of each run."""

    __slots__ = ("phases",)

    def __init__(self, phases: tuple[str, ...] = PHASES) -> None:
        self.phases = {phase: PhaseStats() for phase in phases}

    def __getitem__(self, phase: str) -> PhaseStats:
        return self.phases[phase]

    def reset(self) -> None:
        """Forget every phase's numbers."""
        for stats in self.phases.values():
            stats.reset()

    def summary(self) -> dict[str, dict[str, Any]]:
        """Return ``{phase: PhaseStats.summary()}`` in pipeline order."""
        return {phase: stats.summary() for phase, stats in self.phases.items()}
