"""Cross-cutting behaviour for stages, by hand or by configuration.

Six factories, each returning a small :class:`Behavior` that wraps a function::

    from hookline.behaviors import cached, logged, retry, timed, timeout, traced

    class Lookup(hookline.Stage, phase="enrich"):
        @retry(attempts=3, backoff=0.01)
        @timeout(0.05)
        def process(self, event): ...

Every wrapper keeps the wrapped function's identity (:func:`functools.update_wrapper`:
``inspect.signature`` and ``__wrapped__`` see the original) and its exact parameters, is
``async def`` when the wrapped callable is, and lets ``Reject``, ``Drop`` and every
non-``Exception`` ``BaseException`` (``KeyboardInterrupt``, ``SystemExit``) through untouched:
they are never retried, swallowed or cached.

For configuration, :func:`parse` turns ``"retry(attempts=3)"`` or ``{"retry": {"attempts":
3}}`` into a behaviour (literals only, never ``eval``), :func:`parse_table` validates a whole
``[behaviors]`` table, and :func:`inject` applies a list of behaviours to a function, the
first outermost. The spec grammar and its errors live in ``hookline._behavior_specs``; what
``timed()`` records, :class:`Metrics` and its histograms, in :mod:`hookline.metrics`.

How a wrapper is made: each behaviour's per-call code is one template below, serving sync
and ``async def`` functions alike, compiled once per wrapped function by
:func:`hookline._codegen.compile_function` with the wrapped function's own parameter list
(``def retry_wrapper(self, event):``), so a call costs no ``*args``/``**kwargs`` packing;
its source shows in tracebacks. The options are precomputed into the template's globals.

A :class:`Behavior` pickles by its options; a wrapped function pickles only by reference (a
decorated module-level function does; an injected bound method does not): to cross a process,
ship the behaviours (or their specs) and inject them again on the other side.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from contextvars import copy_context
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar, cast

from . import _behavior_specs, _codegen
from . import metrics as _metrics
from ._behavior_specs import Rule, match, matching
from .errors import BehaviorError, Drop, Reject, StageTimeout, short_repr
from .metrics import BUCKETS, Metrics

__all__ = [
    "BUCKETS",  # from hookline.metrics, where it is documented, as is Metrics
    "DEFAULT_METRICS",
    "FACTORIES",
    "Behavior",
    "BehaviorError",
    "Metrics",
    "Rule",
    "StageTimeout",
    "applied",
    "cached",
    "inject",
    "logged",
    "match",
    "matching",
    "parse",
    "parse_table",
    "retry",
    "timed",
    "timeout",
    "traced",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The attribute on a wrapper that lists the behaviours applied to it, outermost first.
_APPLIED = "__hookline_behaviors__"


# --------------------------------------------------------------------------------------------
# Errors


def _invalid(behavior: str, argument: str, value: Any, what: str) -> BehaviorError:
    return BehaviorError(f"{behavior}: {argument}={short_repr(value)} is invalid ({what})",
                         behavior, argument)


def _integer(behavior: str, argument: str, value: Any, *, minimum: int) -> int:
    if type(value) is not int or value < minimum:
        raise _invalid(behavior, argument, value, f"must be an integer >= {minimum}")
    return value


def _seconds(behavior: str, argument: str, value: Any, *, positive: bool) -> float:
    ok = type(value) in (int, float) and math.isfinite(value)
    ok = ok and (value > 0 if positive else value >= 0)
    if not ok:
        raise _invalid(behavior, argument, value,
                       f"must be a number of seconds {'> 0' if positive else '>= 0'}")
    seconds: float = value
    return seconds


def _name(behavior: str, argument: str, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise _invalid(behavior, argument, value, "must be a non-empty string or None")
    return value


# --------------------------------------------------------------------------------------------
# Making wrappers: the wrapped function's parameters, a template, one compile


def _qualified_name(function: Any) -> str:
    """``module.Qualname`` of a callable, the default name in metrics, logs and spans."""
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", None) or type(function).__qualname__
    return f"{module}.{qualname}" if module else qualname


def _compile_wrapper(behavior: Behavior, template: str, function: Callable[..., Any],
                     namespace: dict[str, Any], stage: str, is_async: bool) -> Any:
    """The behaviour's ``template`` filled in for ``function`` and compiled (``_codegen``)."""
    return _codegen.compile_wrapper(
        template, function, namespace, name=f"{behavior.name}_wrapper",
        what=f"{behavior!r} of {stage}", is_async=is_async, fill=behavior._fields)


