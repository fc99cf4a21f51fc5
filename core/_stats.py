"""Per-stage statistics of a run: calls, errors, decisions, latency percentiles.

Latency is sampled: one event in ``sample_every`` runs through the probed variant of the
call plans (``--profile`` probes every event), so the common path pays nothing for it.
Errors, rejections and drops are counted exactly, from the runner's attribution. Latencies
go into :class:`hookline.metrics.Histogram`\\ s and out through its Prometheus writer.
"""

from __future__ import annotations

from typing import Any

from .metrics import Histogram, prometheus_counter, prometheus_histogram

__all__ = ["StageStats", "Stats"]


class StageStats:
    """What one stage did during a run."""

    __slots__ = ("dropped", "errors", "latency", "quarantined", "rejected", "skipped")

    def __init__(self) -> None:
        self.errors = 0
        self.rejected = 0
        self.dropped = 0
        self.skipped = 0
        self.quarantined = False
        self.latency = Histogram()

    def as_dict(self, sample_every: int) -> dict[str, Any]:
        p50, p99 = self.latency.quantile(0.5), self.latency.quantile(0.99)
        return {
            # Timed calls are those that returned (sampled); the others are counted exactly.
            "calls": self.latency.count * sample_every + self.errors + self.rejected
            + self.dropped,
            "calls_exact": sample_every == 1,
            "errors": self.errors,
            "rejected": self.rejected,
            "dropped": self.dropped,
            "skipped_errors": self.skipped,
            "p50_us": None if p50 is None else round(p50 / 1000, 2),
            "p99_us": None if p99 is None else round(p99 / 1000, 2),
            "quarantined": self.quarantined,
        }


class Stats:
    """Statistics of every stage of a pipeline, keyed by qualified stage name."""

    def __init__(self, sample_every: int = 16) -> None:
        self.sample_every = max(1, sample_every)
        self.stages: dict[str, StageStats] = {}

    def stage(self, name: str) -> StageStats:
        found = self.stages.get(name)
        if found is None:
            found = self.stages[name] = StageStats()
        return found

    def probe(self, names: list[str]) -> Any:
        """A probe for one phase's plan: ``probe(step_index, elapsed_ns)``."""
        histograms = [self.stage(name).latency for name in names]

        def record(index: int, elapsed: int) -> None:
            histograms[index].add(elapsed)

        return record

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {name: s.as_dict(self.sample_every) for name, s in sorted(self.stages.items())}

    def prometheus(self) -> str:
        """The statistics in the Prometheus text exposition format."""
        stages = sorted(self.stages.items())
        return (
            prometheus_counter("hookline_stage_errors_total", "Exceptions raised by a stage.",
                               {name: s.errors for name, s in stages})
            + prometheus_counter("hookline_stage_rejected_total",
                                 "Events a stage sent to the dead letters.",
                                 {name: s.rejected for name, s in stages})
            + prometheus_histogram("hookline_stage_latency_seconds",
                                   "Sampled latency of a stage call.",
                                   {name: s.latency for name, s in stages}))
