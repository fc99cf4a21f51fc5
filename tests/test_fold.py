"""The compiled call plans, the reference fold and pluggy's caller agree on random plugin sets.

How the three are run and compared (pluggy through a firstresult adapter hookspec, because a
phase folds where pluggy's relay collects a list) is in ``_three_ways.py``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
from _three_ways import Impl, replaced, summary, three_ways
from hypothesis import given, settings
from hypothesis import strategies as st

import hookline
from hookline import _fold

_STAGE_KINDS = ("pass", "mutate", "replace", "return_same", "reject", "drop", "error", "stop",
                "generator_exit")


def _stage(name: str, kind: str, trace: list[str]) -> Any:
    def process(event: Any) -> Any:
        trace.append(f"{name} saw {summary(event)}")
        if kind == "mutate":
            event.tags = [*event.tags, name]
        elif kind == "replace":
            return replaced(event, name)
        elif kind == "return_same":
            return event
        elif kind == "reject":
            raise hookline.Reject(name)
        elif kind == "drop":
            raise hookline.Drop(name)
        elif kind == "error":
            raise ValueError(name)
        elif kind == "stop":
            raise StopIteration(name)
        elif kind == "generator_exit":
            raise GeneratorExit(name)
        return None

    return process


_CATCHES: dict[str, type[BaseException] | tuple[type[BaseException], ...]] = {
    "nothing": (), "Exception": Exception, "BaseException": BaseException,
    "StopIteration": StopIteration, "GeneratorExit": GeneratorExit,
    "signals": (hookline.Reject, hookline.Drop), "RuntimeError": RuntimeError,
}


def _wrapper(name: str, spec: tuple[str, str, str, str, str], trace: list[str]) -> Any:
    """A wrapper: ``before`` its yield, what it ``catches`` there and does ``on_error``, what it
    does ``after`` a result, and (after a second yield) what it does when ``closed``."""
    before, catches, on_error, after, closed = spec

    def wrapper(event: Any) -> Generator[Any, Any, Any]:
        trace.append(f"{name}>")
        if before == "raise":
            raise LookupError(f"{name} before")
        if before == "return":
            return "returned early"
        try:
            result = yield f"{name} yields a value pluggy ignores"
        except _CATCHES[catches] as exc:
            if isinstance(exc, GeneratorExit) and not exc.args:
                raise  # closed when collected (past a second yield): not the phase's own
            trace.append(f"{name} caught {type(exc).__name__}")
            if on_error == "reraise":
                raise
            if on_error == "swallow":
                return replaced(event, name)
            if on_error == "convert":
                raise RuntimeError("converted") from exc
            raise KeyError(name) from exc
        finally:
            trace.append(f"{name} after the yield")
        trace.append(f"{name} got {summary(result)}")
        if after == "replace":
            return replaced(result, name) if isinstance(result, hookline.Event) else name
        if after == "raise":
            raise OSError(name)
        if after == "none":
            return None
        if after == "again":
            try:
                yield
            except GeneratorExit:
                trace.append(f"{name} closed")
                if closed == "raise":
                    raise OSError(f"{name} on close") from None
                if closed == "yield":
                    yield
                raise
        return result

    return wrapper


_wrapper_specs = st.tuples(
    st.sampled_from(("yield", "yield", "yield", "raise", "return")),
    st.sampled_from(tuple(_CATCHES)),
    st.sampled_from(("reraise", "swallow", "convert", "other")),
    st.sampled_from(("result", "result", "replace", "raise", "none", "again")),
    st.sampled_from(("close", "raise", "yield")),
)


@settings(max_examples=400, deadline=None)
@given(
    stages=st.lists(st.tuples(st.sampled_from(_STAGE_KINDS), st.booleans(), st.booleans()),
                    max_size=5),
    wrappers=st.lists(st.tuples(_wrapper_specs, st.booleans(), st.booleans()), max_size=3),
)
def test_compiled_plans_fold_and_pluggy_agree(
    stages: list[tuple[str, bool, bool]],
    wrappers: list[tuple[tuple[str, str, str, str, str], bool, bool]],
) -> None:
    trace: list[str] = []
    impls = [Impl(f"p{i}", _stage(f"p{i}", kind, trace), tryfirst=first, trylast=last)
             for i, (kind, first, last) in enumerate(stages)]
    impls += [Impl(f"w{i}", _wrapper(f"w{i}", spec, trace), wrapper=True, tryfirst=first,
                   trylast=last) for i, (spec, first, last) in enumerate(wrappers)]
    three_ways(impls, trace)


# -- the four divergences of issue 13, each a named case ------------------------------------


def test_a_second_yield_inside_an_outer_wrapper_is_raised_straight_out() -> None:
    trace: list[str] = []
    outer = _wrapper("outer", ("yield", "BaseException", "swallow", "result", "close"), trace)
    twice = _wrapper("twice", ("yield", "nothing", "reraise", "again", "close"), trace)
    outcome = three_ways([Impl("p", _stage("p", "pass", trace)),
                          Impl("a_outer", outer, wrapper=True),
                          Impl("b_twice", twice, wrapper=True)], trace)
    assert outcome.error == "RuntimeError: has second yield"
    assert "outer caught RuntimeError" not in outcome.trace, "the outer wrapper swallowed it"
    assert outcome.trace[-1] == "twice closed", "the wrapper is closed before the error leaves"


def test_a_generator_exit_from_the_phase_caught_by_a_wrapper_gives_its_return() -> None:
    trace: list[str] = []
    catching = _wrapper("w", ("yield", "GeneratorExit", "swallow", "result", "close"), trace)
    outcome = three_ways([Impl("p", _stage("p", "generator_exit", trace)),
                          Impl("w", catching, wrapper=True)], trace)
    assert (outcome.error, outcome.result) == (None, ("event", "click", ("w",)))


def test_a_stop_iteration_a_wrapper_converts_from_it_goes_on_as_the_stop_iteration() -> None:
    trace: list[str] = []
    converting = _wrapper("w", ("yield", "StopIteration", "convert", "result", "close"), trace)
    outcome = three_ways([Impl("p", _stage("p", "stop", trace)),
                          Impl("w", converting, wrapper=True)], trace)
    assert outcome.error == "StopIteration: p"
    assert "w caught StopIteration" in outcome.trace


def test_an_edited_source_file_changes_nothing_that_runs(make_module: Any) -> None:
    import importlib
    import sys
    from pathlib import Path

    source = '''
def wrapper(event):
    result = yield
    return (1,)
'''
    module = importlib.import_module(make_module("edited_wrapper", source))
    Path(module.__file__).write_text(source.replace("(1,)", "(1.0,)"))  # edited after import
    impls = [Impl("p", _stage("p", "pass", [])), Impl("w", module.wrapper, wrapper=True)]
    outcome = three_ways(impls, [])
    assert outcome.result == repr((1,)) and repr((1,)) != repr((1.0,))
    sys.modules.pop("edited_wrapper", None)


# -- the reference fold itself ------------------------------------------------------------


def test_the_fold_hands_each_returned_event_on_and_returns_the_last() -> None:
    event = hookline.DefaultEvent.from_dict({"event_id": "e", "user_id": "u", "kind": "k",
                                             "ts": 1})
    seen: list[tuple[str, ...]] = []

    def first(e: Any) -> Any:
        seen.append(tuple(e.tags))
        return replaced(e, "first")

    def second(e: Any) -> None:
        seen.append(tuple(e.tags))

    result = _fold.fold(event, [("first", first), ("second", second)])
    assert seen == [(), ("first",)] and result.tags == ["first"] and event.tags == []


def test_the_fold_names_the_stage_on_signals_and_errors() -> None:
    def reject(e: Any) -> None:
        raise hookline.Reject("no")

    def fail(e: Any) -> None:
        raise KeyError("k")

    with pytest.raises(hookline.Reject) as rejected:
        _fold.fold(object(), [("ok", lambda e: None), ("gate", reject)])
    assert rejected.value.stage == "gate"
    with pytest.raises(KeyError) as failed:
        _fold.fold(object(), [("broken", fail)])
    assert getattr(failed.value, _fold.CULPRIT) == "broken"