def applied(function: Callable[..., Any]) -> tuple[Behavior, ...]:
    """The behaviours wrapped around ``function``, outermost first (``()`` for none).

    Works on bound methods whose function was decorated in the class body, which is how
    ``hookline plugins`` finds the behaviours a stage's own code applies.
    """
    found: tuple[Behavior, ...] = getattr(function, _APPLIED, ())
    return found


# --------------------------------------------------------------------------------------------
# The base class


class Behavior:
    """A configured behaviour: call it on a function to get the wrapped function.

    ``name`` is the factory's name (``"retry"``), ``options`` every argument of the factory,
    by name. Equal when the name and options are; pickles as a call of its factory; its repr
    is a spec that :func:`parse` reads back (when every option is a literal).

    A subclass gives its per-call ``_template`` (placeholders ``{wrapper}``, ``{params}``,
    ``{arguments}``, ``{async_}``, ``{await_}``, plus its own :meth:`_fields`) and the
    globals the template uses (:meth:`_namespace`), computed once per wrapped function.
    """

    __slots__ = ("options",)
    name: ClassVar[str] = "behavior"
    _template: ClassVar[str] = ""
    #: Options always shown in the repr; the others are shown when not the default.
    _always_shown: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: dict[str, Any]) -> None:
        self.options: Mapping[str, Any] = MappingProxyType(options)

    def __call__(self, function: F) -> F:
        """Decorate ``function`` (``@retry(attempts=3)``)."""
        return self.wrap(function)

    def wrap(self, function: F, *, name: str | None = None,
             metrics: Metrics | None = None) -> F:
        """Wrap ``function``; ``name`` is the stage name used in metrics, logs and spans
        (default ``module.Qualname``), ``metrics`` where a ``timed()`` without its own records.
        """
        if not callable(function):
            raise TypeError(f"{self!r} wraps a callable, not {short_repr(function)}")
        stage = name if name is not None else _qualified_name(function)
        is_async = inspect.iscoroutinefunction(function) or (
            not inspect.isroutine(function)  # a callable object with an async __call__
            and inspect.iscoroutinefunction(type(function).__call__))
        namespace = self._namespace(stage, metrics, is_async)
        if namespace is None:  # nothing to do here (traced without OpenTelemetry)
            return function
        wrapper = _compile_wrapper(self, self._template_for(is_async), function, namespace,
                                   stage, is_async)
        functools.update_wrapper(wrapper, function)
        self._attach(wrapper, namespace)
        setattr(wrapper, _APPLIED, (self, *applied(function)))
        return cast(F, wrapper)

    def _template_for(self, is_async: bool) -> str:
        return self._template

    def _namespace(self, stage: str, metrics: Metrics | None,
                   is_async: bool) -> dict[str, Any] | None:
        raise NotImplementedError

    def _fields(self, shape: _codegen.WrapperShape) -> dict[str, str]:
        return {}

    def _attach(self, wrapper: Any, namespace: dict[str, Any]) -> None:
        """Set attributes on the finished wrapper (``cache_clear``)."""

    # -- identity, display, pickling --------------------------------------------------------
    @property
    def spec(self) -> str:
        """The behaviour as a spec string, ``retry(attempts=3)`` (what ``repr`` shows)."""
        return repr(self)

    def _show(self, option: str, value: Any) -> str:
        return repr(value)

    def __repr__(self) -> str:
        defaults = _defaults(self.name)
        shown = ", ".join(
            f"{option}={self._show(option, value)}"
            for option, value in self.options.items()
            if option in self._always_shown or value != defaults.get(option, _REQUIRED)
        )
        return f"{self.name}({shown})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Behavior):
            return NotImplemented
        return type(self) is type(other) and dict(self.options) == dict(other.options)

    def __hash__(self) -> int:
        return hash((self.name, *self.options.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FACTORIES[self.name], tuple(self.options.values()))


_REQUIRED = inspect.Parameter.empty


@functools.cache
def _defaults(name: str) -> dict[str, Any]:
    parameters = inspect.signature(FACTORIES[name]).parameters
    return {key: parameter.default for key, parameter in parameters.items()}


# --------------------------------------------------------------------------------------------
# retry


def _exception_name(cls: type[BaseException]) -> str:
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}:{cls.__qualname__}"


