"""One phase run three ways, for the tests that hold them to each other.

1. **compiled**: ``Pipeline.from_plugins`` with each implementation and wrapper a plugin of its
   own, and the validate phase's compiled call plan called directly (``pipeline._phases[0]``:
   no ``StageFailed`` around what the phase raises);
2. **fold**: the reference :func:`hookline._fold.fold`, given the implementations and wrappers
   in the order the pipeline calls them (the loader's ordering is tested on its own);
3. **pluggy**: pluggy's own caller. A phase folds, and pluggy's relay does not (it gives every
   implementation the original event and returns a list), so the comparison goes through an
   adapter hookspec, ``hookline_validate(event)`` with ``firstresult=True`` in a project of its
   own. The wrappers are registered as they are: the very same generator functions, driven by
   pluggy's ``_multicall``. Each implementation is registered through an adapter that calls it
   with the current event of a per-call cell and puts a returned event in the cell, returning
   None; one more implementation, registered first as ``trylast`` (so called last of all),
   returns the cell's event, the phase's result, which is what the wrappers' ``yield`` gets.
   Everything is registered with the same tryfirst/trylast marks, in the order that makes
   pluggy call it in the pipeline's order (pluggy calls the last registered first, except
   among trylast ones, where it calls the first registered first): so the two agree only
   when hookline keeps pluggy's tryfirst/trylast classes.

An outcome is what a user can observe: the trace the implementations and wrappers wrote, and
the result or the exception (its type and message; pluggy's own words for a misbehaving
wrapper differ from hookline's, so "did not yield" and "has second yield" stand for either).
``Reject.stage``/``Drop.stage`` and the blamed stage are compared between compiled and fold
only: pluggy has neither.
"""

from __future__ import annotations

import gc
import types
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

import hookline
from hookline import _fold

EVENT = {"event_id": "e1", "user_id": "u1", "kind": "click", "ts": 1}

_check_spec = pluggy.HookspecMarker("foldcheck")
check_impl = pluggy.HookimplMarker("foldcheck")


class _Spec:
    @_check_spec(firstresult=True)
    def hookline_validate(self, event: Any) -> Any:
        """The phase, as one firstresult pluggy hook (see the module docstring)."""


@dataclass
class Impl:
    """A phase implementation, or (``wrapper=True``) a wrapper generator function."""

    name: str
    function: Callable[[Any], Any]
    wrapper: bool = False
    tryfirst: bool = False
    trylast: bool = False


@dataclass
class Outcome:
    trace: list[str]
    result: Any = None
    error: str | None = None
    stage: str | None = field(default=None, compare=False)  # Reject/Drop.stage or the culprit


def summary(value: Any) -> Any:
    """What is compared of a result or a value a wrapper saw: an event's tags and kind."""
    if isinstance(value, hookline.Event):
        return ("event", value.kind, tuple(value.tags))
    return repr(value)


def replaced(event: Any, name: str) -> Any:
    """A new event that replaces ``event``, tagged with ``name``."""
    return type(event).from_dict({**event.to_dict(), "tags": [*event.tags, name]})


def _error_text(error: BaseException, depth: int = 0) -> str:
    """``Type: message``, then the exceptions it was raised from (``__cause__``) and while
    handling (``__context__``), a few deep."""
    message = str(error)
    for words in ("did not yield", "has second yield"):
        if words in message:
            message = words
    text = f"{type(error).__name__}: {message}"
    if depth < 3:
        for label, linked in (("from", error.__cause__), ("during", error.__context__)):
            if linked is not None:
                text += f" [{label} {_error_text(linked, depth + 1)}]"
    return text


def _run(call: Callable[[], Any], trace: list[str]) -> Outcome:
    trace.clear()
    try:
        result = call()
    except BaseException as exc:
        stage = getattr(exc, "stage", None) or getattr(exc, _fold.CULPRIT, None)
        outcome = Outcome(list(trace), None, _error_text(exc), stage)
        del exc
    else:
        outcome = Outcome(list(trace), summary(result))
    if outcome.error and "has second yield" in outcome.error:
        gc.collect()  # the wrappers left suspended are closed now, not during the next way
    trace.clear()
    return outcome


