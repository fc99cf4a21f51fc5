"""What one phase does, in plain Python: the specification of the compiled call plans.

:func:`fold` is written to be read, not to be fast. Nothing calls it per event: ``_codegen``
compiles the same rules into flat code, and the tests hold the compiled plans, this fold and
pluggy's own caller to the same results on random plugin sets. Its rules for ``wrapper=True``
generators are pluggy's (``pluggy._callers._multicall``); the difference is the fold itself:
pluggy collects the implementations' results into a list, a phase hands each one's returned
event on to the next implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

from .errors import Drop, Reject

__all__ = ["CULPRIT", "blame", "fold", "own", "wrapper_error"]

#: The attribute that names, on an exception, the stage that raised it.
CULPRIT = "__hookline_stage__"

def blame(error: BaseException, stage: str) -> None:
    """Note on ``error`` that ``stage`` raised it (the first note, the innermost, stays)."""
    if not hasattr(error, CULPRIT):
        try:
            setattr(error, CULPRIT, stage)
        except AttributeError:  # an exception type that refuses attributes: it stays anonymous
            pass


def wrapper_error(wrapper: Any, what: str) -> RuntimeError:
    """The error for a wrapper that ``did not yield`` or ``has second yield`` (pluggy's words),
    naming its function, file and line."""
    code = getattr(getattr(wrapper, "__func__", wrapper), "__code__", None)
    where = f"{code.co_name!r} ({code.co_filename}:{code.co_firstlineno})" if code else repr(
        wrapper)
    return RuntimeError(f"phase wrapper {where} {what}: a wrapper=True implementation yields "
                        "exactly once")


def own(error: BaseException, name: str) -> None:
    """Note that ``name`` (a phase wrapper's plugin) raised ``error``, unless a stage did: a
    ``Reject`` or ``Drop`` gets it as ``.stage``, anything else as its culprit."""
    if isinstance(error, (Reject, Drop)):
        if error.stage is None:
            error.stage = name
    else:
        blame(error, name)


def fold(event: Any, stages: Sequence[tuple[str, Callable[[Any], Any]]],
         wrappers: Sequence[Callable[[Any], Generator[Any, Any, Any]]] = (),
         wrapper_names: Sequence[str] = ()) -> Any:
    """Run one phase on ``event``: the ``(name, function)`` pairs of ``stages`` in order, inside
    ``wrappers`` (generator functions, the first outermost); return the phase's result.

    Each wrapper runs to its ``yield``, then the stages run. A stage's non-None return replaces
    the event for the next stage, and the last event is what the innermost ``yield`` returns.
    ``Reject`` and ``Drop`` get ``.stage`` set (unless set already), any other exception
    (``SystemExit``, ``KeyboardInterrupt`` and other ``BaseException``\\ s included) is
    :func:`blame`\\ d on its stage; the stages stop and the exception is thrown in at the
    ``yield`` instead. Then, innermost first, what a wrapper returns is the result the next one
    out gets, and what it raises is thrown into the next one out. A wrapper that does not yield
    fails as if the phase had raised there; a StopIteration from inside that a wrapper turns
    into a RuntimeError (PEP 479 does, or ``raise ... from`` it) goes on as the StopIteration;
    a wrapper that yields again is closed, and the phase raises RuntimeError at once, past the
    outer wrappers (unless closing it raises: that error goes on out).

    ``wrapper_names``: the plugin of each wrapper. What a wrapper raises of its own (not what
    it passes on from the stages) is then :func:`own`\\ ed by it: it is that plugin's failure.
    """
    entered: list[tuple[Any, Generator[Any, Any, Any]]] = []
    result: Any = None
    error: BaseException | None = None
    try:
        for wrapper in wrappers:
            generator = wrapper(event)
            try:
                next(generator)
            except StopIteration:
                raise wrapper_error(wrapper, "did not yield")  # noqa: B904 - as pluggy
            entered.append((wrapper, generator))
        for name, stage in stages:
            try:
                returned = stage(event)
            except (Reject, Drop) as signal:
                if signal.stage is None:
                    signal.stage = name
                raise
            except BaseException as exc:  # SystemExit, KeyboardInterrupt… are its failures too
                blame(exc, name)
                raise
            if returned is not None:
                event = returned
        result = event
    except BaseException as exc:
        error = exc
        if wrapper_names and len(entered) < len(wrappers):  # raised entering that wrapper
            own(error, wrapper_names[len(entered)])
    for index in reversed(range(len(entered))):
        wrapper, generator = entered[index]
        try:
            if error is None:
                generator.send(result)
            else:
                generator.throw(error)
        except StopIteration as stop:
            result, error = stop.value, None
        except BaseException as exc:
            if not (isinstance(error, StopIteration) and isinstance(exc, RuntimeError)
                    and exc.__cause__ is error):
                error = exc
                if wrapper_names:
                    own(error, wrapper_names[index])
        else:
            try:
                generator.close()
            except BaseException as exc:
                error = exc
                if wrapper_names:
                    own(error, wrapper_names[index])
            else:
                failure = wrapper_error(wrapper, "has second yield")
                if wrapper_names:
                    own(failure, wrapper_names[index])
                raise failure
    if error is not None:
        raise error
    return result
