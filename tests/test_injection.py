"""Behaviours injected around stages by configuration or by code, without editing them."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

import hookline
from hookline.behaviors import applied, retry, timeout
from hookline.config import Config, ConfigError


class Flaky(hookline.Stage, phase="enrich", name="flaky"):
    """Fails the first two calls of each event, then succeeds."""

    def __init__(self, settings: object = None) -> None:
        super().__init__()
        self.calls: dict[str, int] = {}

    def process(self, event: hookline.Event) -> None:
        self.calls[event.event_id] = self.calls.get(event.event_id, 0) + 1
        if self.calls[event.event_id] <= 2:
            raise ConnectionError("try again")


class Sleepy(hookline.Stage, phase="enrich", name="sleepy"):
    def process(self, event: hookline.Event) -> None:
        if event.kind == "slow":
            time.sleep(2)


class AsyncSleepy(hookline.Stage, phase="enrich", name="async_sleepy"):
    async def process(self, event: hookline.Event) -> None:
        if event.kind == "slow":
            await asyncio.sleep(2)


def _event(event_id: str = "e1", kind: str = "click") -> dict[str, object]:
    return {"event_id": event_id, "user_id": "u", "kind": kind, "ts": 1}


def test_config_injects_retry_and_plugins_listing_shows_it() -> None:
    config = Config.from_mapping({"behaviors": {"team.*": ["retry(attempts=3)"]}},
                                 source="hookline.toml")
    pipeline = hookline.Pipeline.from_plugins([("team", Flaky)], config)
    assert pipeline.process(_event()).event_id == "e1"
    [record] = pipeline.plugins.records
    assert record.stages[0].as_dict()["behaviors"] == [
        {"spec": "retry(attempts=3)", "source": "hookline.toml [behaviors] 'team.*'"}]
    fewer = Config.from_mapping({"behaviors": {"team.flaky": ["retry(attempts=2)"]}})
    with pytest.raises(hookline.StageFailed, match="try again"):
        hookline.Pipeline.from_plugins([("team", Flaky)], fewer).process(_event())


def test_the_listing_is_outermost_first_across_rules_and_code() -> None:
    config = Config.from_mapping({"behaviors": {"team.*": ["timed()", "retry(attempts=3)"],
                                                "team.flaky": ["logged()"]}},
                                 source="hookline.toml")
    pipeline = hookline.Pipeline.from_plugins([("team", Flaky)], config)
    pipeline.inject("team", "cached()")
    [record] = pipeline.plugins.records
    listed = [(b["spec"], b["source"]) for b in record.stages[0].as_dict()["behaviors"]]
    assert listed == [("cached()", "code: Pipeline.inject 'team'"),
                      ("timed()", "hookline.toml [behaviors] 'team.*'"),
                      ("retry(attempts=3)", "hookline.toml [behaviors] 'team.*'"),
                      ("logged()", "hookline.toml [behaviors] 'team.flaky'")]
    [impl] = pipeline._phase_impls()
    assert [b.spec for b in applied(impl.function)] == [spec for spec, _ in listed]


def test_code_injection_and_a_bad_spec_in_config() -> None:
    pipeline = hookline.Pipeline.from_plugins([("team", Flaky)])
    with pytest.raises(hookline.StageFailed):
        pipeline.process(_event("a"))
    assert pipeline.inject("team", retry(attempts=3)) == ["team.flaky"]
    assert pipeline.process(_event("b")).event_id == "b"
    with pytest.raises(ConfigError, match="retyr"):
        Config.from_mapping({"behaviors": {"team.*": ["retyr(attempts=3)"]}})


@pytest.mark.parametrize(("stage", "name"), [(Sleepy, "team.sleepy"),
                                            (AsyncSleepy, "team.async_sleepy")],
                         ids=["sync", "async"])
def test_a_timed_out_stage_is_dead_lettered_with_reason_timeout(
    tmp_path: Path, stage: type[hookline.Stage], name: str,
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(_event(f"e{i}", "slow" if i == 3 else "click"))
                                for i in range(6)) + "\n")
    pipeline = hookline.Pipeline.from_plugins([("team", stage)])
    pipeline.inject(name, timeout(0.05))
    started = time.monotonic()
    report = hookline.run([str(source)], db=str(tmp_path / "o.db"), pipeline=pipeline)
    assert time.monotonic() - started < 1.5, "the run must not wait for the sleeper"
    assert (report.accepted, report.dead_lettered) == (5, 1)
    [reason] = report.reasons
    assert reason.startswith(f"timeout after 0.05 s in {name}")