def _resolve_exception(name: str) -> Any:
    import builtins
    import importlib

    if ":" not in name and "." not in name:
        return getattr(builtins, name, None)
    module, _, attr = name.partition(":") if ":" in name else name.rpartition(".")
    try:
        found: Any = importlib.import_module(module)
        for part in attr.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return None
    return found


def _exceptions(value: Any) -> tuple[type[Exception], ...]:
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if not items:
        raise _invalid("retry", "on", value, "name at least one exception type to retry")
    found = []
    for item in items:
        cls = _resolve_exception(item) if isinstance(item, str) else item
        if cls is None:
            raise _invalid("retry", "on", item, "no such exception type; use a builtin name "
                           "like 'ConnectionError' or 'package.module:Error'")
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            raise _invalid("retry", "on", item, "must be Exception subclasses: Reject, Drop "
                           "and other BaseExceptions are never retried")
        found.append(cls)
    return tuple(found)


def _add_note(error: BaseException, note: str) -> None:
    add_note = getattr(error, "add_note", None)  # Python >= 3.11
    if add_note is not None:
        add_note(note)


class _Retry(Behavior):
    __slots__ = ("_attempts", "_backoff", "_jitter", "_on")
    name = "retry"
    _always_shown = ("attempts",)
    _template = """\
{async_}def {wrapper}({params}):
    _attempt = 1
    while True:
        try:
            return {await_}_function({arguments})
        except _on as _error:
            if _attempt >= _attempts:
                _give_up(_error)
                raise
            _pause = _pause_after(_attempt)
        _attempt += 1
        if _pause:
            {await_}_sleep(_pause)
"""

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self._attempts: int = options["attempts"]
        self._backoff: float = options["backoff"]
        self._jitter: float = options["jitter"]
        self._on: tuple[type[Exception], ...] = options["on"]

    def _show(self, option: str, value: Any) -> str:
        if option == "on":
            return repr(tuple(_exception_name(cls) for cls in value))
        return repr(value)

    def _pause(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure: backoff doubling, plus jitter."""
        pause: float = self._backoff * 2.0 ** min(failures - 1, 62)
        if self._jitter:
            import random

            pause += random.uniform(0, self._jitter)
        return pause

    def _namespace(self, stage: str, metrics: Metrics | None,
                   is_async: bool) -> dict[str, Any]:
        attempts = self._attempts

        def give_up(error: BaseException) -> None:
            if attempts > 1:
                _add_note(error, f"{stage}: retry gave up after {attempts} attempts")

        if is_async:
            import asyncio

            sleep: Callable[[float], Any] = asyncio.sleep
        else:
            sleep = time.sleep
        return {"_on": self._on, "_attempts": attempts, "_give_up": give_up,
                "_pause_after": self._pause, "_sleep": sleep}


def retry(attempts: int = 3, backoff: float = 0.0, jitter: float = 0.0,
          on: Any = (Exception,)) -> Behavior:
    """Call again when the call raises one of ``on``, up to ``attempts`` calls in all.

    Waits ``backoff`` seconds after the first failure, doubling after each next one, plus a
    random ``0..jitter`` seconds. ``on``: exception types (or names, ``"ConnectionError"``,
    ``"package.module:Error"``), all ``Exception`` subclasses: ``Reject``, ``Drop`` and other
    ``BaseException`` are never retried. When the last attempt fails its exception propagates
    unchanged (with a note, on Python >= 3.11). The success path costs one ``try``.
    """
    return _Retry({
        "attempts": _integer("retry", "attempts", attempts, minimum=1),
        "backoff": _seconds("retry", "backoff", backoff, positive=False),
        "jitter": _seconds("retry", "jitter", jitter, positive=False),
        "on": _exceptions(on),
    })


# --------------------------------------------------------------------------------------------
# timeout


class _Call:
    """One call handed to a worker thread, run in the caller's context; ``done`` is released
    when it has returned or raised."""

    __slots__ = ("call", "context", "done", "error", "result")

    def __init__(self, call: Callable[[], Any]) -> None:
        self.call = call
        self.context = copy_context()  # flags and other context variables follow the call
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Lock()
        self.done.acquire()

    def run(self) -> None:
        try:
            self.result = self.context.run(self.call)
        except BaseException as error:  # carried to the caller, whatever it is
            self.error = error
        finally:
            self.done.release()


class _Workers:
    """Daemon threads that run calls under a deadline.

    A new thread starts when every thread is busy (an abandoned call keeps its thread until
    it returns); a thread idle for ``idle`` seconds ends. Daemon threads: a sleeper left behind
    never keeps the interpreter from exiting.
    """

    def __init__(self, idle: float = 60.0) -> None:
        import queue

        self._tasks: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._empty = queue.Empty
        self._lock = threading.Lock()
        self._idle_threads = 0
        self._started = 0
        self._idle = idle

    def submit(self, call: _Call) -> None:
        with self._lock:
            if self._idle_threads:
                self._idle_threads -= 1
            else:
                self._started += 1
                threading.Thread(target=self._work, name=f"hookline-timeout-{self._started}",
                                 daemon=True).start()
        self._tasks.put(call)

    def _work(self) -> None:
        get, idle = self._tasks.get, self._idle
        while True:
            try:
                call: _Call | None = get(timeout=idle)
            except self._empty:
                with self._lock:
                    if self._idle_threads:  # no call is on its way to this thread: end
                        self._idle_threads -= 1
                        return
                continue
            assert call is not None
            call.run()
            call = None
            with self._lock:
                self._idle_threads += 1


_workers: _Workers | None = None
_workers_lock = threading.Lock()
_fork_hook = False


def _forget_workers() -> None:
    global _workers, _workers_lock
    _workers = None  # a forked child has none of its parent's threads,
    _workers_lock = threading.Lock()  # and a lock one of them held would stay held


def _the_workers() -> _Workers:
    """The process's worker threads, started on the first sync call under a timeout."""
    global _workers, _fork_hook
    with _workers_lock:
        if not _fork_hook:
            os.register_at_fork(after_in_child=_forget_workers)
            _fork_hook = True
        if _workers is None:
            _workers = _Workers()
        return _workers


def _within_thread(seconds: float, stage: str, function: Callable[[], Any]) -> Any:
    """Run ``function()`` in a worker thread; stop waiting for it after ``seconds``."""
    call = _Call(function)
    (_workers or _the_workers()).submit(call)
    if not call.done.acquire(True, seconds):
        raise StageTimeout(seconds, stage)  # the call runs on in its thread, unheard
    error = call.error
    if error is None:
        return call.result
    del call
    try:
        raise error
    finally:
        del error  # no reference cycle through this frame


if sys.version_info >= (3, 11):

    async def _within_task(seconds: float, stage: str, awaitable: Any) -> Any:
        """Await ``awaitable`` in this task, cancelled after ``seconds``."""
        import asyncio

        scope = asyncio.timeout(seconds)
        try:
            async with scope:
                return await awaitable
        except TimeoutError:
            if scope.expired():
                raise StageTimeout(seconds, stage) from None
            raise  # the stage's own TimeoutError

else:

    async def _within_task(seconds: float, stage: str, awaitable: Any) -> Any:
        """Await ``awaitable``, cancelled after ``seconds`` (``asyncio.wait_for``)."""
        import asyncio

        try:
            return await asyncio.wait_for(awaitable, seconds)
        except asyncio.TimeoutError:
            raise StageTimeout(seconds, stage) from None


class _Timeout(Behavior):
    __slots__ = ("_seconds",)
    name = "timeout"
    _always_shown = ("seconds",)
    _sync_template = """\
def {wrapper}({params}):
    return _within_thread(_seconds, _stage, lambda: _function({arguments}))
"""
    _async_template = """\
async def {wrapper}({params}):
    return await _within_task(_seconds, _stage, _function({arguments}))
"""

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self._seconds: float = options["seconds"]

    def _template_for(self, is_async: bool) -> str:
        return self._async_template if is_async else self._sync_template

    def _namespace(self, stage: str, metrics: Metrics | None,
                   is_async: bool) -> dict[str, Any]:
        return {"_seconds": self._seconds, "_stage": stage, "_within_thread": _within_thread,
                "_within_task": _within_task}


def timeout(seconds: float) -> Behavior:
    """Abandon a call that runs past ``seconds``: the caller gets :class:`StageTimeout` at
    the deadline.

    A sync call runs in a daemon worker thread (with the caller's context variables, so flags
    apply); at the deadline the caller stops waiting, and the abandoned call keeps running in
    its thread until it returns, its result discarded (Python cannot stop a thread). The
    hand-over costs a thread switch per call. An ``async def`` call is cancelled at the
    deadline (``asyncio.timeout``; ``asyncio.wait_for`` on Python 3.10).
    """
    seconds = _seconds("timeout", "seconds", seconds, positive=True)
    if seconds > threading.TIMEOUT_MAX:
        raise _invalid("timeout", "seconds", seconds, f"at most {threading.TIMEOUT_MAX:g}")
    return _Timeout({"seconds": seconds})


# --------------------------------------------------------------------------------------------
# timed

#: Where ``timed()`` records when neither it nor :func:`inject` names a :class:`Metrics`.
DEFAULT_METRICS = Metrics()


class _Timed(Behavior):
    __slots__ = ("_metrics", "_name")
    name = "timed"
    # The last line is Histogram.add inlined: one addition records the call and its time.
    _template = """\
{async_}def {wrapper}({params}):
    _start = _clock()
    try:
        return {await_}_function({arguments})
    except Exception:
        _errors[0] += 1
        raise
    finally:
        _elapsed = _clock() - _start
        _length = _elapsed.bit_length()
        _bins[(_elapsed >> _SHIFTS[_length]) + _OFFSETS[_length]] += _elapsed + _SAMPLE
"""

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self._name: str | None = options["name"]
        self._metrics: Metrics | None = options["metrics"]

    def _namespace(self, stage: str, metrics: Metrics | None,
                   is_async: bool) -> dict[str, Any]:
        where = self._metrics if self._metrics is not None else metrics
        latency, errors = (where if where is not None else DEFAULT_METRICS).series(
            self._name or stage)
        return {"_clock": time.perf_counter_ns, "_bins": latency.bins, "_errors": errors,
                "_SHIFTS": _metrics._SHIFTS, "_OFFSETS": _metrics._OFFSETS,
                "_SAMPLE": _metrics.SAMPLE}


def timed(name: str | None = None, metrics: Metrics | None = None) -> Behavior:
    """Count calls and errors and record each call's latency in a histogram.

    Recorded under ``name`` (default: the stage name given to :func:`inject`, else the
    function's ``module.Qualname``) into ``metrics``, else the :class:`Metrics` given to
    :func:`inject`, else :data:`DEFAULT_METRICS`. Per call: two clock reads and one addition
    to the call's bucket of a :class:`hookline.metrics.Histogram`, which holds its calls and
    their total time in one int.
    """
    if metrics is not None and not isinstance(metrics, Metrics):
        raise _invalid("timed", "metrics", metrics, "must be a hookline.metrics.Metrics")
    return _Timed({"name": _name("timed", "name", name), "metrics": metrics})


# --------------------------------------------------------------------------------------------
# traced


def _signal_outcome(signal: BaseException) -> str:
    return "rejected" if isinstance(signal, Reject) else "dropped"


class _Traced(Behavior):
    __slots__ = ("_name",)
    name = "traced"
    _template = """\
{async_}def {wrapper}({params}):
    with _start_span(_span_name, attributes=_attributes, record_exception=False,
                     set_status_on_exception=False) as _span:
        try:
            return {await_}_function({arguments})
        except Exception as _error:
            _span.record_exception(_error)
            _span.set_status(_Status(_ERROR, f"{{type(_error).__name__}}: {{_error}}"))
            raise
        except (_Reject, _Drop) as _signal:
            _span.set_attribute("hookline.outcome", _signal_outcome(_signal))
            _span.set_attribute("hookline.reason", _signal.reason)
            raise
"""

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self._name: str | None = options["name"]

    def _namespace(self, stage: str, metrics: Metrics | None,
                   is_async: bool) -> dict[str, Any] | None:
        import importlib

        try:
            trace = importlib.import_module("opentelemetry.trace")
        except ImportError:
            return None  # no OpenTelemetry: no wrapper, no cost
        tracer = trace.get_tracer("hookline")
        return {"_start_span": tracer.start_as_current_span, "_span_name": self._name or stage,
                "_attributes": {"hookline.stage": stage}, "_Status": trace.Status,
                "_ERROR": trace.StatusCode.ERROR, "_Reject": Reject, "_Drop": Drop,
                "_signal_outcome": _signal_outcome}


def traced(name: str | None = None) -> Behavior:
    """An OpenTelemetry span per call, named ``name`` (default: the stage name), with the
    attribute ``hookline.stage``.

    An error is recorded on the span and sets its status; ``Reject``/``Drop`` set the
    attributes ``hookline.outcome`` and ``hookline.reason`` and are not errors. Without
    OpenTelemetry (``pip install hookline[otel]``) the function is returned unwrapped: it
    costs nothing, and :func:`applied` does not list it. ``opentelemetry`` is imported when a
    function is wrapped, never by importing this module.
    """
    return _Traced({"name": _name("traced", "name", name)})


# --------------------------------------------------------------------------------------------
# logged


def _outcome(error: BaseException | None) -> tuple[str, str | None]:
    if error is None:
        return "ok", None
    if isinstance(error, (Reject, Drop)):
        return _signal_outcome(error), error.reason
    kind = "error" if isinstance(error, Exception) else "interrupted"
    return kind, f"{type(error).__name__}: {error}"


class _Logged(Behavior):
    __slots__ = ("_level", "_logger", "_name")
    name = "logged"
    _template = """\
{async_}def {wrapper}({params}):
    if not _enabled(_level):
        return {await_}_function({arguments})
    _start = _clock()
    try:
        _result = {await_}_function({arguments})
    except BaseException as _error:
        _emit(_clock() - _start, _error)
        raise
    _emit(_clock() - _start, None)
    return _result
"""

    def __init__(self, options: dict[str, Any]) -> None:
        import logging

        super().__init__(options)
        level = options["level"]
        self._level: int = level if isinstance(level, int) else logging.getLevelName(level)
        self._name: str | None = options["name"]
        self._logger = logging.getLogger(options["logger"])

    def _namespace(self, stage: str, metrics: Metrics | None,
                   is_async: bool) -> dict[str, Any]:
        stage = self._name or stage
        logger, level = self._logger, self._level

        def emit(seconds: float, error: BaseException | None) -> None:
            outcome, detail = _outcome(error)
            milliseconds = seconds * 1e3
            logger.log(level, "%s %s in %.3f ms%s", stage, outcome, milliseconds,
                       f": {detail}" if detail else "",
                       extra={"stage": stage, "outcome": outcome,
                              "duration_ms": milliseconds, "detail": detail})

        return {"_enabled": logger.isEnabledFor, "_level": level, "_clock": time.perf_counter,
                "_emit": emit}


def logged(level: str | int = "DEBUG", name: str | None = None,
           logger: str = "hookline.behaviors") -> Behavior:
    """A :mod:`logging` record per call, at ``level``, on the logger named ``logger``.

    The message reads ``fraud.velocity ok in 0.012 ms``; the record carries ``stage``,
    ``outcome`` (``ok``, ``error``, ``rejected``, ``dropped``, ``interrupted``),
    ``duration_ms`` and ``detail`` (the error or the reason) as attributes, for structured
    handlers. While the level is not enabled a call costs one ``isEnabledFor`` check.
    """
    import logging

    if isinstance(level, str) and isinstance(logging.getLevelName(level.upper()), int):
        level = level.upper()
    elif type(level) is not int or level < 0:
        raise _invalid("logged", "level", level,
                       "must be a level name (DEBUG, INFO, WARNING, ERROR) or a number >= 0")
    if not isinstance(logger, str) or not logger:
        raise _invalid("logged", "logger", logger, "must be a logger name")
    return _Logged({"level": level, "name": _name("logged", "name", name), "logger": logger})


# --------------------------------------------------------------------------------------------
# cached


class _Cached(Behavior):
    __slots__ = ("_key", "_maxsize", "_ttl")
    name = "cached"
    _template = """\
{async_}def {wrapper}({params}):
    _key = {key}
    try:
        _value, _expires = _cache[_key]
        if _ttl is None or _clock() < _expires:
            _move_to_end(_key)
            return _value
    except (KeyError, TypeError):  # a miss, or an unhashable key
        pass
    _value = {await_}_function({arguments})
    _store(_key, _value)
    return _value
"""

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self._key: Any = options["key"]
        self._maxsize: int | None = options["maxsize"]
        self._ttl: float | None = options["ttl"]

    def _show(self, option: str, value: Any) -> str:
        if option == "key" and callable(value):
            return _qualified_name(value)
        return repr(value)

    def _fields(self, shape: _codegen.WrapperShape) -> dict[str, str]:
        """The key expression: the arguments, a call of ``key``, or attributes of the
        subject (the first argument after ``self``)."""
        if callable(self._key):
            return {"key": f"_key_of({shape.arguments})"}
        if self._key is not None:
            if shape.subject is None:
                raise TypeError(f"{self!r} reads the key from the first argument, and the "
                                f"function takes no positional argument")
            return {"key": f"_key_of({shape.subject})"}
        values = shape.values
        return {"key": values[0] if len(values) == 1 else f"({', '.join(values)},)"}

    def _namespace(self, stage: str, metrics: Metrics | None,
                   is_async: bool) -> dict[str, Any]:
        from operator import attrgetter

        cache: OrderedDict[Any, tuple[Any, float]] = OrderedDict()
        lock = threading.Lock()
        maxsize, ttl, clock = self._maxsize, self._ttl, time.monotonic

        def store(key: Any, value: Any) -> None:
            entry = (value, clock() + ttl if ttl is not None else math.inf)
            try:
                with lock:
                    cache[key] = entry
                    cache.move_to_end(key)
                    if maxsize is not None and len(cache) > maxsize:
                        cache.popitem(last=False)
            except TypeError:  # an unhashable key: this call is not cached
                pass

        key = self._key
        key_of = (key if key is None or callable(key)
                  else attrgetter(key) if isinstance(key, str) else attrgetter(*key))
        return {"_cache": cache, "_move_to_end": cache.move_to_end, "_ttl": ttl,
                "_clock": clock, "_store": store, "_key_of": key_of}

    def _attach(self, wrapper: Any, namespace: dict[str, Any]) -> None:
        wrapper.cache_clear = namespace["_cache"].clear


def cached(key: Any = None, maxsize: int | None = 1024, ttl: float | None = None) -> Behavior:
    """Remember results by key; keep at most ``maxsize`` (least recently used go first, None:
    no limit), each for ``ttl`` seconds (None: until evicted).

    ``key``: None, the call's argument (the tuple of its arguments when it takes several,
    ``self`` included for a method); a callable, called with the call's arguments; or an
    attribute name (or a list of names) of the first argument after ``self``,
    ``cached(key="user_id")``, the form configuration can give. A call whose key is
    unhashable is not cached; exceptions and signals are never cached. For pure functions: a
    cached stage's ``process`` does not run on a hit, so its assignments to the event do not
    happen. The wrapper has ``cache_clear()``.
    """
    if not (key is None or callable(key) or isinstance(key, str)
            or (isinstance(key, (list, tuple)) and key
                and all(isinstance(name, str) for name in key))):
        raise _invalid("cached", "key", key,
                       "must be None, a callable, or an attribute name or a list of them")
    if isinstance(key, list):
        key = tuple(key)
    if maxsize is not None:
        maxsize = _integer("cached", "maxsize", maxsize, minimum=1)
    if ttl is not None:
        ttl = _seconds("cached", "ttl", ttl, positive=True)
    return _Cached({"key": key, "maxsize": maxsize, "ttl": ttl})


# --------------------------------------------------------------------------------------------
# Specs and injection

#: The behaviours a spec may name, by name.
FACTORIES: Mapping[str, Callable[..., Behavior]] = MappingProxyType({
    "cached": cached,
    "logged": logged,
    "retry": retry,
    "timed": timed,
    "timeout": timeout,
    "traced": traced,
})


def parse(spec: str | Mapping[str, Any] | Behavior) -> Behavior:
    """A behaviour from a spec: ``"retry(attempts=3, backoff=0.01)"`` (Python call syntax,
    literal arguments only, read with :mod:`ast`, never evaluated), ``"timed"``, or a one-key
    table ``{"retry": {"attempts": 3}}`` (arguments by name; a list gives them by position, a
    scalar is the one positional argument: ``{"timeout": 0.05}``). A Behavior is returned as is.

    Raises :class:`BehaviorError` for an unknown behaviour (suggesting the closest name) or a
    bad argument (naming the behaviour, the argument and the value).
    """
    if isinstance(spec, Behavior):
        return spec
    return _behavior_specs.build(spec, FACTORIES)


def parse_table(table: Mapping[str, Any], *, source: str = "[behaviors]") -> tuple[Rule, ...]:
    """Validate a ``[behaviors]`` table (``{"fraud.*": ["retry(attempts=3)", ...]}``), in order.

    Each value is a list of specs (or one spec). Errors name ``source``, the pattern and the
    position: ``hookline.toml [behaviors] 'fraud.*' #2: unknown behaviour 'retyr'...``.
    """
    return _behavior_specs.parse_table(table, source=source, parse=parse)


def inject(function: F, behaviors: Iterable[Behavior | str | Mapping[str, Any]], *,
           name: str | None = None, metrics: Metrics | None = None) -> F:
    """Wrap ``function`` in ``behaviors``, the first outermost (specs are :func:`parse`\\ d).

    ``name`` names the stage in metrics, logs and spans (default ``module.Qualname``);
    ``metrics`` receives what a ``timed()`` without its own ``metrics=`` records.
    ``inject(f, [retry(), timeout(1)])`` is ``retry()(timeout(1)(f))``: each attempt of the
    retry gets its own deadline.
    """
    chain = [parse(spec) for spec in behaviors]
    if name is None:
        name = _qualified_name(function)
    for behavior in reversed(chain):
        function = behavior.wrap(function, name=name, metrics=metrics)
    return function
