"""Each phase's figures in the report: counted exactly from the stages' statistics, timed by
hookline on the events it samples, and nothing of the plugin run per event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hookline
from hookline.config import Config
from hookline.hookspecs import PHASES, phase_hook
from hookline.testing import EventFactory, PipelineFactory, RunReporter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hookline_monitoring

#: What the gate plugin does with each kind (tests/_support.py), and what the scorer below
#: does with a "big" purchase.
KINDS = ("purchase", "big", "bad", "noise", "boom")
LATENCY = ("timed", "mean_us", "p50_us", "p99_us", "max_us")


class Scorer:
    """A plugin's own ``hookline_score`` function (not a Stage): drops the big purchases."""

    @hookline.hookimpl
    def hookline_score(self, event: Any) -> None:
        if event.amount > 1000:
            raise hookline.Drop("too big to rank")


class Timer:
    """A plugin timing the score phase with a wrapper of its own, and nothing else."""

    @hookline.hookimpl(wrapper=True)
    def hookline_score(self, event: Any) -> Any:
        return (yield)


def lines_of(kinds: list[str], make_event: EventFactory) -> list[dict[str, Any]]:
    return [make_event(kind="purchase" if kind == "big" else kind,
                       amount=5000.0 if kind == "big" else 10.0) for kind in kinds]


def test_the_plugin_implements_no_phase_hook_so_nothing_of_it_runs_per_event(
        site: Path) -> None:
    pipeline = hookline.Pipeline.from_entry_points(Config(plugins=("monitoring", "gate")))
    implementations = {phase: [(impl.plugin_name, impl.wrapper)
                               for impl in pipeline.plugins.impls(phase_hook(phase))]
                       for phase in PHASES}
    assert implementations == {"validate": [("gate.check", False)],
                               "enrich": [("gate.slow", False)], "score": []}
    alone = hookline.Pipeline.from_entry_points(Config(plugins=("monitoring",)))
    assert alone.stats.phases == {}  # no phase for hookline to run, and none timed


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=40),
       sample_every=st.sampled_from([1, 2, 5, 16]))
def test_each_phase_is_counted_exactly_and_timed_on_the_sampled_events(
        kinds: list[str], sample_every: int, make_pipeline: PipelineFactory,
        make_event: EventFactory, run_report: RunReporter, gate: Any, tmp_path: Path) -> None:
    pipeline = make_pipeline(hookline_monitoring, ("gate", gate), ("scorer", Scorer()),
                             settings={"monitoring": {"tracing": False}},
                             config=Config(batch_size=7, sample_every=sample_every))
    run = run_report(pipeline, lines_of(kinds, make_event),
                     db=tmp_path / f"run-{run_report.runs}.db")
    section = run.report.sections["monitoring"]

    def sampled(*passing: str) -> int:  # lines are numbered from 1; a phase that raised
        return sum(1 for number, kind in enumerate(kinds, 1)  # on an event is not timed
                   if number % sample_every == 0 and kind in passing)

    def count(*chosen: str) -> int:
        return sum(kind in chosen for kind in kinds)

    figures = {phase: {key: section[phase][key] for key in
                       ("events", "errors", "rejected", "dropped", "timed")}
               for phase in PHASES}
    assert figures == {
        "validate": {"events": len(kinds), "errors": count("boom"), "rejected": count("bad"),
                     "dropped": count("noise"), "timed": sampled("purchase", "big")},
        "enrich": {"events": count("purchase", "big"), "errors": 0, "rejected": 0,
                   "dropped": 0, "timed": sampled("purchase", "big")},
        "score": {"events": count("purchase", "big"), "errors": 0, "rejected": 0,
                  "dropped": count("big"), "timed": sampled("purchase")},
    }
    for phase in PHASES:  # the latency is hookline's own, as the report keeps it
        assert {key: section[phase][key] for key in LATENCY} == run.report.phase_stats[phase]
    every = "every event" if sample_every == 1 else f"1 event in {sample_every}"
    assert section["phases"] == (
        f"counts exact; latency timed on {every} (hookline's sample_every)")


def test_the_report_says_which_phase_did_not_run_and_that_latency_is_sampled(
        make_pipeline: PipelineFactory, make_event: EventFactory, run_report: RunReporter,
        gate: Any) -> None:
    pipeline = make_pipeline(hookline_monitoring, ("gate", gate),
                             settings={"monitoring": {"tracing": False}})
    kinds = ["purchase"] * 40
    kinds[15] = "bad"  # line 16: sampled, but its validate phase raised
    report = run_report(pipeline, lines_of(kinds, make_event)).report

    text = report.format()
    assert ("phases: counts exact; latency timed on 1 event in 16 (hookline's sample_every); "
            "not run (no stage): score") in text
    assert "    validate: events 40, errors 0, rejected 1, dropped 0, timed 1, mean_us " in text
    assert "    enrich: events 39, errors 0, rejected 0, dropped 0, timed 1, mean_us " in text
    assert "score" not in report.sections["monitoring"]
    latency = report.sections["monitoring"]["validate"]
    assert 0 < latency["p50_us"] <= latency["p99_us"] <= latency["max_us"]


def test_a_phase_of_wrappers_only_is_timed_but_has_no_counts(
        make_pipeline: PipelineFactory, make_event: EventFactory, run_report: RunReporter,
        gate: Any) -> None:
    pipeline = make_pipeline(hookline_monitoring, ("gate", gate), ("timer", Timer()),
                             settings={"monitoring": {"tracing": False}},
                             config=Config(sample_every=1))
    report = run_report(pipeline, lines_of(["purchase"] * 5 + ["bad"], make_event)).report

    score = report.sections["monitoring"]["score"]
    counts = ("events", "errors", "rejected", "dropped")
    assert {key: score[key] for key in counts} == dict.fromkeys(counts)  # all None
    assert score["timed"] == 5
    assert "    score: events -, errors -, rejected -, dropped -, timed 5," in report.format()


def test_a_run_that_read_no_event_shows_its_phases_at_zero(
        make_pipeline: PipelineFactory, run_report: RunReporter, gate: Any) -> None:
    pipeline = make_pipeline(hookline_monitoring, ("gate", gate),
                             settings={"monitoring": {"tracing": False}})
    section = run_report(pipeline, []).report.sections["monitoring"]
    assert section["batches"] == 0
    for phase in ("validate", "enrich"):
        assert section[phase] == {"events": 0, "errors": 0, "rejected": 0, "dropped": 0,
                                  "timed": 0, "mean_us": None, "p50_us": None,
                                  "p99_us": None, "max_us": None}
