"""Seeing what hookline does: ``-v``/``-q``, ``--log-level``, ``--log-format`` on every command
(logs on stderr, the report on stdout), and ``--trace-hooks`` (each implementation call with
its plugin, stage, duration and outcome, sampled by ``--trace-sample``), which costs nothing
when it is off."""

from __future__ import annotations

import json
import logging

import pytest
from _cli_site import Site

import hookline
from hookline.config import Config

SHOP = '''
import hookline

@hookline.hookimpl
def hookline_run_start(run):
    pass

class Cap(hookline.Stage, phase="validate", name="cap"):
    def process(self, event):
        if event.amount > 30:
            raise hookline.Reject("over the cap")

class Tag(hookline.Stage, phase="enrich", name="tag"):
    def process(self, event):
        event.tags = [*event.tags, "seen"]
'''


@pytest.fixture
def site(registry: hookline.Registry, site: Site) -> Site:
    """The shop plugin installed, its stage classes in a registry of the test's own."""
    site.install("shop", SHOP)
    return site


def lines(text: str, logger: str) -> list[str]:
    return [line for line in text.splitlines() if f" {logger}: " in line]


def test_logged_at_info_in_the_configuration_prints_on_stderr_the_report_on_stdout(
    site: Site
) -> None:
    site.config('[behaviors]\n"shop.cap" = ["logged(level=\'INFO\')"]\n')
    result = site.hookline("run", site.events(30), "--db", "out.db")
    assert result.code == 0, result.err
    logged = lines(result.err, "hookline.behaviors")
    assert len(logged) == 30
    assert all(line.startswith("INFO hookline.behaviors: shop.cap ") for line in logged)
    assert any(" ok in " in line for line in logged)
    assert "hookline.behaviors" not in result.out and "accepted" in result.out


@pytest.mark.parametrize(("options", "shown"), [
    ((), ["INFO"]),
    (("-q",), []),
    (("-v",), ["DEBUG", "INFO"]),
    (("--log-level", "warning"), []),
    (("--log-level", "DEBUG", "-q"), ["DEBUG", "INFO"]),  # an explicit level wins
])
def test_verbosity_before_or_after_the_command(
    site: Site, options: tuple[str, ...], shown: list[str]
) -> None:
    site.config('[behaviors]\n"shop.cap" = ["logged(level=\'INFO\')"]\n'
                '"shop.tag" = ["logged(level=\'DEBUG\')"]\n')
    events = site.events(10)
    for argv in (["run", events, "--db", "a.db", *options], [*options, "run", events, "--db",
                                                               "b.db"]):
        result = site.hookline(*argv)
        assert result.code == 0, result.err
        levels = sorted({line.split()[0] for line in lines(result.err, "hookline.behaviors")})
        assert levels == shown, argv


def test_json_logs_are_one_object_a_line_with_the_records_fields(site: Site) -> None:
    site.config('[behaviors]\n"shop.cap" = ["logged(level=\'INFO\')"]\n')
    result = site.hookline("run", site.events(20), "--db", "out.db", "--log-format", "json")
    assert result.code == 0
    records = [json.loads(line) for line in result.err.splitlines()]
    started = next(r for r in records if r["logger"] == "hookline.runner")
    assert started["level"] == "INFO" and started["message"].startswith("run ")
    assert started["run_id"] and started["db"] == "out.db"
    calls = [r for r in records if r["logger"] == "hookline.behaviors"]
    assert len(calls) == 20
    assert {r["stage"] for r in calls} == {"shop.cap"}
    assert {r["outcome"] for r in calls} <= {"ok", "rejected"}
    assert all(isinstance(r["duration_ms"], float) for r in calls)


def test_every_command_takes_the_options(site: Site) -> None:
    for command in (["plugins"], ["check"], ["flags"], ["generate", "-n", "1"],
                    ["new-plugin", "geo", "--dir", "scaffold"]):
        result = site.hookline(*command, "-q", "--log-format", "json", "--log-level", "ERROR")
        assert result.code == 0, (command, result.err)
    assert logging.getLogger("hookline").level == logging.NOTSET  # put back after each command
    assert not [h for h in logging.getLogger().handlers if type(h).__name__ == "_Stderr"]


