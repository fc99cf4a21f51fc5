"""The pipeline: phases in order, signals, wrappers driven per event, and `process` as the
only way to run a phase (the calling rules themselves: test_fold.py, test_pluggy_rules.py)."""

from __future__ import annotations

import asyncio
import types
from typing import Any

import pytest

import hookline
from hookline import fields, hookimpl
from hookline.errors import PluginError


def _event(**overrides: Any) -> dict[str, Any]:
    return {"event_id": "e1", "user_id": "u1", "kind": "click", "ts": 1, **overrides}


def test_phases_run_in_order_and_return_the_final_event(registry: hookline.Registry) -> None:
    seen: list[str] = []

    class Score(hookline.Stage, phase="score"):
        def process(self, event: hookline.Event) -> None:
            seen.append("score")

    class Validate(hookline.Stage, phase="validate"):
        def process(self, event: hookline.Event) -> None:
            seen.append("validate")

    class Enrich(hookline.Stage, phase="enrich"):
        def process(self, event: hookline.Event) -> None:
            seen.append("enrich")
            event.amount = 2.5

    pipeline = hookline.Pipeline.from_plugins([Score, Enrich, Validate])
    assert pipeline.process(_event()).amount == 2.5
    assert seen == ["validate", "enrich", "score"]


def test_a_returned_event_replaces_the_event_for_the_next_stage(
    registry: hookline.Registry,
) -> None:
    class Replace(hookline.Stage, phase="enrich", name="a_replace"):
        def process(self, event: hookline.Event) -> hookline.Event:
            return type(event).from_dict({**event.to_dict(), "kind": "replaced"})

    class Check(hookline.Stage, phase="enrich", name="b_check"):
        def process(self, event: hookline.Event) -> hookline.Event:
            assert event.kind == "replaced"
            return event  # the seed's `return event` works

    assert hookline.Pipeline.from_plugins([Replace, Check]).process(_event()).kind == "replaced"


def test_a_stage_returning_something_else_fails_with_its_name(
    registry: hookline.Registry,
) -> None:
    class Wrong(hookline.Stage, phase="enrich", name="wrong"):
        def process(self, event: hookline.Event) -> Any:
            return {"kind": "dict"}

    with pytest.raises(hookline.StageFailed, match="wrong returned dict") as info:
        hookline.Pipeline.from_plugins([("p", Wrong)]).process(_event())
    assert info.value.stage == "p.wrong"


def test_signals_carry_the_stage_and_errors_are_attributed(registry: hookline.Registry) -> None:
    class Ok(hookline.Stage, phase="validate", name="a_ok"):
        def process(self, event: hookline.Event) -> None:
            pass

    class Blocker(hookline.Stage, phase="validate", name="b_block"):
        def process(self, event: hookline.Event) -> None:
            if event.kind == "bad":
                raise hookline.Reject("kind is bad")
            if event.kind == "noise":
                raise hookline.Drop()
            if event.kind == "boom":
                raise KeyError("lookup failed")

    pipeline = hookline.Pipeline.from_plugins([("team", Ok), ("team", Blocker)])
    with pytest.raises(hookline.Reject) as rejected:
        pipeline.process(_event(kind="bad"))
    assert (rejected.value.reason, rejected.value.stage) == ("kind is bad", "team.b_block")
    with pytest.raises(hookline.Drop) as dropped:
        pipeline.process(_event(kind="noise"))
    assert dropped.value.stage == "team.b_block"
    with pytest.raises(hookline.StageFailed) as failed:
        pipeline.process(_event(kind="boom"))
    assert failed.value.stage == "team.b_block"
    assert isinstance(failed.value.error, KeyError)
    assert not issubclass(hookline.Reject, Exception), "retry code must not swallow Reject"


