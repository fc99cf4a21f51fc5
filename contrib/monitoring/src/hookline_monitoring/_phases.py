"""A timing wrapper per phase, recording where hookline merges timings from its workers.

Each phase's calls go into the series ``monitoring.<phase>`` of
:data:`hookline.behaviors.DEFAULT_METRICS`, the :class:`hookline.metrics.Metrics` that the
``timed()`` behaviour records into: hookline merges it from the worker processes of
``--executor process`` when they finish, shows it in the report's ``timed`` section and writes
it to ``--metrics-file`` (``hookline_timed_*``). So the phase timings are the same figures
whichever executor ran the phases, with no channel of this plugin's own between processes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from time import perf_counter_ns
from typing import Any

from hookline.behaviors import DEFAULT_METRICS
from hookline.metrics import SAMPLE, Histogram, bucket_index

from hookline_monitoring._settings import NAME


def series_name(phase: str) -> str:
    """The name a phase's timings have in the metrics: ``monitoring.validate``."""
    return f"{NAME}.{phase}"


def phase_series(phase: str) -> tuple[Histogram, list[int]]:
    """The latency histogram and the one-item error count a phase's wrapper records into."""
    return DEFAULT_METRICS.series(series_name(phase))


def reset(phases: tuple[str, ...]) -> None:
    """Start the phases' series from zero (a run's figures are the run's own), in place:
    the wrappers go on recording into the same objects. Other series are left alone."""
    for phase in phases:
        latency, errors = phase_series(phase)
        latency.reset()
        errors[0] = 0


def timing_wrapper(latency: Histogram, errors: list[int]
                   ) -> Callable[[Any], Generator[None, Any, Any]]:
    """A pluggy ``wrapper=True`` generator function that times each call of a phase into
    ``latency`` and counts, in ``errors[0]``, the calls that raised an ``Exception``.

    It runs for every event, so it records as :class:`hookline.metrics.Histogram` allows code
    on a hot path to: one addition to the bucket, no method call. ``Reject`` and ``Drop`` are
    decisions, not errors (``BaseException``\\ s): they are timed as calls and pass through
    unchanged, as does every exception.
    """
    bins = latency.bins

    def wrapper(event: Any) -> Generator[None, Any, Any]:
        t0 = perf_counter_ns()
        try:
            return (yield)
        except Exception:
            errors[0] += 1
            raise
        finally:
            ns = perf_counter_ns() - t0
            bins[bucket_index(ns)] += ns + SAMPLE

    return wrapper