def test_trace_hooks_logs_each_implementation_call(site: Site) -> None:
    result = site.hookline("run", site.events(50), "--db", "out.db", "--trace-hooks",
                           "--log-format", "json", "-q")  # -q: the trace is still shown
    assert result.code == 0, result.err
    traced = [json.loads(line) for line in result.err.splitlines()]
    traced = [r for r in traced if r["logger"] == "hookline.trace"]
    cap = [r for r in traced if r["stage"] == "shop.cap"]
    assert len(cap) == 50
    assert {(r["plugin"], r["hook"]) for r in cap} == {("shop", "hookline_validate")}
    rejected = [r for r in cap if r["outcome"] == "rejected"]
    assert rejected and all(r["detail"] == "over the cap" for r in rejected)
    tag = [r for r in traced if r["stage"] == "shop.tag"]
    assert len(tag) == 50 - len(rejected)  # a rejected event goes no further
    assert all(r["outcome"] == "ok" and r["duration_ms"] >= 0 for r in tag)
    (start,) = [r for r in traced if r["hook"] == "hookline_run_start"]
    assert start["plugin"] == "shop" and start["outcome"] == "ok"
    text = site.hookline("run", site.events(5, seed=3, name="b.jsonl"), "--db", "b.db",
                         "--trace-hooks")
    assert "INFO hookline.trace: shop.tag (enrich) ok in " in text.err


def test_trace_sample_logs_one_call_in_n_and_the_environment_turns_it_on(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKLINE_TRACE_HOOKS", "1")
    result = site.hookline("run", site.events(200, seed=4), "--db", "out.db",
                           "--trace-sample", "10", "--profile", "profile.json")
    assert result.code == 0, result.err
    cap = [line for line in lines(result.err, "hookline.trace") if "shop.cap " in line]
    assert len(cap) == 20  # --profile: every event through one plan, so exactly 1 in 10


def _plan_calls(pipeline: hookline.Pipeline) -> list[object]:
    """What the compiled validate plan calls: its ``_call_N`` globals, in order."""
    plan = pipeline.run_phases.__closure__
    assert plan is not None
    first = next(cell.cell_contents for cell in plan
                 if getattr(cell.cell_contents, "__name__", "") == "run_phase")
    namespace = first.__globals__
    return [namespace[f"_call_{i}"] for i in range(len(
        [k for k in namespace if k.startswith("_call_")]))]


def test_tracing_is_built_into_the_plans_only_when_asked(registry: hookline.Registry) -> None:
    class Cap(hookline.Stage, phase="validate", name="cap"):
        def process(self, event: hookline.Event) -> None:
            if event.amount > 5:
                raise hookline.Reject("over")

    plain = hookline.Pipeline.from_plugins([("shop", Cap)], Config())
    traced = hookline.Pipeline.from_plugins([("shop", Cap)], Config(trace_hooks=True))
    assert plain.tracer is None and traced.tracer is not None
    (call,) = _plan_calls(plain)
    assert getattr(call, "__func__", None) is Cap.process  # the stage itself: nothing between
    (wrapped,) = _plan_calls(traced)
    assert getattr(wrapped.__wrapped__, "__func__", None) is Cap.process
    event = {"event_id": "e", "user_id": "u", "kind": "view", "ts": 1, "amount": 1.0}
    assert plain.process(event).to_dict() == traced.process(event).to_dict()
    with pytest.raises(hookline.Reject) as one:
        plain.process({**event, "amount": 9.0})
    with pytest.raises(hookline.Reject) as two:
        traced.process({**event, "amount": 9.0})
    assert (one.value.reason, one.value.stage) == (two.value.reason, two.value.stage)


def test_worker_processes_log_and_trace_as_their_parent(site: Site) -> None:
    events = site.events(300)
    done = site.process("run", events, "--db", "out.db", "--executor", "process",
                        "--workers", "2", "--trace-hooks", "--log-format", "json")
    assert done.returncode == 0, done.stderr
    traced = [json.loads(line) for line in done.stderr.splitlines()]
    cap = [r for r in traced if r["logger"] == "hookline.trace" and r["stage"] == "shop.cap"]
    assert len(cap) == 300
    assert len({r["pid"] for r in cap}) == 2  # from both workers