def test_assignments_in_stages_are_validated(registry: hookline.Registry) -> None:
    class Negative(hookline.Stage, phase="enrich"):
        def process(self, event: hookline.Event) -> None:
            event.amount = -5

    with pytest.raises(hookline.StageFailed, match="amount: must be ≥ 0"):
        hookline.Pipeline.from_plugins([Negative]).process(_event())


def test_async_and_sync_implementations_mix(registry: hookline.Registry) -> None:
    class Slow(hookline.Stage, phase="enrich", name="a_async"):
        async def process(self, event: hookline.Event) -> None:
            await asyncio.sleep(0)
            event.tags = [*event.tags, "async"]

    class Fast(hookline.Stage, phase="enrich", name="b_sync"):
        def process(self, event: hookline.Event) -> None:
            event.tags = [*event.tags, "sync"]

    pipeline = hookline.Pipeline.from_plugins([Slow, Fast])
    assert pipeline.process(_event()).tags == ["async", "sync"]
    pipeline.close()


def test_plugins_add_fields_to_the_event_schema(registry: hookline.Registry) -> None:
    plugin = types.SimpleNamespace()

    @hookimpl
    def hookline_event_fields() -> dict[str, fields.Field[Any]]:
        return {"score": fields.Number(minimum=0, maximum=1, optional=True)}

    plugin.hookline_event_fields = hookline_event_fields
    pipeline = hookline.Pipeline.from_plugins([("ranking", plugin)])
    assert pipeline.process(_event(score=0.5)).score == 0.5
    with pytest.raises(hookline.ValidationError, match="score"):
        pipeline.process(_event(score=3))


# -- phase wrappers: the compiled driver -------------------------------------------------------


class _Tag(hookline.Stage, abstract=True):
    def process(self, event: hookline.Event) -> None:
        event.tags = [*event.tags, "tagged"]


def _tagging_pipeline(*wrappers: Any) -> hookline.Pipeline:
    with hookline.Registry().activate():
        tag = types.new_class("Tag", (_Tag,), {"phase": "validate", "name": "tag"})
        objects = [("tag", tag)]
        objects += [(f"w{i}", types.SimpleNamespace(hookline_validate=hookimpl(wrapper=True)(w)))
                    for i, w in enumerate(wrappers)]
        return hookline.Pipeline.from_plugins(objects)


def test_a_wrapper_may_replace_the_phase_result() -> None:
    def replace(event: Any) -> Any:
        result = yield
        return type(result).from_dict({**result.to_dict(), "kind": "wrapped"})

    out = _tagging_pipeline(replace).process(_event())
    assert (out.kind, out.tags) == ("wrapped", ["tagged"])


def test_a_wrapper_failing_before_its_yield_skips_the_phase_and_reaches_the_outer_one(
) -> None:
    seen: list[str] = []

    def outer(event: Any) -> Any:
        try:
            return (yield)
        except LookupError as exc:
            seen.append(f"outer saw {exc!r}")
            raise

    def broken(event: Any) -> Any:
        raise LookupError("no config")
        yield  # pragma: no cover - makes this a generator

    pipeline = _tagging_pipeline(outer, broken)
    with pytest.raises(hookline.StageFailed) as failed:
        pipeline.process(_event())
    assert isinstance(failed.value.error, LookupError)
    assert seen == ["outer saw LookupError('no config')"]
    # the failed call left nothing behind: the next event runs through both wrappers again
    with pytest.raises(hookline.StageFailed):
        pipeline.process(_event())
    assert len(seen) == 2


@pytest.mark.parametrize(("body", "message"), [
    ("twice", "has second yield"), ("never", "did not yield")])
def test_a_wrapper_must_yield_exactly_once(body: str, message: str) -> None:
    closed: list[bool] = []

    def misbehaving(event: Any) -> Any:
        try:
            if body == "never":
                return None
            yield
            yield
        finally:
            closed.append(True)

    pipeline = _tagging_pipeline(misbehaving)
    with pytest.raises(hookline.StageFailed) as failed:
        pipeline.process(_event())
    assert isinstance(failed.value.error, RuntimeError)
    assert f"'misbehaving' ({__file__}:" in str(failed.value.error)
    assert message in str(failed.value.error)
    assert closed == [True], "the wrapper's finally ran before the error was raised"


