"""The monitoring plugin in a pipeline and in a run: counts, outcomes, the report section."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hookline
import pytest
from hookline.errors import StageFailed
from hookline.hookspecs import PHASES

import hookline_monitoring
from hookline_monitoring import MONITOR


def make_event(number: int, kind: str = "purchase") -> dict[str, Any]:
    """A valid event of the default schema."""
    return {
        "event_id": f"e-{number}",
        "user_id": f"u-{number % 3}",
        "kind": kind,
        "ts": 1_700_000_000_000 + number,
        "amount": float(number),
    }


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


def test_every_event_is_counted_in_every_phase_it_reaches(pipeline: hookline.Pipeline) -> None:
    for number, kind in enumerate(KINDS):
        try:
            pipeline.process(make_event(number, kind))
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


def test_signals_and_errors_pass_through_unchanged(pipeline: hookline.Pipeline) -> None:
    event = pipeline.process(make_event(1))
    assert event.to_dict()["event_id"] == "e-1"
    with pytest.raises(hookline.Reject) as rejected:
        pipeline.process(make_event(2, "bad"))
    assert rejected.value.reason == "bad kind"
    assert rejected.value.stage == "demo.gate"
    with pytest.raises(hookline.Drop):
        pipeline.process(make_event(3, "noise"))
    with pytest.raises(StageFailed) as failed:
        pipeline.process(make_event(4, "boom"))
    assert failed.value.stage == "demo.gate"
    assert isinstance(failed.value.error, KeyError)


def test_a_run_reports_per_phase_numbers(pipeline: hookline.Pipeline, tmp_path: Path) -> None:
    lines = [json.dumps(make_event(n, kind)) for n, kind in enumerate(KINDS)]
    lines.append(json.dumps({"event_id": "e-x", "kind": "purchase"}))  # invalid: never staged
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


def test_a_second_run_starts_from_zero(pipeline: hookline.Pipeline, tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps(make_event(n)) + "\n" for n in range(5)))
    first = hookline.run([str(source)], db=str(tmp_path / "a.db"), pipeline=pipeline)
    second = hookline.run([str(source)], db=str(tmp_path / "b.db"), pipeline=pipeline)
    assert first.sections["monitoring"]["validate"]["events"] == 5
    assert second.sections["monitoring"]["validate"]["events"] == 5


def test_under_the_process_executor_the_section_says_where_the_phases_ran(
    tmp_path: Path,
) -> None:
    """The workers' wrappers time the workers' events, not this process's: the section must
    not claim that no event went through the phases."""
    from hookline.config import Config

    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps(make_event(n)) + "\n" for n in range(50)))
    config = Config(plugins=("monitoring",))  # the installed plugin, found by its entry point
    report = hookline.run([str(source)], db=str(tmp_path / "out.db"), config=config,
                          pipeline=hookline.Pipeline.from_entry_points(config),
                          executor="process", workers=2)
    assert report.accepted == 50
    assert report.sections["monitoring"] == {
        "note": "the phases ran in worker processes (--executor process), where their "
                "timings stay; run inline to see them"}
