"""Phase wrappers rewritten into plain functions: when, and that they behave like pluggy's.

A ``wrapper=True`` generator whose one bare ``yield`` always runs is rewritten from its source
into a function that calls the rest of the phase where it yielded (no generator per event);
any other wrapper is driven as a generator. Either way a phase must give what pluggy's caller
gives: the same trace, result and exception, for every way the phase inside can end.
"""

from __future__ import annotations

import importlib.util
import inspect
import linecache
import tempfile
import traceback
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import hookline
from hookline import _codegen, hookimpl

#: Wrappers, each a module-level function in a real file (``wrappers.py`` in a temporary
#: directory), named after what they do; ``trace`` is the module's list.
WRAPPERS = '''
import contextlib

trace = []


def plain(event):
    return (yield)


def timing(event):
    trace.append("start")
    try:
        return (yield)
    finally:
        trace.append("stop")


def swallows_value_error(event):
    try:
        result = yield
    except ValueError as exc:
        trace.append(f"swallowed {exc}")
        return "swallowed"
    trace.append("no error")
    return result


def replaces(event):
    result: object = yield
    return ("replaced", result)


def within(event):
    with contextlib.ExitStack():
        try:
            yield
        finally:
            trace.append("exit")


def catches_stop(event):
    try:
        return (yield)
    except StopIteration:
        return "stop caught"


def returns_first(event):
    if event.kind == "skip":
        return "skipped"
    return (yield)


def swallowed_before(event):
    try:
        trace.append(event.kind.upper() if event.kind != "boom" else 1 / 0)
        result = yield
    except ZeroDivisionError:
        return "no phase"
    return result


def suppressed_before(event):
    with contextlib.suppress(ZeroDivisionError):
        trace.append(1 / 0 if event.kind == "boom" else "fine")
        return (yield)
    return "suppressed"


def twice(event):
    yield
    yield


def yields_value(event):
    return (yield "ignored")


def in_expression(event):
    return ("result", (yield))


def rebinds(event):
    event = event.kind
    return (yield)


def nested_with(event):
    with contextlib.ExitStack():
        with contextlib.ExitStack():
            return (yield)


def in_loop(event):
    for _ in range(1):
        return (yield)


def tagging(tag):
    def wrapper(event):
        trace.append(tag)
        return (yield)

    return wrapper


class Counting:
    def __init__(self):
        self.__calls = 0  # a private name: compiled as _Counting__calls in the class

    def hookline_validate(self, event):
        self.__calls += 1
        return (yield)
'''

INLINED = ("plain", "timing", "swallows_value_error", "replaces", "within", "catches_stop")
DRIVEN = {
    "returns_first": "may return before the yield",
    "swallowed_before": "a statement before the yield in a try",
    "suppressed_before": "a statement before the yield in a try or with body",
    "twice": "2 yield or await expressions",
    "yields_value": "it yields a value",
    "in_expression": "the yield is inside an expression",
    "rebinds": "may rebind its parameter 'event'",
    "nested_with": "the yield is inside a With statement",
    "in_loop": "the yield is inside a For statement",
}

#: How the phase inside ends, by the event's kind.
OUTCOMES = {"ok": None, "error": ValueError("bad value"), "reject": hookline.Reject("no"),
            "stop": StopIteration("early"), "skip": None, "boom": None}


