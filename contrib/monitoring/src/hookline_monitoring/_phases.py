"""Each phase's figures, read from what hookline measures anyway: no code of this plugin runs
per event.

hookline times each phase it runs on the events it samples for its stage statistics (one in
``sample_every``, 16 by default; every event under ``hookline run --profile``): a phase's
stages and wrappers together, for one event, into ``pipeline.stats.phases``. It hands them
over as the report's ``phase_stats`` and writes them as ``hookline_phase_latency_seconds``.
It counts each stage's errors, rejections and drops exactly, and the events that reached it.
A phase's events are those that reached its first stage; its errors, rejections and drops
are its stages' added up. hookline merges all of these from its workers with each batch, so
the figures are the same whichever executor ran the phases.

hookline runs only a phase that has implementations: with the three team plugins, enrich has
none, and so no figures; the report names it as not run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hookline.hookspecs import PHASES, phase_hook
from hookline.metrics import prometheus_counter


@dataclass(frozen=True)
class PhaseCounts:
    """What happened to the events in one phase that has stages, counted exactly."""

    events: int
    errors: int
    rejected: int
    dropped: int


#: The counts of a phase, as the report and the exposition name them, and what each means.
FIGURES = {
    "events": "Events that reached a phase (its first stage).",
    "errors": "Exceptions raised by a phase's stages.",
    "rejected": "Events a phase's stages sent to the dead letters.",
    "dropped": "Events a phase's stages filtered out on purpose.",
}


def stages_by_phase(pipeline: Any) -> dict[str, list[str]]:
    """Each phase's stages in the order they are called: the names their implementations
    are registered under (``fraud.velocity``, or ``fraud`` for the plugin's own function),
    as in the stage statistics. Wrappers are left out: they time or guard a phase, and
    hookline counts no events for them."""
    return {phase: [impl.plugin_name for impl in pipeline.plugins.impls(phase_hook(phase))
                    if not impl.wrapper]
            for phase in PHASES}


def counts(stats: Any, stages: Mapping[str, Sequence[str]]) -> dict[str, PhaseCounts]:
    """Each phase's counts so far from the stage statistics ``stats`` (``pipeline.stats``),
    for the phases that have stages.

    A phase's events are its first stage's: a stage quarantined during the run stops counting
    the events that reach it, so the largest count among the phase's stages is taken.
    """
    found = {}
    for phase, names in stages.items():
        if not names:
            continue
        records = [stats.stages[name] for name in names if name in stats.stages]
        found[phase] = PhaseCounts(
            events=max((record.reached or 0 for record in records), default=0),
            errors=sum(record.errors for record in records),
            rejected=sum(record.rejected for record in records),
            dropped=sum(record.dropped for record in records))
    return found


def sampling(sample_every: int) -> str:
    """How the phase latencies were sampled, in words: ``1 event in 16``."""
    return "every event" if sample_every == 1 else f"1 event in {sample_every:,}"


def summary(phase_stats: Mapping[str, Mapping[str, Any]], found: Mapping[str, PhaseCounts],
            sample_every: int) -> dict[str, Any]:
    """The report's lines about the phases: one saying how the latencies were sampled and
    which phases did not run, then one per phase that ran (``phase_stats``, the report's, in
    pipeline order): its counts, then its sampled latency (``timed``: how many events were
    timed; microseconds, ``None`` before any)."""
    ran = [phase for phase in PHASES if phase in phase_stats]
    idle = [phase for phase in PHASES if phase not in phase_stats]
    header = f"counts exact; latency timed on {sampling(sample_every)} (hookline's sample_every)"
    if idle:
        header += f"; not run (no stage): {', '.join(idle)}"
    lines: dict[str, Any] = {"phases": header}
    for phase in ran:
        counted = found.get(phase)  # None: a phase of wrappers only, which no stage counts
        lines[phase] = {figure: None if counted is None else getattr(counted, figure)
                        for figure in FIGURES} | dict(phase_stats[phase])
    return lines


def exposition(found: Mapping[str, PhaseCounts]) -> str:
    """The phases' counts in the Prometheus text format, labelled ``phase="validate"`` (their
    latency is hookline's own ``hookline_phase_latency_seconds``)."""
    return "".join(
        prometheus_counter(f"hookline_monitoring_phase_{figure}_total", description,
                           {phase: getattr(counted, figure) for phase, counted in found.items()},
                           label="phase")
        for figure, description in FIGURES.items())