def test_wrapped_phases_run_nested_and_in_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    calls: list[int] = []

    def count(event: Any) -> Any:
        calls.append(1)
        return (yield)

    class Nested(hookline.Stage, abstract=True):
        def process(self, event: hookline.Event) -> None:
            if event.kind == "outer":  # runs the same wrapped phase again, inside this one
                assert pipeline.process(_event(kind="inner")).kind == "inner"

    with hookline.Registry().activate():
        nested = types.new_class("Nested", (Nested,), {"phase": "validate", "name": "nested"})
    pipeline = hookline.Pipeline.from_plugins(
        [("nested", nested), ("w", types.SimpleNamespace(
            hookline_validate=hookimpl(wrapper=True)(count)))])
    assert pipeline.process(_event(kind="outer")).kind == "outer"
    assert len(calls) == 2
    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(lambda i: pipeline.process(_event(event_id=f"t{i}")).event_id,
                             range(2000)))
    assert done == [f"t{i}" for i in range(2000)] and len(calls) == 2002


# -- Pipeline.process is the only way to run a phase ------------------------------------------


@pytest.mark.parametrize("hook", ["hookline_validate", "hookline_enrich", "hookline_score"])
def test_a_phase_hook_called_through_the_relay_is_refused(
    registry: hookline.Registry, hook: str
) -> None:
    class Tag(hookline.Stage, phase=hook.removeprefix("hookline_"), name="tag"):
        def process(self, event: hookline.Event) -> None:
            event.tags = [*event.tags, "tagged"]

    pipeline = hookline.Pipeline.from_plugins([Tag])
    event = pipeline.make_event(_event())
    with pytest.raises(PluginError, match=r"Pipeline\.process\(event\)") as refused:
        getattr(pipeline.hook, hook)(event=event)
    assert isinstance(refused.value, hookline.HooklineError)
    with pytest.raises(PluginError, match=hook):
        getattr(pipeline.hook, hook).call_extra([], {"event": event})
    assert event.tags == [], "no implementation ran"
    assert len(getattr(pipeline.hook, hook).get_hookimpls()) == 1, "it still answers questions"
    assert pipeline.process(event).tags == ["tagged"]


def test_the_other_hooks_are_called_through_the_relay(registry: hookline.Registry) -> None:
    started: list[Any] = []

    @hookimpl
    def hookline_run_start(run: Any) -> None:
        started.append(run)

    pipeline = hookline.Pipeline.from_plugins(
        [("watcher", types.SimpleNamespace(hookline_run_start=hookline_run_start))])
    assert pipeline.hook.hookline_run_start(run="the run") == []  # pluggy's list, no None
    assert started == ["the run"]


def test_a_rejection_through_a_wrapped_phase_leaves_no_cycle_for_the_garbage_collector(
) -> None:
    # A cycle per rejected event (frame -> error -> traceback -> frame) would keep every
    # rejected event alive until a full collection: peak memory then grows with the input.
    import gc

    class Guard:
        @hookline.hookimpl(wrapper=True)
        def hookline_validate(self, event: Any) -> Any:
            return (yield)

    with hookline.Registry().activate():
        class Refuse(hookline.Stage, phase="validate", name="refuse"):
            def process(self, event: Any) -> None:
                raise hookline.Reject("no")

        pipeline = hookline.Pipeline.from_plugins([("guard", Guard()), ("team", Refuse)])
    event = {"event_id": "e", "user_id": "u", "kind": "k", "ts": 1}
    gc.collect()
    gc.disable()
    try:
        for _ in range(200):
            with pytest.raises(hookline.Reject):
                pipeline.process(event)
        assert gc.collect() < 20
    finally:
        gc.enable()
