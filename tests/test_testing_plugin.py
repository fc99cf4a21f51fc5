"""hookline's pytest plugin: the fixtures in use, and the plugin as pytest loads it.

The first tests use the fixtures as a plugin author does; docs/testing.md shows them. The
others run pytest inside pytest (``pytester``) to check how the plugin is loaded and isolated.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest

import hookline
from hookline import fields, testing
from hookline._registry import current_registry
from hookline.testing import AssertContract, EventFactory, PipelineFactory, RunReporter

pytest_plugins = ["pytester"]

# The plugin's fixtures, whether or not pytest loaded the plugin through its entry point.
hookline_registry = testing.hookline_registry
make_pipeline = testing.make_pipeline
make_event = testing.make_event
run_report = testing.run_report
assert_contract = testing.assert_contract_fixture


# -- the fixtures, as docs/testing.md shows them --------------------------------------------------


def test_a_stage_defined_in_the_test(
    hookline_registry: hookline.Registry, make_pipeline: PipelineFactory,
    make_event: EventFactory,
) -> None:
    class BigRefunds(hookline.Stage, phase="validate", name="big_refunds"):
        def process(self, event: hookline.Event) -> None:
            if event.kind == "refund" and event.amount > 100:
                raise hookline.Reject(f"a refund of {event.amount} needs a review")

    pipeline = make_pipeline(("refunds", BigRefunds))
    with pytest.raises(hookline.Reject) as rejected:
        pipeline.process(make_event(kind="refund", amount=500))
    assert rejected.value.reason == "a refund of 500 needs a review"
    assert rejected.value.stage == "refunds.big_refunds"
    assert pipeline.process(make_event(kind="refund", amount=50)).amount == 50
    assert list(hookline_registry) == [BigRefunds.__stage__]  # recorded here only


def test_settings_and_flags(
    hookline_registry: hookline.Registry, make_pipeline: PipelineFactory,
    make_event: EventFactory,
) -> None:
    class RankingFlags:  # a hook object: the plugin "ranking" declares the flag
        @hookline.hookimpl
        def hookline_flags(self) -> list[dict[str, Any]]:
            return [{"name": "boost.vip", "default": False}]

    class Boost(hookline.Stage, phase="score", name="boost", flag="boost.vip"):
        class Settings(hookline.Settings):
            tag = fields.String(default="boosted")

        def process(self, event: hookline.Event) -> None:
            event.tags = [*event.tags, self.settings.tag]

    plugins = [("ranking", RankingFlags()), ("boost", Boost)]
    assert make_pipeline(*plugins).process(make_event()).tags == []  # the flag is off
    boosted = make_pipeline(*plugins, flags={"boost.vip": "on"},
                            settings={"boost": {"tag": "vip"}})
    assert boosted.process(make_event()).tags == ["vip"]


def test_events_with_defaults_and_overrides(make_event: EventFactory) -> None:
    first, second = make_event(), make_event(amount=99.5, tags=["web"])
    assert first["event_id"] == "evt-000001" and second["event_id"] == "evt-000002"
    assert second["ts"] > first["ts"]
    assert hookline.DefaultEvent.from_dict(second).amount == 99.5
    assert "user_id" not in make_event.without("user_id")
    assert {event["kind"] for event in make_event.many(3, kind="click")} == {"click"}
    assert make_event.event(kind="view").kind == "view"  # a validated DefaultEvent


def test_a_whole_run_into_sqlite(
    hookline_registry: hookline.Registry, make_pipeline: PipelineFactory,
    make_event: EventFactory, run_report: RunReporter,
) -> None:
    class NoTestTraffic(hookline.Stage, phase="validate", name="no_test_traffic"):
        def process(self, event: hookline.Event) -> None:
            if "test" in event.tags:
                raise hookline.Reject("test traffic")

    pipeline = make_pipeline(("qa", NoTestTraffic))
    result = run_report(pipeline, [
        make_event(), make_event(tags=["test"]), "not json", make_event.without("ts")])
    report = result.report
    assert (report.read, report.accepted, report.dead_lettered) == (4, 1, 3)
    assert [row["event_id"] for row in result.events] == ["evt-000001"]
    assert result.query("SELECT reason, plugin FROM dead_letters WHERE stage = ?",
                        "qa.no_test_traffic") == [("test traffic", "qa")]
    again = run_report(pipeline, [make_event(event_id="evt-000001")], db=result.db)
    assert (again.report.duplicates, again.report.dead_lettered) == (1, 0)
    assert len(again.dead_letters) == 3  # a duplicate is counted, not stored again


def test_the_stage_contract(
    hookline_registry: hookline.Registry, assert_contract: AssertContract
) -> None:
    class Tag(hookline.Stage, phase="enrich", name="tag"):
        def process(self, event: hookline.Event) -> None:
            event.tags = [*event.tags, "seen"]

    assert_contract(Tag)

    class Broken(hookline.Stage, phase="enrich", name="broken"):
        def process(self, evt: hookline.Event) -> int:  # type: ignore[override]
            return 0

    with pytest.raises(AssertionError) as failed:
        assert_contract(Broken)
    assert "breaks the stage contract (2 violations)" in str(failed.value)
    assert "the parameter is named 'evt'; name it 'event'" in str(failed.value)


# -- isolation ------------------------------------------------------------------------------------


def test_the_registry_is_current_during_the_test(hookline_registry: hookline.Registry) -> None:
    assert current_registry() is hookline_registry


def test_each_pipeline_has_flags_of_its_own(
    hookline_registry: hookline.Registry, make_pipeline: PipelineFactory,
    make_event: EventFactory,
) -> None:
    def declaring(default: bool) -> Any:
        class Declare:
            @hookline.hookimpl
            def hookline_flags(self) -> list[dict[str, Any]]:
                return [{"name": "shared.flag", "default": default}]
        return Declare()

    # the same flag declared differently by two pipelines' plugins: no clash between them
    assert not make_pipeline(declaring(False)).flags.is_enabled("shared.flag")
    assert make_pipeline(declaring(True)).flags.is_enabled("shared.flag")
    assert "shared.flag" not in hookline.flags.default_flags.declared


def test_a_plugin_that_cannot_load_raises_at_once(
    hookline_registry: hookline.Registry, make_pipeline: PipelineFactory
) -> None:
    class Capped(hookline.Stage, phase="validate", name="capped"):
        class Settings(hookline.Settings):
            cap = fields.Number(minimum=0)

        def process(self, event: hookline.Event) -> None:
            pass

    with pytest.raises(hookline.errors.PluginError, match=r"capped.*cap: must be ≥ 0"):
        make_pipeline(("limits", Capped), settings={"limits": {"cap": -1}})


def test_run_result_refuses_what_is_not_a_table_name(
    make_pipeline: PipelineFactory, make_event: EventFactory, run_report: RunReporter
) -> None:
    result = run_report(make_pipeline(), [make_event()])
    assert len(result.rows("agg_by_user")) == 1
    with pytest.raises(ValueError, match="not a table name"):
        result.rows("events; DROP TABLE events")


# -- the plugin as pytest loads it ----------------------------------------------------------------

INNER = '''
import hookline
import pytest


def test_fixtures(hookline_registry, make_pipeline, make_event, run_report, assert_contract):
    class Tag(hookline.Stage, phase="enrich", name="tag"):
        def process(self, event):
            event.tags = [*event.tags, "inner"]

    assert_contract(Tag)
    pipeline = make_pipeline(("inner", Tag))
    assert pipeline.process(make_event()).tags == ["inner"]
    assert run_report(pipeline, [make_event()]).report.accepted == 1


def test_no_stage_leaks_from_the_previous_test(hookline_registry):
    assert len(hookline_registry) == 0
'''

BROKEN = '''
import hookline


def test_contract(hookline_registry, assert_contract):
    class Velocity(hookline.Stage, phase="validate", name="velocity"):
        def process(self, event, window) -> str:
            return "ok"

    assert_contract(Velocity)
'''


@pytest.fixture
def isolated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytest inside pytest, loading only the plugins named with -p."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("HOOKLINE_FLAGS", "no.such.flag=on")  # must not reach the pipelines
    # this process imported hookline.testing already: pytest cannot rewrite its asserts
    pytester.makeini("[pytest]\nfilterwarnings = ignore::pytest.PytestAssertRewriteWarning\n")
    return pytester


def test_the_fixtures_load_with_dash_p(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_inner=INNER)
    isolated.runpytest("-p", "hookline.testing").assert_outcomes(passed=2)


def test_assert_contract_fails_the_test_with_every_violation(isolated: pytest.Pytester) -> None:
    path = isolated.makepyfile(test_broken=BROKEN)
    result = isolated.runpytest("-p", "hookline.testing")
    result.assert_outcomes(failed=1)
    lines = path.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "def process" in text)
    result.stdout.fnmatch_lines([
        "*AssertionError: * breaks the stage contract (2 violations):",
        f"*{path}:{line}: *.velocity: Velocity.process(self, event, window): parameter 'window' "
        "is required, but hookline_validate(event) passes only the event*wrong-parameters]",
        f"*{path}:{line}: *.velocity: Velocity.process is annotated -> str, but "
        "hookline_validate returns Event | None*annotation-mismatch]",
    ])


def test_without_the_plugin_there_are_no_fixtures(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_inner=INNER)
    result = isolated.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*fixture 'hookline_registry' not found*"])


def test_the_entry_point_loads_the_plugin(pytester: pytest.Pytester) -> None:
    """Installed hookline declares ``pytest11: hookline = "hookline.testing"``."""
    found = importlib.metadata.entry_points(group="pytest11", name="hookline")
    assert [ep.value for ep in found] == ["hookline.testing"], (
        "hookline's pyproject.toml must declare [project.entry-points.pytest11] "
        'hookline = "hookline.testing" (then reinstall it)')
    pytester.makepyfile(test_inner=INNER)
    pytester.runpytest().assert_outcomes(passed=2)
    pytester.runpytest("-p", "no:hookline").assert_outcomes(errors=2)
