"""Per-stage statistics of a run: calls, errors, decisions, latency percentiles.

Latency is sampled: one event in ``sample_every`` runs through the probed variant of the
call plans (``--profile`` probes every event), so the common path pays nothing for it.
Errors, rejections and drops are counted exactly, from the runner's attribution, and so are
calls: per batch, from where each event's stages ended (:meth:`Stats.count`), never per
call. Latencies go into :class:`hookline.metrics.Histogram`\\ s and out through its
Prometheus writer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .metrics import Histogram, prometheus_counter, prometheus_histogram

__all__ = ["StageStats", "Stats"]


class StageStats:
    """What one stage did during a run."""

    __slots__ = ("dropped", "errors", "flag", "gate_on", "latency", "quarantined", "reached",
                 "rejected", "skipped")

    def __init__(self) -> None:
        self.errors = 0
        self.rejected = 0
        self.dropped = 0
        self.skipped = 0
        self.quarantined = False
        self.latency = Histogram()
        #: The events that reached the stage (:meth:`Stats.count`); None: not counted.
        self.reached: int | None = None
        #: The flag gating the stage (it is called only where the flag is on), and the calls
        #: that flag's decisions tell (:meth:`Stats.resolve_gates`), when they can.
        self.flag: str | None = None
        self.gate_on: int | None = None

    def exact_calls(self) -> int | None:
        """The calls counted exactly: the events that reached the stage, or for a gated stage
        those its flag let through; None when they were not counted."""
        if self.flag is not None:
            return self.gate_on
        return self.reached

    def calls(self, sample_every: int) -> int:
        """The calls of the stage: exact when counted (:meth:`exact_calls`); else estimated
        from the timed calls, those that returned (sampled: exact only when ``sample_every``
        is 1), plus the others, counted exactly."""
        exact = self.exact_calls()
        if exact is not None:
            return exact
        return self.latency.count * sample_every + self.errors + self.rejected + self.dropped

    def as_dict(self, sample_every: int) -> dict[str, Any]:
        p50, p99 = self.latency.quantile(0.5), self.latency.quantile(0.99)
        return {
            "calls": self.calls(sample_every),
            "calls_exact": sample_every == 1 or self.exact_calls() is not None,
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
        #: The sampled latency of each phase that has stages (all of its stages and wrappers
        #: for one event), timed on the same events as the stages.
        self.phases: dict[str, Histogram] = {}

    def stage(self, name: str) -> StageStats:
        found = self.stages.get(name)
        if found is None:
            found = self.stages[name] = StageStats()
        return found

    def phase(self, name: str) -> Histogram:
        found = self.phases.get(name)
        if found is None:
            found = self.phases[name] = Histogram()
        return found

    def phases_dict(self) -> dict[str, dict[str, Any]]:
        """Each phase's sampled latency: ``timed`` (how many events were timed), mean, p50,
        p99 and max in microseconds (None before any was timed)."""
        figures = {}
        for name, latency in self.phases.items():
            timed = latency.count
            figures[name] = {"timed": timed, **{
                key: None if value is None else round(value / 1000, 2) for key, value in (
                    ("mean_us", latency.sum_ns / timed if timed else None),
                    ("p50_us", latency.quantile(0.5)), ("p99_us", latency.quantile(0.99)),
                    ("max_us", latency.quantile(1.0)))}}
        return figures

    def probe(self, names: list[str]) -> Any:
        """A probe for one phase's plan: ``probe(step_index, elapsed_ns)``."""
        histograms = [self.stage(name).latency for name in names]

        def record(index: int, elapsed: int) -> None:
            histograms[index].add(elapsed)

        return record

    def count(self, order: Sequence[str], passed: int, ended: Mapping[str, int]) -> None:
        """Add one batch's calls from its outcomes: ``order`` is every stage and phase
        wrapper in the order events pass them, ``passed`` the events that went past all of
        them (accepted, or refused after the last: a duplicate found at commit, tampering),
        ``ended`` how many events ended at each (rejected, dropped or failed there). An event
        that ended at one place reached every place before it. A quarantined stage is no
        longer called, so it counts no more."""
        reached = passed
        for name in reversed(order):
            reached += ended.get(name, 0)
            stage = self.stages.get(name)
            if stage is not None and not stage.quarantined:
                stage.reached = (stage.reached or 0) + reached

    def resolve_gates(self, evaluations: Mapping[str, Sequence[int]]) -> None:
        """The calls of each gated stage from its flag's decisions (``{flag: [off, on]}``):
        exact when the flag gates that stage alone and was decided once for each event that
        reached it (a stage that also asks ``is_enabled`` for it leaves the estimate)."""
        gates: dict[str, list[StageStats]] = {}
        for stage in self.stages.values():
            if stage.flag is not None:
                gates.setdefault(stage.flag, []).append(stage)
        for flag, stages in gates.items():
            off, on = evaluations.get(flag, (0, 0))
            for stage in stages:
                exact = len(stages) == 1 and stage.reached == off + on
                stage.gate_on = on if exact else None

    def as_dict(self, order: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
        """Each stage's statistics: in ``order`` (pipeline order; the report's), then the
        others by name."""
        at = {name: index for index, name in enumerate(order)}
        names = sorted(self.stages, key=lambda name: (at.get(name, len(at)), name))
        return {name: self.stages[name].as_dict(self.sample_every) for name in names}

    def prometheus(self) -> str:
        """The statistics in the Prometheus text exposition format."""
        stages = sorted(self.stages.items())
        return (
            prometheus_counter("hookline_stage_calls_total",
                               "Calls of a stage (counted from each batch's outcomes; "
                               "estimated from the timed ones where they are not).",
                               {name: s.calls(self.sample_every) for name, s in stages})
            + prometheus_counter("hookline_stage_errors_total", "Exceptions raised by a stage.",
                                 {name: s.errors for name, s in stages})
            + prometheus_counter("hookline_stage_rejected_total",
                                 "Events a stage sent to the dead letters.",
                                 {name: s.rejected for name, s in stages})
            + prometheus_counter("hookline_stage_dropped_total",
                                 "Events a stage filtered out on purpose.",
                                 {name: s.dropped for name, s in stages})
            + prometheus_histogram("hookline_stage_latency_seconds",
                                   "Sampled latency of a stage call.",
                                   {name: s.latency for name, s in stages})
            + prometheus_histogram("hookline_phase_latency_seconds",
                                   "Sampled latency of a phase (its stages and wrappers) for "
                                   "one event.", dict(sorted(self.phases.items())),
                                   label="phase"))
