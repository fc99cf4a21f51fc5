"""Per-stage statistics of a run: calls, errors, decisions, latency percentiles.

Latency is sampled: one event in ``sample_every`` runs through the probed variant of the
call plans (``--profile`` probes every event), so the common path pays nothing for it.
Errors, rejections and drops are counted exactly, from the runner's attribution.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

__all__ = ["Histogram", "StageStats", "Stats"]

# Bucket upper bounds in nanoseconds: 4 per decade from 100 ns to 100 s.
_BOUNDS = [int(100 * 10 ** (i / 4)) for i in range(4 * 9 + 1)]


class Histogram:
    """A fixed log-bucket latency histogram: cheap to add to, mergeable, approximate quantiles."""

    __slots__ = ("counts", "total", "total_ns")

    def __init__(self) -> None:
        self.counts = [0] * (len(_BOUNDS) + 1)
        self.total = 0
        self.total_ns = 0

    def add(self, ns: int) -> None:
        self.counts[bisect.bisect_left(_BOUNDS, ns)] += 1
        self.total += 1
        self.total_ns += ns

    def merge(self, other: Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts)]
        self.total += other.total
        self.total_ns += other.total_ns

    def quantile(self, q: float) -> float | None:
        """The upper bound (ns) of the bucket holding the q-quantile; None when empty."""
        if not self.total:
            return None
        rank = q * self.total
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank and count:
                return float(_BOUNDS[min(index, len(_BOUNDS) - 1)])
        return float(_BOUNDS[-1])

    def buckets(self) -> Iterable[tuple[float, int]]:
        """Cumulative ``(upper bound in seconds, count)`` pairs, Prometheus style."""
        seen = 0
        for bound, count in zip(_BOUNDS, self.counts):
            seen += count
            yield bound / 1e9, seen


class StageStats:
    """What one stage did during a run."""

    __slots__ = ("dropped", "errors", "latency", "quarantined", "rejected", "sampled", "skipped")

    def __init__(self) -> None:
        self.sampled = 0
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
            "calls": self.latency.total * sample_every + self.errors + self.rejected
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
        lines = [
            "# HELP hookline_stage_errors_total Exceptions raised by a stage.",
            "# TYPE hookline_stage_errors_total counter",
        ]
        for name, s in sorted(self.stages.items()):
            lines.append(f'hookline_stage_errors_total{{stage="{name}"}} {s.errors}')
        lines += ["# HELP hookline_stage_rejected_total Events a stage sent to the dead letters.",
                  "# TYPE hookline_stage_rejected_total counter"]
        for name, s in sorted(self.stages.items()):
            lines.append(f'hookline_stage_rejected_total{{stage="{name}"}} {s.rejected}')
        lines += ["# HELP hookline_stage_latency_seconds Sampled latency of a stage call.",
                  "# TYPE hookline_stage_latency_seconds histogram"]
        for name, s in sorted(self.stages.items()):
            for bound, count in s.latency.buckets():
                lines.append(f'hookline_stage_latency_seconds_bucket{{stage="{name}",'
                             f'le="{bound:.9g}"}} {count}')
            lines.append(f'hookline_stage_latency_seconds_bucket{{stage="{name}",le="+Inf"}} '
                         f"{s.latency.total}")
            lines.append(f'hookline_stage_latency_seconds_sum{{stage="{name}"}} '
                         f"{s.latency.total_ns / 1e9:.9f}")
            lines.append(f'hookline_stage_latency_seconds_count{{stage="{name}"}} '
                         f"{s.latency.total}")
        return "\n".join(lines) + "\n"