@pytest.fixture
def wrappers(tmp_path: Path) -> types.ModuleType:
    path = tmp_path / "wrappers.py"
    path.write_text(WRAPPERS)
    spec = importlib.util.spec_from_file_location("wrappers_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    linecache.checkcache(str(path))


class _Inner(hookline.Stage, abstract=True):
    def process(self, event: hookline.Event) -> None:
        outcome = OUTCOMES[event.kind]
        if outcome is not None:
            raise outcome


def _pipeline(*wrappers: Any) -> hookline.Pipeline:
    with hookline.Registry().activate():
        inner = types.new_class("Inner", (_Inner,), {"phase": "validate", "name": "inner"})
        objects: list[tuple[str, Any]] = [("inner", inner)]
        for index, wrapper in enumerate(wrappers):
            if isinstance(wrapper, types.FunctionType):
                plugin = types.SimpleNamespace(hookline_validate=hookimpl(wrapper=True)(wrapper))
            else:  # an object with a hookline_validate method
                hookimpl(wrapper=True)(type(wrapper).hookline_validate)
                plugin = wrapper
            objects.append((f"w{index}", plugin))
        return hookline.Pipeline.from_plugins(objects)


_MISBEHAVED = (("did not yield", "returned without yielding"),
               ("has second yield", "yielded twice"))


def _outcome(call: Any, trace: list[Any]) -> tuple[list[Any], str]:
    trace.clear()
    try:
        result = call()
    except hookline.StageFailed as failed:  # hookline names the stage; pluggy does not
        error: BaseException = failed.error
    except (Exception, hookline.Reject) as exc:
        error = exc
    else:
        return list(trace), f"returned {_shape(result)}"
    cause = f" from {type(error.__cause__).__name__}" if error.__cause__ else ""
    message = str(error)
    for theirs, ours in _MISBEHAVED:  # hookline words these errors its own way
        if theirs in message or ours in message:
            message = ours
    return list(trace), f"{type(error).__name__}: {message}{cause}"


def _shape(result: Any) -> str:
    """A result with the phase's own result named, not shown: pluggy's is the list of the
    implementations' results, hookline's the event."""
    if isinstance(result, (hookline.Event, list)):
        return "<the phase's result>"
    if isinstance(result, tuple):
        return "(" + ", ".join(_shape(item) for item in result) + ")"
    return repr(result)


def _same_as_pluggy(pipeline: hookline.Pipeline, trace: list[Any]) -> None:
    for kind in OUTCOMES:
        event = pipeline.make_event({"event_id": "e1", "user_id": "u1", "kind": kind, "ts": 1})
        ours = _outcome(lambda: pipeline._phases[0](event), trace)  # noqa: B023
        theirs = _outcome(lambda: pipeline.hook.hookline_validate(event=event), trace)  # noqa: B023
        assert ours == theirs, kind


@pytest.mark.parametrize("name", INLINED)
def test_a_wrapper_whose_yield_always_runs_is_inlined_and_behaves_like_pluggys(
    wrappers: types.ModuleType, name: str
) -> None:
    wrapper = getattr(wrappers, name)
    inlined = _codegen.inline_wrapper(wrapper, lambda event: ("inner", event))
    assert not inspect.isgeneratorfunction(inlined)
    assert inlined.__qualname__ == wrapper.__qualname__
    _same_as_pluggy(_pipeline(wrapper), wrappers.trace)


@pytest.mark.parametrize("name", sorted(DRIVEN))
def test_any_other_wrapper_is_driven_as_a_generator_and_behaves_like_pluggys(
    wrappers: types.ModuleType, name: str
) -> None:
    wrapper = getattr(wrappers, name)
    with pytest.raises(_codegen.NotInlined, match=DRIVEN[name]):
        _codegen.inline_wrapper(wrapper, lambda event: event)
    _same_as_pluggy(_pipeline(wrapper), wrappers.trace)


def test_inlined_and_driven_wrappers_nest_like_pluggys(wrappers: types.ModuleType) -> None:
    pipeline = _pipeline(wrappers.timing, wrappers.in_loop, wrappers.swallows_value_error,
                         wrappers.within, wrappers.yields_value, wrappers.replaces,
                         wrappers.catches_stop, wrappers.rebinds)
    _same_as_pluggy(pipeline, wrappers.trace)


def test_a_wrapper_that_does_not_yield_once_fails_the_phase_like_pluggys(
    wrappers: types.ModuleType,
) -> None:
    """Alone: nested, pluggy leaves the outer wrappers unfinished, hookline finishes them
    with the error (tests/test_pipeline.py)."""
    for misbehaving in (wrappers.returns_first, wrappers.twice):
        _same_as_pluggy(_pipeline(misbehaving), wrappers.trace)


def test_a_method_is_inlined_bound_to_its_object_and_compiled_in_its_class(
    wrappers: types.ModuleType,
) -> None:
    counting = wrappers.Counting()
    inlined = _codegen.inline_wrapper(counting.hookline_validate, lambda event: event)
    assert inlined.__self__ is counting
    _same_as_pluggy(_pipeline(counting), wrappers.trace)
    assert counting._Counting__calls == 2 * len(OUTCOMES)  # ours and pluggy's, per outcome


def test_a_wrapper_is_rewritten_once_and_each_closure_keeps_its_own_cells(
    wrappers: types.ModuleType,
) -> None:
    first = _codegen.inline_wrapper(wrappers.tagging("first"), lambda event: "in")
    second = _codegen.inline_wrapper(wrappers.tagging("second"), lambda event: "in")
    assert first.__code__ is second.__code__  # the rewrite was made once for the code
    assert (first(None), second(None)) == ("in", "in")
    assert wrappers.trace == ["first", "second"]
    for _ in range(2):  # a reason is given again, not kept from a first failure
        with pytest.raises(_codegen.NotInlined, match="2 yield or await expressions"):
            _codegen.inline_wrapper(wrappers.twice, lambda event: event)


def test_an_edited_source_file_is_not_trusted(wrappers: types.ModuleType) -> None:
    path = Path(wrappers.__file__)
    path.write_text(path.read_text().replace('trace.append("start")', 'trace.append("edited")'))
    linecache.checkcache(str(path))
    with pytest.raises(_codegen.NotInlined, match="does not compile to the code it runs"):
        _codegen.inline_wrapper(wrappers.timing, lambda event: event)
    _same_as_pluggy(_pipeline(wrappers.timing), wrappers.trace)
    assert "start" in wrappers.trace  # the code that was imported ran, not the edit


def test_a_wrapper_without_source_is_driven() -> None:
    scope: dict[str, Any] = {}
    exec(compile("def w(event):\n    return (yield)\n", "<string>", "exec"), scope)
    with pytest.raises(_codegen.NotInlined, match="no source"):
        _codegen.inline_wrapper(scope["w"], lambda event: event)


def test_tracebacks_through_an_inlined_wrapper_point_into_its_file(
    wrappers: types.ModuleType,
) -> None:
    inlined = _codegen.inline_wrapper(wrappers.timing, lambda event: 1 / 0)
    with pytest.raises(ZeroDivisionError) as info:
        inlined(object())
    frame = traceback.extract_tb(info.value.__traceback__)[1]
    assert (Path(frame.filename).name, frame.name, frame.line) == (
        "wrappers.py", "timing", "return (yield)")


def test_hookline_monitorings_timing_wrapper_is_inlined() -> None:
    monitoring = pytest.importorskip("hookline_monitoring._hooks")
    _codegen.inline_wrapper(monitoring.hookline_validate, lambda event: event)


def test_the_hook_references_example_wrapper_is_inlined() -> None:
    """docs/hooks.md says a wrapper like its example is rewritten into a plain call."""
    path = Path(__file__).parent / "doc_examples" / "hooks" / "wrapper.py"
    spec = importlib.util.spec_from_file_location("hooks_wrapper_example", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    inlined = _codegen.inline_wrapper(example.timer.hookline_validate, lambda event: event)
    assert inlined(example) is example and example.timer.outcomes["passed"] == 1


# -- random wrappers: whichever way hookline runs one, it behaves like pluggy's caller ---------

_PRE = {"trace": "trace.append('pre')",
        "return": "if event.kind == 'skip':\n    return 'early'",
        "raise": "trace.append(1 / (event.kind != 'boom'))"}  # ZeroDivisionError on 'boom'
_BOOM_ITEM = "contextlib.nullcontext(1 / (event.kind != 'boom'))"  # raises as it is entered
_BLOCKS: dict[str, tuple[str, ...]] = {
    "none": (), "try": ("try:",), "suppress": ("with contextlib.suppress(ZeroDivisionError):",),
    "stack": ("with contextlib.ExitStack():",), "try-with": ("try:", f"with {_BOOM_ITEM}:"),
    "with-try": (f"with {_BOOM_ITEM}:", "try:")}
_YIELDS = ("return (yield)", "result = yield\nreturn result", "yield",
           "return ('wrapped', (yield))")
_HANDLERS = {"value": "except ValueError:\n    trace.append('swallowed')\n    return 'swallowed'",
             "zero": "except ZeroDivisionError:\n    return 'caught'",
             "stop": "except StopIteration:\n    return 'stop caught'",
             "any": "except BaseException as exc:\n    trace.append(type(exc).__name__)\n    raise",
             "finally": "finally:\n    trace.append('finally')"}


def _indented(text: str, depth: int) -> list[str]:
    return ["    " * depth + line for line in text.splitlines()]


@st.composite
def _wrapper_sources(draw: st.DrawFn) -> str:
    lines = ["import contextlib", "", "trace = []", "", "", "def wrapper(event):"]
    for pre in draw(st.lists(st.sampled_from(sorted(_PRE)), max_size=2)):
        lines += _indented(_PRE[pre], 1)
    block = _BLOCKS[draw(st.sampled_from(sorted(_BLOCKS)))]
    depth = 1
    for header in block:
        lines += _indented(header, depth)
        depth += 1
    inside = draw(st.sampled_from([None, "trace", "raise"]))
    if inside is not None:
        lines += _indented(_PRE[inside], depth)
    lines += _indented(draw(st.sampled_from(_YIELDS)), depth)
    if "try:" in block:
        handlers = draw(st.lists(st.sampled_from(sorted(_HANDLERS)), min_size=1, max_size=3,
                                 unique=True))
        handlers.sort(key=lambda name: name == "finally")  # finally comes last
        for handler in handlers:
            lines += _indented(_HANDLERS[handler], 1 + block.index("try:"))
    if draw(st.booleans()):
        lines += _indented("return 'after'", 1)
    return "\n".join(lines) + "\n"


@settings(max_examples=500, deadline=None)
@given(source=_wrapper_sources())
def test_any_wrapper_behaves_like_pluggys_caller_inlined_or_driven(source: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="hookline-wrapper-"))
    path = folder / "random_wrapper.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"random_wrapper_{folder.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        _codegen.inline_wrapper(module.wrapper, lambda event: event)
    except _codegen.NotInlined:
        event("driven as a generator")
    else:
        event("inlined")
    _same_as_pluggy(_pipeline(module.wrapper), module.trace)
