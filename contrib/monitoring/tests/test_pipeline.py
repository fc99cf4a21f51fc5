"""The monitoring plugin in a pipeline and in a run: counts, outcomes, the report section.

Events come from hookline's pytest plugin (the ``make_event`` fixture)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hookline
import pytest
from hookline.errors import StageFailed
from hookline.hookspecs import PHASES
from hookline.testing import EventFactory

import hookline_monitoring
from hookline_monitoring import MONITOR


@pytest.fixture
def gate() -> type[hookline.Stage]:
    """A validate stage whose outcome depends on the event's kind."""
    with hookline.Registry().activate():

        class Gate(hookline.Stage, phase="validate", name="gate"):
            def process(self, event: Any) -> None:
                if event.kind == "bad":
                    raise hookline.Reject("bad kind")
                if event.kind == "noise":
                    raise hookline.Drop()
                if event.kind == "boom":
                    raise KeyError("boom")

    return Gate


@pytest.fixture
def pipeline(gate: type[hookline.Stage]) -> Iterator[hookline.Pipeline]:
    pipeline = hookline.Pipeline.from_plugins([hookline_monitoring, ("demo", gate)])
    MONITOR.reset()
    yield pipeline
    pipeline.close()


KINDS = ["purchase"] * 7 + ["bad", "bad", "noise", "boom"]


def test_every_event_is_counted_in_every_phase_it_reaches(
    pipeline: hookline.Pipeline, make_event: EventFactory
) -> None:
    for kind in KINDS:
        try:
            pipeline.process(make_event(kind=kind))
        except (hookline.Reject, hookline.Drop, StageFailed):
            pass
    validate = MONITOR["validate"].summary()
    assert validate["events"] == len(KINDS)
    assert validate["outcomes"] == {"Drop": 1, "KeyError": 1, "Reject": 2}
    assert validate["errors"] == 1
    # Only the seven events that passed validation reach the later phases.
    for phase in ("enrich", "score"):
        assert MONITOR[phase].summary()["events"] == 7
        assert MONITOR[phase].summary()["outcomes"] == {}
    assert 0 < validate["p50_us"] <= validate["p99_us"] <= validate["max_us"]


def test_signals_and_errors_pass_through_unchanged(
    pipeline: hookline.Pipeline, make_event: EventFactory
) -> None:
    data = make_event()
    assert pipeline.process(data).to_dict() == data
    with pytest.raises(hookline.Reject) as rejected:
        pipeline.process(make_event(kind="bad"))
    assert rejected.value.reason == "bad kind"
    assert rejected.value.stage == "demo.gate"
    with pytest.raises(hookline.Drop):
        pipeline.process(make_event(kind="noise"))
    with pytest.raises(StageFailed) as failed:
        pipeline.process(make_event(kind="boom"))
    assert failed.value.stage == "demo.gate"
    assert isinstance(failed.value.error, KeyError)


def test_a_run_reports_per_phase_numbers(
    pipeline: hookline.Pipeline, make_event: EventFactory, tmp_path: Path
) -> None:
    lines = [json.dumps(make_event(kind=kind)) for kind in KINDS]
    lines.append(json.dumps(make_event.without("user_id", "ts")))  # invalid: never staged
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines) + "\n")
    MONITOR["validate"].record(10**9)  # left over from an earlier run: must be reset

    report = hookline.run([str(source)], db=str(tmp_path / "out.db"), pipeline=pipeline)

    assert report.read == len(KINDS) + 1
    section = report.sections["monitoring"]
    assert tuple(section) == PHASES
    assert section["validate"]["events"] == len(KINDS)
    assert section["validate"]["outcomes"] == {"Drop": 1, "KeyError": 1, "Reject": 2}
    assert section["validate"]["max_us"] < 10**6
    assert section["score"]["events"] == report.accepted == 7
    assert set(section["score"]) == {
        "events",
        "errors",
        "mean_us",
        "p50_us",
        "p99_us",
        "max_us",
        "outcomes",
    }
    assert "[monitoring]" in report.format()


def test_a_second_run_starts_from_zero(
    pipeline: hookline.Pipeline, make_event: EventFactory, tmp_path: Path
) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps(event) + "\n" for event in make_event.many(5)))
    first = hookline.run([str(source)], db=str(tmp_path / "a.db"), pipeline=pipeline)
    second = hookline.run([str(source)], db=str(tmp_path / "b.db"), pipeline=pipeline)
    assert first.sections["monitoring"]["validate"]["events"] == 5
    assert second.sections["monitoring"]["validate"]["events"] == 5


def test_under_the_process_executor_the_section_says_where_the_phases_ran(
    make_event: EventFactory, tmp_path: Path,
) -> None:
    """The workers' wrappers time the workers' events, not this process's: the section must
    not claim that no event went through the phases."""
    from hookline.config import Config

    source = tmp_path / "events.jsonl"
    events = [make_event(user_id=f"u-{n % 3}") for n in range(50)]  # keys for both workers
    source.write_text("".join(json.dumps(event) + "\n" for event in events))
    config = Config(plugins=("monitoring",))  # the installed plugin, found by its entry point
    report = hookline.run([str(source)], db=str(tmp_path / "out.db"), config=config,
                          pipeline=hookline.Pipeline.from_entry_points(config),
                          executor="process", workers=2)
    assert report.accepted == 50
    assert report.sections["monitoring"] == {
        "note": "the phases ran in worker processes (--executor process), where their "
                "timings stay; run inline to see them"}