def documented_order(impls: Sequence[Impl]) -> list[Impl]:
    """The call order hookline documents: tryfirst, the rest, trylast; by name within each."""
    return sorted(impls, key=lambda i: (not i.tryfirst, i.trylast and not i.tryfirst, i.name))


def pipeline_of(impls: Sequence[Impl]) -> hookline.Pipeline:
    """A pipeline with each of ``impls`` a plugin of its own, named after it."""
    objects = []
    for impl in impls:
        marker = hookline.hookimpl(wrapper=impl.wrapper, tryfirst=impl.tryfirst,
                                   trylast=impl.trylast and not impl.tryfirst)
        marker(getattr(impl.function, "__func__", impl.function))  # a method's function
        objects.append((impl.name, types.SimpleNamespace(hookline_validate=impl.function)))
    with hookline.Registry().activate():
        return hookline.Pipeline.from_plugins(objects)


def call_order(pipeline: hookline.Pipeline, impls: Sequence[Impl]) -> list[Impl]:
    """``impls`` in the order the pipeline calls them (wrappers first, outermost first)."""
    by_name = {impl.name: impl for impl in impls}
    return [by_name[i.plugin_name] for i in pipeline.plugins.impls("hookline_validate")]


def compiled(pipeline: hookline.Pipeline, trace: list[str]) -> Outcome:
    event = pipeline.make_event(EVENT)
    return _run(lambda: pipeline._phases[0](event), trace)


def folded(ordered: Sequence[Impl], trace: list[str]) -> Outcome:
    stages = [(i.name, i.function) for i in ordered if not i.wrapper]
    wrappers = [i.function for i in ordered if i.wrapper]
    names = [i.name for i in ordered if i.wrapper]  # a wrapper's own errors are its plugin's
    event = hookline.DefaultEvent.from_dict(dict(EVENT))
    return _run(lambda: _fold.fold(event, stages, wrappers, names), trace)


def _adapted(function: Callable[[Any], Any], cell: list[Any]) -> Callable[[Any], None]:
    def hookline_validate(event: Any) -> None:
        returned = function(cell[0])  # the current event, not pluggy's (the original one)
        if returned is not None:
            cell[0] = returned

    return hookline_validate


def with_pluggy(ordered: Sequence[Impl], trace: list[str]) -> Outcome:
    manager = pluggy.PluginManager("foldcheck")
    manager.add_hookspecs(_Spec)
    cell: list[Any] = []

    @check_impl(trylast=True)
    def hookline_validate(event: Any) -> Any:
        return cell[0]

    def last(impl: Impl) -> bool:
        return impl.trylast and not impl.tryfirst

    registration = [*reversed([i for i in ordered if not last(i)]),
                    *(i for i in ordered if last(i))]
    for impl in registration:
        function = impl.function if impl.wrapper else _adapted(impl.function, cell)
        marker = check_impl(wrapper=impl.wrapper, tryfirst=impl.tryfirst, trylast=last(impl))
        marker(getattr(function, "__func__", function))
        manager.register(types.SimpleNamespace(hookline_validate=function), name=impl.name)
    manager.register(types.SimpleNamespace(hookline_validate=hookline_validate), name="~result")
    event = hookline.DefaultEvent.from_dict(dict(EVENT))

    def call() -> Any:
        cell[:] = [event]
        return manager.hook.hookline_validate(event=event)

    return _run(call, trace)


def three_ways(impls: Sequence[Impl], trace: list[str]) -> Outcome:
    """Run the phase the three ways; assert they agree; return the outcome."""
    pipeline = pipeline_of(impls)
    ordered = call_order(pipeline, impls)
    ours, reference, theirs = (compiled(pipeline, trace), folded(ordered, trace),
                               with_pluggy(ordered, trace))
    assert ours == reference, "the compiled plan differs from the reference fold"
    assert ours.stage == reference.stage, "the stage named differs from the reference fold"
    assert ours == theirs, "the compiled plan differs from pluggy's caller"
    return ours


Wrapper = Callable[[Any], Generator[Any, Any, Any]]
