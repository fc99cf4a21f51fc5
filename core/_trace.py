"""``--trace-hooks``: a log record for each hook implementation call, for watching a run.

Tracing is built into a pipeline only when asked (``Config.trace_hooks``): the pipeline then
compiles its phase plans over traced implementations (:meth:`Tracer.wrap`) and has pluggy
report the other hooks' calls (:meth:`Tracer.monitor`). A pipeline built without it runs the
plain plans: tracing that is off costs nothing per event, not even a check.

Each record, on the logger ``hookline.trace`` at INFO, reads
``fraud.velocity (validate) rejected in 0.012 ms: velocity over 10/min`` and carries
``plugin``, ``stage``, ``hook``, ``duration_ms`` and ``outcome`` (``ok``, ``replaced``,
``rejected``, ``dropped``, ``error``) as attributes, for ``--log-format json``. With
``every=N`` (``--trace-sample N``), one call in N of each implementation is timed and logged.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from .errors import Drop, Reject

__all__ = ["Tracer"]

log = logging.getLogger("hookline.trace")


def _outcome(error: BaseException | None, result: Any) -> tuple[str, str]:
    """``(outcome, detail)`` of one call."""
    if error is None:
        return ("ok", "") if result is None else ("replaced", "returned a new event")
    if isinstance(error, Reject):
        return "rejected", str(getattr(error, "reason", "") or error)
    if isinstance(error, Drop):
        return "dropped", str(getattr(error, "reason", "") or "")
    return "error", f"{type(error).__name__}: {error}"


class Tracer:
    """Wraps phase implementations, and watches the other hooks, to log their calls."""

    def __init__(self, every: int = 1) -> None:
        self.every = max(1, int(every))
        if log.getEffectiveLevel() > logging.INFO:
            # Asked for by name, the trace is not hidden by a level set for all of hookline
            # (-q): a --trace-hooks that printed nothing would be a silent no-op.
            log.setLevel(logging.INFO)

    @staticmethod
    def emit(name: str, hook: str, seconds: float, error: BaseException | None,
             result: Any, *, plugin: str | None = None) -> None:
        """Log one call of ``hook`` by ``name``: a stage (``fraud.velocity``), a plugin's hook
        function (``monitoring``), or the implementations a pluggy call ran, with ``plugin``
        naming them all."""
        outcome, detail = _outcome(error, result)
        milliseconds = seconds * 1e3
        owner, dot, _ = name.partition(".")
        log.info("%s (%s) %s in %.3f ms%s", name, hook.removeprefix("hookline_"), outcome,
                 milliseconds, f": {detail}" if detail else "",
                 extra={"plugin": plugin if plugin is not None else owner,
                        "stage": name if dot and plugin is None else None, "hook": hook,
                        "outcome": outcome, "duration_ms": round(milliseconds, 6),
                        "detail": detail or None})

    def wrap(self, function: Callable[..., Any], name: str, hook: str) -> Callable[..., Any]:
        """``function`` (a phase implementation, called with the event) logging one call in
        ``every``; ``async def`` stays ``async def``, so the plan still awaits it."""
        every, emit, clock = self.every, self.emit, time.perf_counter
        calls = itertools.count()

        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def traced_async(event: Any) -> Any:
                if next(calls) % every:
                    return await function(event)
                start = clock()
                try:
                    result = await function(event)
                except BaseException as error:
                    emit(name, hook, clock() - start, error, None)
                    raise
                emit(name, hook, clock() - start, None, result)
                return result

            return traced_async

        @functools.wraps(function)
        def traced(event: Any) -> Any:
            if next(calls) % every:
                return function(event)
            start = clock()
            try:
                result = function(event)
            except BaseException as error:
                emit(name, hook, clock() - start, error, None)
                raise
            emit(name, hook, clock() - start, None, result)
            return result

        return traced

    def monitor(self, manager: Any) -> None:
        """Log the calls pluggy makes of ``manager``'s hooks (the lifecycle and observing
        hooks: the phases run through the compiled plans), each naming the implementations
        it called, one call in ``every`` of each hook."""
        started: list[float | None] = []
        calls: dict[str, itertools.count[int]] = {}
        every = self.every

        def before(hook: str, impls: Sequence[Any], kwargs: Any) -> None:
            counter = calls.setdefault(hook, itertools.count())
            started.append(None if next(counter) % every else time.perf_counter())

        def after(outcome: Any, hook: str, impls: Sequence[Any], kwargs: Any) -> None:
            start = started.pop()
            if start is None or not impls:
                return
            error = getattr(outcome, "exception", None)
            names = ", ".join(impl.plugin_name for impl in impls)
            self.emit(names, hook, time.perf_counter() - start, error, None, plugin=names)

        manager.add_hookcall_monitoring(before, after)
