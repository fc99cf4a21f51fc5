"""One batch's figures, from the run's figures so far.

``hookline_batch_committed`` hands over the run's counts so far (the report) and each stage's
statistics so far (``pipeline.stats``): both only grow, so a batch's figures are the
difference between two calls. hookline brings the workers' counts and latency samples with
each batch, so the figures are the same whichever executor processed it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from hookline.metrics import Histogram


@dataclass(frozen=True)
class StageFigures:
    """What one stage did in one batch.

    ``calls`` is estimated as hookline's stage table estimates it: the timed calls (one event
    in ``sample_every``) scaled up, plus the errors, rejections and drops, which are exact.
    ``latency`` holds the batch's sampled calls.
    """

    name: str
    calls: int
    errors: int
    rejected: int
    dropped: int
    latency: Histogram

    @property
    def error_rate(self) -> float:
        """The share of the calls that raised (0.0 without calls)."""
        return self.errors / self.calls if self.calls else 0.0

    def latency_ms(self, q: float) -> float | None:
        """The ``q``-quantile of the sampled calls' latency in ms (None without samples)."""
        ns = self.latency.quantile(q)
        return None if ns is None else ns / 1e6


@dataclass(frozen=True)
class BatchFigures:
    """One committed batch: its events by outcome, its duration and its stages' figures.

    ``seconds`` runs from the previous batch's commit (the run's start for the first) to
    this one's; ``start_ns``/``end_ns`` are the same moments in epoch nanoseconds.
    """

    number: int
    read: int
    accepted: int
    dropped: int
    dead_lettered: int
    seconds: float
    start_ns: int
    end_ns: int
    sample_every: int
    stages: dict[str, StageFigures]

    @property
    def dead_letter_ratio(self) -> float:
        return self.dead_lettered / self.read if self.read else 0.0

    @property
    def events_per_s(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0


class Tracker:
    """Turns the run's figures so far, at each committed batch, into that batch's figures."""

    def __init__(self) -> None:
        self.batches = 0
        self._counts = (0, 0, 0, 0)  # read, accepted, dropped, dead-lettered
        self._stages: dict[str, tuple[tuple[int, ...], list[int]]] = {}
        self._clock, self._wall = time.perf_counter(), time.time_ns()
        #: When the run started (epoch ns): the first batch's start.
        self.started_ns = self._wall

    def batch(self, report: Any, stats: Any) -> BatchFigures | None:
        """The figures of the batch committed since the previous call (or since this tracker
        was made, at the run's start); None for a batch without events (the checkpoint
        moving past blank lines at the end of an input), which is not counted: its time
        goes to the next batch."""
        clock, wall = time.perf_counter(), time.time_ns()
        counts = (report.read, report.accepted, report.dropped, report.dead_lettered)
        read, accepted, dropped, dead = _minus(counts, self._counts)
        if not read:
            return None
        stages = {}
        for name, stage in stats.stages.items():
            now = (stage.calls(stats.sample_every), stage.errors, stage.rejected, stage.dropped)
            before, bins = self._stages.get(name, ((0, 0, 0, 0), [0] * len(stage.latency.bins)))
            self._stages[name] = now, list(stage.latency.bins)
            latency = Histogram()
            latency.bins[:] = _minus(stage.latency.bins, bins)
            calls, errors, rejected, drops = _minus(now, before)
            if calls:
                stages[name] = StageFigures(name, calls, errors, rejected, drops, latency)
        self.batches += 1
        figures = BatchFigures(self.batches, read, accepted, dropped, dead, clock - self._clock,
                               self._wall, wall, stats.sample_every, stages)
        self._counts, self._clock, self._wall = counts, clock, wall
        return figures


def _minus(now: tuple[int, ...] | list[int], before: tuple[int, ...] | list[int]) -> list[int]:
    return [a - b for a, b in zip(now, before)]
