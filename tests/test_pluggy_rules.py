"""Every calling rule of pluggy's caller that applies to a phase, one test each.

Each case runs three ways (the compiled call plan, the reference fold and pluggy's own caller;
see ``_three_ways.py``), which must agree, and then checks the rule itself. The rules come
from ``pluggy._callers._multicall`` and its tests (``testing/test_multicall.py``,
``testing/test_hookcaller.py``); pluggy's rules on its result list and on registration order
do not apply: a phase folds, and hookline orders by name.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Generator
from typing import Any

import pytest
from _three_ways import Impl, call_order, documented_order, pipeline_of, replaced, three_ways

import hookline

Trace = list[str]


def stage(name: str, trace: Trace, *, returns: str = "none",
          raises: BaseException | None = None, **marks: bool) -> Impl:
    """An implementation that notes the tags it saw, then returns or raises."""

    def process(event: Any) -> Any:
        trace.append(f"{name} saw {list(event.tags)}")
        if raises is not None:
            raise raises
        if returns == "replacement":
            return replaced(event, name)
        if returns == "same":
            return event
        return None

    return Impl(name, process, **marks)


def wrapper(name: str, function: Any, **marks: bool) -> Impl:
    return Impl(name, function, wrapper=True, **marks)


def passing(name: str, trace: Trace) -> Any:
    """A wrapper that notes its start and end and returns the result unchanged."""

    def wrap(event: Any) -> Generator[Any, Any, Any]:
        trace.append(f"{name}>")
        result = yield
        trace.append(f"<{name}")
        return result

    return wrap


# -- order ---------------------------------------------------------------------------------


def test_implementations_run_in_order_and_each_gets_the_event_the_last_returned() -> None:
    trace: Trace = []
    outcome = three_ways([stage("a", trace, returns="replacement"), stage("b", trace),
                          stage("c", trace, returns="replacement")], trace)
    assert outcome.trace == ["a saw []", "b saw ['a']", "c saw ['a']"]
    assert outcome.result == ("event", "click", ("a", "c"))


def test_none_is_no_result_and_returning_the_event_is_the_same_as_none() -> None:
    trace: Trace = []
    outcome = three_ways([stage("a", trace, returns="same"), stage("b", trace)], trace)
    assert outcome.result == ("event", "click", ())


def test_a_returned_event_does_not_stop_the_phase_firstresult_does_not_apply() -> None:
    trace: Trace = []
    outcome = three_ways([stage("a", trace, returns="replacement"),
                          stage("b", trace, returns="replacement")], trace)
    assert outcome.trace == ["a saw []", "b saw ['a']"]


def test_tryfirst_runs_first_and_trylast_last_whatever_the_names() -> None:
    trace: Trace = []
    outcome = three_ways([stage("a", trace, trylast=True), stage("b", trace),
                          stage("c", trace, tryfirst=True)], trace)
    assert [line.split()[0] for line in outcome.trace] == ["c", "b", "a"]


@pytest.mark.parametrize("marks", [{}, {"tryfirst": True}, {"trylast": True}])
def test_within_tryfirst_the_rest_and_trylast_the_order_is_by_name(marks: dict[str, bool]
                                                                    ) -> None:
    impls = [stage(name, [], **marks) for name in ("b", "c", "a")]
    pipeline = pipeline_of(impls)
    assert [i.name for i in call_order(pipeline, impls)] == [
        i.name for i in documented_order(impls)]


def test_wrappers_are_outside_every_implementation_tryfirst_outermost_trylast_innermost(
) -> None:
    trace: Trace = []
    outcome = three_ways([
        stage("impl_first", trace, tryfirst=True),
        wrapper("w_last", passing("w_last", trace), trylast=True),
        wrapper("w_plain", passing("w_plain", trace)),
        wrapper("w_first", passing("w_first", trace), tryfirst=True),
    ], trace)
    assert outcome.trace == ["w_first>", "w_plain>", "w_last>", "impl_first saw []",
                             "<w_last", "<w_plain", "<w_first"]


# -- wrappers and results ------------------------------------------------------------------


def test_a_wrappers_yield_gets_the_phases_result_and_its_return_replaces_it() -> None:
    trace: Trace = []

    def doubling(event: Any) -> Generator[Any, Any, Any]:
        result = yield "a value a wrapper yields is ignored"
        trace.append(f"got {list(result.tags)}")
        return replaced(result, "wrapper")

    outcome = three_ways([stage("a", trace, returns="replacement"),
                          wrapper("w", doubling)], trace)
    assert outcome.trace == ["a saw []", "got ['a']"]
    assert outcome.result == ("event", "click", ("a", "wrapper"))


def test_a_wrapper_returning_none_makes_the_result_none() -> None:
    def nothing(event: Any) -> Generator[Any, Any, Any]:
        yield
        return None

    assert three_ways([stage("a", []), wrapper("w", nothing)], []).result == repr(None)


def test_with_only_wrappers_the_yield_gets_the_event() -> None:
    trace: Trace = []
    outcome = three_ways([wrapper("w", passing("w", trace))], trace)
    assert outcome.result == ("event", "click", ())


def test_an_outer_wrapper_gets_what_the_inner_one_returned() -> None:
    def inner(event: Any) -> Generator[Any, Any, Any]:
        yield
        return "inner's"

    def outer(event: Any) -> Generator[Any, Any, Any]:
        result = yield
        return f"outer saw {result}"

    outcome = three_ways([wrapper("a", outer), wrapper("b", inner), stage("s", [])], [])
    assert outcome.result == repr("outer saw inner's")


# -- misbehaving wrappers ----------------------------------------------------------------


def test_a_wrapper_that_does_not_yield_fails_the_phase_before_any_implementation() -> None:
    trace: Trace = []

    def never(event: Any) -> Generator[Any, Any, Any]:
        if event.kind:
            return None
        yield  # pragma: no cover - makes it a generator

    def outer(event: Any) -> Generator[Any, Any, Any]:
        try:
            return (yield)
        except RuntimeError as exc:
            trace.append(f"outer got it, naming the wrapper: {repr('never') in str(exc)}")
            raise

    outcome = three_ways([wrapper("a", outer), wrapper("b", never), stage("s", trace)], trace)
    assert outcome.error == "RuntimeError: did not yield [during StopIteration: ]"
    assert outcome.trace == ["outer got it, naming the wrapper: True"], "no implementation ran"


def test_a_wrapper_that_yields_twice_is_closed_and_the_error_names_its_file_and_line() -> None:
    trace: Trace = []

    def twice(event: Any) -> Generator[Any, Any, Any]:
        try:
            yield 1
            yield 2
        finally:
            trace.append("cleanup")

    outcome = three_ways([wrapper("w", twice)], trace)
    assert outcome.error == "RuntimeError: has second yield" and outcome.trace == ["cleanup"]
    with pytest.raises(RuntimeError) as info:
        pipeline_of([wrapper("w", twice)])._phases[0](hookline.DefaultEvent.from_dict(
            {"event_id": "e", "user_id": "u", "kind": "k", "ts": 1}))
    assert "'twice'" in str(info.value) and f"{__file__}:" in str(info.value)


def test_a_second_yield_is_raised_past_the_outer_wrappers_which_cannot_swallow_it() -> None:
    trace: Trace = []

    def twice(event: Any) -> Generator[Any, Any, Any]:
        yield
        yield

    def swallowing(event: Any) -> Generator[Any, Any, Any]:
        try:
            return (yield)
        except BaseException as exc:
            if not isinstance(exc, GeneratorExit):
                trace.append("swallowed")
            return "swallowed"

    outcome = three_ways([wrapper("a", swallowing), wrapper("b", twice)], trace)
    assert (outcome.error, outcome.trace) == ("RuntimeError: has second yield", [])


def test_an_error_raised_while_closing_a_wrapper_that_yielded_twice_goes_on_out() -> None:
    trace: Trace = []

    def twice(event: Any) -> Generator[Any, Any, Any]:
        yield
        try:
            yield
        except GeneratorExit:
            raise OSError("closing") from None

    def outer(event: Any) -> Generator[Any, Any, Any]:
        try:
            return (yield)
        except OSError as exc:
            trace.append(f"outer got {exc}")
            return "recovered"

    outcome = three_ways([wrapper("a", outer), wrapper("b", twice)], trace)
    assert (outcome.result, outcome.trace) == (repr("recovered"), ["outer got closing"])


def test_a_wrapper_that_ignores_being_closed_fails_with_pythons_error() -> None:
    def stubborn(event: Any) -> Generator[Any, Any, Any]:
        yield
        try:
            yield
        except GeneratorExit:
            yield  # ignores being closed (once: collected later, it ends)

    outcome = three_ways([wrapper("w", stubborn)], [])
    assert outcome.error == "RuntimeError: generator ignored GeneratorExit"


# -- exceptions in and around wrappers --------------------------------------------------


@pytest.mark.parametrize("error", [ValueError("bad"), SystemExit(3), KeyboardInterrupt(),
                                   hookline.Reject("no"), hookline.Drop("noise")],
                         ids=lambda e: type(e).__name__)
def test_an_implementations_exception_stops_the_phase_and_is_thrown_into_the_wrappers(
        error: BaseException) -> None:
    trace: Trace = []

    def seeing(event: Any) -> Generator[Any, Any, Any]:
        try:
            return (yield)
        except BaseException as exc:
            trace.append(f"saw {type(exc).__name__}")
            raise
        finally:
            trace.append("finally")

    outcome = three_ways([wrapper("w", seeing), stage("a", trace, raises=error),
                          stage("b", trace)], trace)
    assert outcome.trace == ["a saw []", f"saw {type(error).__name__}", "finally"]
    assert outcome.error is not None and outcome.error.startswith(type(error).__name__)


def test_signals_and_errors_name_the_stage_that_raised_them() -> None:
    reject = three_ways([stage("a", []), stage("b", [], raises=hookline.Reject("x"))], [])
    assert reject.stage == "b"
    error = three_ways([stage("a", [], raises=KeyError("k")), stage("b", [])], [])
    assert error.stage == "a"


def test_a_wrapper_may_catch_an_error_and_return_a_replacement() -> None:
    def recovering(event: Any) -> Generator[Any, Any, Any]:
        try:
            return (yield)
        except ValueError:
            return replaced(event, "recovered")

    outcome = three_ways([wrapper("w", recovering), stage("a", [], raises=ValueError())], [])
    assert outcome.result == ("event", "click", ("recovered",))


def test_a_wrapper_raising_before_its_yield_skips_the_phase_and_reaches_the_outer_one() -> None:
    trace: Trace = []

    def broken(event: Any) -> Generator[Any, Any, Any]:
        raise LookupError("no config")
        yield  # pragma: no cover - makes it a generator

    def outer(event: Any) -> Generator[Any, Any, Any]:
        try:
            return (yield)
        except LookupError as exc:
            trace.append(f"outer saw {exc}")
            raise

    outcome = three_ways([wrapper("a", outer), wrapper("b", broken), stage("s", trace)], trace)
    assert outcome.trace == ["outer saw no config"]
    assert outcome.error == "LookupError: no config"


def test_an_inner_wrappers_teardown_error_unwinds_through_the_outer_one() -> None:
    trace: Trace = []

    def outer(event: Any) -> Generator[Any, Any, Any]:
        try:
            yield
        except BaseException:
            trace.append("outer teardown")
            raise
        finally:
            trace.append("outer cleanup")

    def inner(event: Any) -> Generator[Any, Any, Any]:
        yield
        trace.append("inner raise")
        raise ValueError("inner")

    outcome = three_ways([wrapper("a", outer), wrapper("b", inner)], trace)
    assert outcome.trace == ["inner raise", "outer teardown", "outer cleanup"]


def test_an_outer_wrapper_may_suppress_an_inner_ones_error() -> None:
    def outer(event: Any) -> Generator[Any, Any, Any]:
        return (yield)

    def middle(event: Any) -> Generator[Any, Any, Any]:
        try:
            yield
        except ValueError:
            return "suppressed"

    def inner(event: Any) -> Generator[Any, Any, Any]:
        yield
        raise ValueError

    outcome = three_ways([wrapper("a", outer), wrapper("b", middle), wrapper("c", inner)], [])
    assert outcome.result == repr("suppressed")


def test_exception_chains_are_kept_as_the_wrappers_made_them() -> None:
    def plain(event: Any) -> Generator[Any, Any, Any]:
        yield
        return "unreachable"  # pragma: no cover

    def replacing(event: Any) -> Generator[Any, Any, Any]:
        try:
            yield
        except Exception:
            raise Exception("m2")  # noqa: B904 - the context is what is checked

    def chaining(event: Any) -> Generator[Any, Any, Any]:
        try:
            yield
        except Exception as exc:
            raise Exception("m4") from exc

    outcome = three_ways([wrapper("a", chaining), wrapper("b", plain), wrapper("c", replacing),
                          stage("s", [], raises=Exception("m1"))], [])
    assert outcome.error == ("Exception: m4 [from Exception: m2 [during Exception: m1]] "
                             "[during Exception: m2 [during Exception: m1]]")


def test_the_exception_raised_is_the_very_object_the_implementation_raised() -> None:
    error = ValueError("mine")
    pipeline = pipeline_of([wrapper("w", passing("w", [])), stage("a", [], raises=error)])
    with pytest.raises(ValueError) as info:
        pipeline._phases[0](pipeline.make_event({"event_id": "e", "user_id": "u", "kind": "k",
                                                 "ts": 1}))
    assert info.value is error


# -- StopIteration and GeneratorExit -------------------------------------------------------


def test_a_stop_iteration_from_the_phase_passes_through_the_wrappers_as_it_is() -> None:
    trace: Trace = []

    def wrap(event: Any) -> Generator[Any, Any, Any]:
        trace.append("wrap")
        try:
            yield
        finally:
            trace.append("wrap done")

    outcome = three_ways([wrapper("a", wrap), wrapper("b", passing("b", trace)),
                          stage("s", trace, raises=StopIteration("stop"))], trace)
    assert outcome.error == "StopIteration: stop"
    assert outcome.trace == ["wrap", "b>", "s saw []", "wrap done"]


@pytest.mark.parametrize(("conversion", "expected"), [
    ("from", "StopIteration: stop"),  # pluggy decides by __cause__: the phase's StopIteration
    ("from other", "RuntimeError: converted [from ValueError: other]"),
    ("other type", "ValueError: converted [from StopIteration: stop] [during StopIteration: stop]"),
])
def test_a_stop_iteration_a_wrapper_converts_is_decided_by_the_cause(
        conversion: str, expected: str) -> None:
    def converting(event: Any) -> Generator[Any, Any, Any]:
        try:
            yield
        except StopIteration as exc:
            if conversion == "from":
                raise RuntimeError("converted") from exc
            if conversion == "from other":
                raise RuntimeError("converted") from ValueError("other")
            raise ValueError("converted") from exc

    outcome = three_ways([wrapper("w", converting),
                          stage("s", [], raises=StopIteration("stop"))], [])
    assert outcome.error is not None and outcome.error.startswith(expected)


def test_a_generator_exit_from_the_phase_can_be_caught_and_the_event_returned() -> None:
    def catching(event: Any) -> Generator[Any, Any, Any]:
        try:
            return (yield)
        except GeneratorExit:
            return event

    outcome = three_ways([wrapper("w", catching),
                          stage("s", [], raises=GeneratorExit("phase"))], [])
    assert (outcome.error, outcome.result) == (None, ("event", "click", ()))


def test_a_generator_exit_from_the_phase_not_caught_goes_on_out() -> None:
    trace: Trace = []

    def wrap(event: Any) -> Generator[Any, Any, Any]:
        try:
            yield
        finally:
            trace.append("wrap done")

    outcome = three_ways([wrapper("w", wrap), stage("s", [], raises=GeneratorExit("x"))],
                         trace)
    assert (outcome.error, outcome.trace) == ("GeneratorExit: x", ["wrap done"])


# -- plugin code runs as written ----------------------------------------------------------


def test_a_wrapper_runs_its_own_code_and_tracebacks_point_into_its_file() -> None:
    frames: list[Any] = []

    def own(event: Any) -> Generator[Any, Any, Any]:
        frames.append(sys._getframe().f_code)
        yield
        raise ValueError("after the yield")

    pipeline = pipeline_of([wrapper("w", own)])
    with pytest.raises(ValueError) as info:
        pipeline._phases[0](pipeline.make_event({"event_id": "e", "user_id": "u", "kind": "k",
                                                 "ts": 1}))
    assert frames == [own.__code__], "the function's own code object ran"
    last = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (last.filename, last.name, last.line) == (
        __file__, "own", 'raise ValueError("after the yield")')


def test_a_method_wrapper_runs_bound_to_its_object() -> None:
    class Counting:
        def __init__(self) -> None:
            self.seen = 0

        def wrap(self, event: Any) -> Generator[Any, Any, Any]:
            self.seen += 1
            return (yield)

    counting = Counting()
    outcome = three_ways([wrapper("w", counting.wrap), stage("s", [])], [])
    assert outcome.error is None and counting.seen == 3, "once by each of the three ways"


def test_the_phase_hooks_declare_no_firstresult() -> None:
    from hookline import hookspecs

    for phase in hookspecs.PHASES:
        spec = getattr(hookspecs, hookspecs.phase_hook(phase))
        assert not spec.hookline_spec["firstresult"], phase


def test_before_and_after_order_trylast_stages_as_they_order_the_others() -> None:
    seen: list[str] = []
    with hookline.Registry().activate():
        class A(hookline.Stage, phase="validate", name="a", trylast=True):
            def process(self, event: Any) -> None:
                seen.append("a")

        class B(hookline.Stage, phase="validate", name="b", trylast=True, before="p.a"):
            def process(self, event: Any) -> None:
                seen.append("b")

        class C(hookline.Stage, phase="validate", name="c", trylast=True):
            def process(self, event: Any) -> None:
                seen.append("c")

        pipeline = hookline.Pipeline.from_plugins([("p", C), ("p", A), ("p", B)])
    pipeline.process({"event_id": "e", "user_id": "u", "kind": "k", "ts": 1})
    assert seen == ["b", "a", "c"]
