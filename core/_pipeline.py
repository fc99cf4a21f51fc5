"""``Pipeline``: the event schema and the compiled phases of one set of plugins.

Built from installed entry points (:meth:`Pipeline.from_entry_points`) or from objects in hand
(:meth:`Pipeline.from_plugins`, for tests and embedding). ``process(event)`` runs
validate → enrich → score and returns the final event, or raises ``Reject``/``Drop`` (with
``.stage`` set) or ``StageFailed`` (naming the stage that raised). It is the only way to run a
phase: ``pipeline.hook`` calls the other hooks (awaiting ``async def`` ones) and refuses the
phases.

Anything a stage raises, ``SystemExit``, ``KeyboardInterrupt`` and ``GeneratorExit``
included, is that stage's failure for that event; only ``Reject``/``Drop`` and a real SIGINT
(:class:`~hookline.errors.Interrupted`, see ``_watchdog``) go on out as they are. An accepted
event is checked at the boundary (:attr:`Pipeline.boundary`) before it is stored.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from types import MappingProxyType
from typing import Any

from . import _codegen, hookspecs
from ._discovery import installed
from ._fold import CULPRIT, blame, own
from ._limits import parse_json
from ._loader import PluginSet, load_entry_points, load_objects
from ._registry import Registry
from ._schema import DefaultEvent, Event, boundary, compiled, compose
from ._stats import Stats
from ._trace import Tracer
from ._watchdog import Watchdog
from .config import Config, hookline_environment, load_config
from .errors import (
    Drop,
    EventTampered,
    FieldError,
    Interrupted,
    PluginError,
    Reject,
    StageFailed,
    StageTimeout,
    _Broken,
    _Overran,
)
from .fields import Field, List, String
from .flags import Flags, default_flags, from_environment

__all__ = ["Pipeline", "read_only"]

_SIGNALS = (Reject, Drop)
#: What goes on out of a phase as it is: the signals, and a real Ctrl-C.
_THROUGH = (Reject, Drop, Interrupted)

#: Error policies: what happens when a stage raises.
DEAD_LETTER, SKIP_PLUGIN, FAIL_RUN = "dead-letter", "skip-plugin", "fail-run"
_PHASE_HOOKS = frozenset(hookspecs.phase_hook(phase) for phase in hookspecs.PHASES)


def _same(event: Any) -> Any:
    return event


def _without_variants(make: Callable[[Mapping[str, Any]], Event]
                      ) -> Callable[[Mapping[str, Any]], Event]:
    """``make`` for a pipeline that records which flagged stages ran (``variants``): that
    record is the pipeline's own, so an input's ``variants`` is dropped, never trusted (a
    line cannot put itself into an experiment's variant)."""
    def from_dict(data: Mapping[str, Any]) -> Event:
        # (anything but a mapping goes on as it is: ``make`` says what is wrong with it)
        if (type(data) is dict or isinstance(data, Mapping)) and "variants" in data:
            data = {key: value for key, value in data.items() if key != "variants"}
        return make(data)

    return from_dict


def _hides_async(function: Any) -> bool:
    """A sync function around an ``async def`` (a plain ``functools.wraps`` decorator): it
    returns the coroutine, which the plan awaits."""
    try:
        return inspect.iscoroutinefunction(inspect.unwrap(function))
    except ValueError:  # a __wrapped__ cycle
        return False


def read_only(event: Any) -> Mapping[str, Any]:
    """What observing hooks receive: a read-only view of the event's fields."""
    if isinstance(event, Event):
        return MappingProxyType(event.to_dict())
    return MappingProxyType(dict(event))


class Pipeline:
    """The event class and the phase call plans of one plugin set."""

    def __init__(self, plugins: PluginSet, config: Config | None = None, *,
                 base: type[Event] = DefaultEvent, flags: Flags | None = None) -> None:
        self.plugins = plugins
        self.config = config or Config()
        self.base = base
        self.flags = flags if flags is not None else default_flags.layer()
        #: ``entry_points`` or ``objects``: whether worker processes can rebuild this pipeline.
        self.built_from = "objects"
        self.stats = Stats(self.config.sample_every)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._declare_flags()
        self.event_class = compose(base, self._field_contributions())
        self.from_dict: Callable[[Mapping[str, Any]], Event] = compiled(
            self.event_class).from_dict
        if self._gated_stages() and "variants" not in self.event_class.__fields__:
            # Which flagged stages ran on each event, so that results split by variant.
            self.event_class = compose(self.event_class, {"hookline": {"variants": List(
                String(), default=list, description="flagged stages that ran on the event")}})
            self.from_dict = _without_variants(compiled(self.event_class).from_dict)
        #: ``boundary(event, read)``: the problems of an accepted event (None: it may be
        #: stored); ``read`` is a copy of its ``__dict__`` from before the stages ran.
        self.boundary = boundary(self.event_class)
        #: Seconds a stage call may run (0: no limit); the watchdog enforces it.
        self.stage_timeout = float(self.config.stage_timeout)
        self.watchdog = Watchdog(self.stage_timeout)
        #: At most this many events of a batch in flight at once in async stages.
        self.async_concurrency = max(1, self.config.async_concurrency)
        #: With ``trace_hooks``, what logs each implementation call (None: plain plans).
        self.tracer: Tracer | None = None
        if self.config.trace_hooks:
            self.tracer = Tracer(self.config.trace_sample)
            self.tracer.monitor(self.plugins.manager)
        self.rebuild()
        self.hook.hookline_configure(config=MappingProxyType(self.config.as_dict()))

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_entry_points(cls, config: Config | None = None, *,
                          registry: Registry | None = None,
                          plugins: PluginSet | None = None) -> Pipeline:
        """Load the installed ``hookline.plugins`` entry points that ``config`` selects (and
        the plugins of its ``plugins_dir``); ``plugins``: those already loaded so, as the
        command line's pre-flight loads them."""
        config = config if config is not None else load_config()
        if config.environment is None:  # HOOKLINE_* as they are before any plugin's import
            config = config.with_(environment=hookline_environment())
        if plugins is None:
            plugins = load_entry_points(installed(), config, registry=registry)
        plugins.refuse_broken(config)  # fails closed unless broken plugins are allowed
        pipeline = cls(plugins, config)
        pipeline.built_from = "entry_points"
        return pipeline

    @classmethod
    def from_plugins(cls, objects: Iterable[Any], config: Config | None = None, *,
                     registry: Registry | None = None, base: type[Event] = DefaultEvent
                     ) -> Pipeline:
        """A pipeline from modules, Stage classes or hook objects, without installing them."""
        config = config or Config()
        plugins = load_objects(objects, config, registry=registry)
        failed = plugins.failed()
        if failed:
            raise PluginError("; ".join(f"{r.label}: {r.error}" for r in failed))
        return cls(plugins, config, base=base)

    def _declare_flags(self) -> None:
        """Declare the plugins' flags, then apply config, environment and CLI values."""
        self.flags.clear("cli", "env", "config")
        for impl in self.plugins.impls("hookline_flags"):
            for declaration in impl.function() or ():
                self.flags.define(**{"owner": impl.plugin_name, **declaration})
        self.flags.set_many("config", self.config.flags)
        from_environment(self.flags, self.config.environment)  # as before plugins imported
        self.flags.set_many("cli", self.config.cli_flags)

    def _gated_stages(self) -> list[str]:
        return [impl.plugin_name for impl in self._phase_impls()
                if getattr(getattr(impl.plugin, "info", None), "flag", None)]

    def _field_contributions(self) -> dict[str, Mapping[str, Field[Any]]]:
        contributions: dict[str, Mapping[str, Field[Any]]] = {}
        for impl in self.plugins.impls("hookline_event_fields"):
            fields = impl.function()
            if fields:
                contributions[impl.plugin_name] = fields
        return contributions

    # -- call plans --------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Compile the phase call plans again (after plugins are registered or removed).

        Two variants: the plain plans every event runs through, and probed ones (each call
        timed into ``self.stats``) that the runner uses for one event in ``sample_every``.
        """
        self._phases = tuple(self._compile(p, probed=False) for p in hookspecs.PHASES)
        busy = self._busy()
        #: Every phase on an event of ``event_class`` (no conversion): the per-event loop's call.
        self.run_phases = self._chain(self._phases, busy)
        #: The same, timing each stage call and each phase into ``stats`` (for the sampled
        #: events).
        self.run_phases_probed = self._chain(
            [self._timed(p, self._compile(p, probed=True)) if has_impls else _same
             for p, has_impls in zip(hookspecs.PHASES, busy)], busy)
        #: With async stages, a coroutine function running every phase (the per-event loop
        #: runs a batch's events concurrently through it); None when every stage is sync.
        self.run_phases_async: Callable[[Any], Any] | None = None
        if any(inspect.iscoroutinefunction(impl.function) or _hides_async(impl.function)
               for impl in self._phase_impls()):
            self.run_phases_async = self._chain_async(
                [self._compile(p, probed=False, awaits=True) for p in hookspecs.PHASES],
                self._busy())
        self._checked: Callable[[Any], Any] | None = None  # compiled when first needed

    def _busy(self) -> list[bool]:
        """Which phases have implementations (an empty phase is left out of the chain)."""
        return [any(impl.plugin_name not in self._quarantined
                    for impl in self.plugins.impls(hookspecs.phase_hook(p)))
                for p in hookspecs.PHASES]

    def _chain(self, phases: Sequence[Callable[[Any], Any]], busy: list[bool]
               ) -> Callable[[Any], Any]:
        used = [phase for phase, has_impls in zip(phases, busy) if has_impls]
        first, second, third = (used + [_same] * 3)[:3]

        def process(event: Any) -> Any:
            try:
                return third(second(first(event)))
            except _THROUGH:
                raise
            except BaseException as exc:
                raise failed(exc) from exc

        failed = self.failure
        return process

    def _timed(self, name: str, phase: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``phase`` (its stages and wrappers together), timed into ``stats.phase(name)``;
        a call that raised is not timed, as a stage call is not."""
        latency, clock = self.stats.phase(name), time.perf_counter_ns

        def timed(event: Any) -> Any:
            started = clock()
            event = phase(event)
            latency.add(clock() - started)
            return event

        return timed

    def _chain_async(self, phases: Sequence[Callable[[Any], Any]], busy: list[bool]
                     ) -> Callable[[Any], Any]:
        used = [phase for phase, has_impls in zip(phases, busy) if has_impls]
        failed = self.failure

        async def process(event: Any) -> Any:
            try:
                for phase in used:
                    event = await phase(event)
                return event
            except _THROUGH:
                raise
            except BaseException as exc:
                raise failed(exc) from exc

        return process

    def failure(self, error: BaseException, default: str = "a phase wrapper", *,
                timed_out: bool = False) -> StageFailed:
        """The StageFailed for what a phase raised, naming the stage it was blamed on (else
        ``default``). The watchdog's interruption (or, ``timed_out``, an async stage's
        cancellation) becomes a :class:`StageTimeout` with the traceback of where it was."""
        stage = getattr(error, CULPRIT, default)
        if timed_out or isinstance(error, _Overran):
            error = StageTimeout(self.stage_timeout, stage).with_traceback(error.__traceback__)
        return StageFailed(stage, error)

    def policy(self, stage: str) -> str:
        """The error policy of a stage: its own, its plugin's, or the default."""
        policies = self.config.error_policy
        return policies.get(stage) or policies.get(stage.partition(".")[0]) or DEAD_LETTER

    def _compile(self, phase: str, *, probed: bool, awaits: bool = False,
                 verify: Callable[[Any, str], None] | None = None) -> Callable[[Any], Any]:
        steps, wrappers, wrapper_names = [], [], []
        for impl in self.plugins.impls(hookspecs.phase_hook(phase)):
            if impl.plugin_name in self._quarantined:
                continue
            if impl.hookwrapper:
                raise PluginError(f"{impl.plugin_name}: old-style hookwrapper=True is not "
                                  "supported on phases; use @hookimpl(wrapper=True)")
            if impl.wrapper:
                wrappers.append(impl.function)
                wrapper_names.append(impl.plugin_name)
                continue
            adapter_info = getattr(impl.plugin, "info", None)
            gate = None
            if adapter_info is not None and adapter_info.flag:
                gate = self.flags.gate(adapter_info.flag)
            is_async = inspect.iscoroutinefunction(impl.function)
            function = impl.function
            if self.tracer is not None and verify is None:
                function = self.tracer.wrap(function, impl.plugin_name,
                                           hookspecs.phase_hook(phase))
            steps.append(_codegen.PlanStep(
                impl.plugin_name, function, is_async=is_async, gate=gate,
                skip_errors=self.policy(impl.plugin_name) == SKIP_PLUGIN,
                may_await=not is_async and _hides_async(impl.function),
            ))
        plan = _codegen.compile_phase(
            phase, steps, signals=_SIGNALS, blame=blame, returned=self._returned,
            run_async=self._run_async, on_skip=self._skipped,
            probe=self.stats.probe([step.name for step in steps]) if probed else None,
            clock=time.perf_counter_ns, passing=(Interrupted,), awaits=awaits, verify=verify,
        )
        if not wrappers:
            return plan
        return _codegen.compile_wrapped(phase, plan, wrappers, awaits=awaits,
                                        names=wrapper_names, own=own)

    def _skipped(self, stage: str, error: BaseException, event: Any) -> None:
        self.stats.stage(stage).skipped += 1
        self.hook.hookline_stage_error(stage=stage, event=read_only(event), error=error)

    def inject(self, pattern: str, *behaviors: Any) -> list[str]:
        """Wrap every stage whose name ``pattern`` selects (``fraud.*``) in ``behaviors``
        (``retry(attempts=3)`` objects or spec strings), first outermost, without editing
        the stages. Returns the stages changed; ``hookline plugins`` shows the behaviours."""
        from .behaviors import Rule, parse

        rule = Rule(pattern, tuple(parse(b) for b in behaviors), "code: Pipeline.inject")
        changed = {}
        for impl in self._phase_impls():
            adapter = impl.plugin
            if hasattr(adapter, "inject") and rule.matches(adapter.qualname):
                impl.function = adapter.inject([rule], metrics=None)
                changed[adapter.qualname] = adapter.behaviors()
        for record in self.plugins.records:  # what `plugins` and the report list
            for stage in record.stages:
                stage.behaviors = changed.get(stage.qualname, stage.behaviors)
        self.rebuild()
        return list(changed)

    def _phase_impls(self) -> list[Any]:
        return [impl for phase in hookspecs.PHASES
                for impl in self.plugins.impls(hookspecs.phase_hook(phase))]

    #: Names whose phase implementations are out of the plans (:meth:`quarantine`).
    _quarantined: frozenset[str] = frozenset()

    def quarantine(self, stage: str) -> None:
        """Take the phase implementations registered as ``stage`` out of the plans for the
        rest of the run: a stage (``fraud.velocity``), or a plugin's module-level phase
        implementations and wrappers (``monitoring``: the phase then runs without its wrapper;
        its stages and its other hooks stay)."""
        self._quarantined = self._quarantined | {stage}
        self.stats.stage(stage).quarantined = True
        self.rebuild()

    def stages(self) -> dict[str, Any]:
        """The stage instances of this pipeline by qualified name (``fraud.velocity``)."""
        found = {}
        for name, plugin in self.plugins.manager.list_name_plugin():
            stage = getattr(plugin, "stage", None)
            if stage is not None:
                found[name] = stage
        return found

    def _returned(self, stage: str, value: Any) -> Any:
        if isinstance(value, self.event_class):
            return value
        if inspect.iscoroutine(value):
            value.close()  # never awaited: say so here, not in a RuntimeWarning at exit
        raise TypeError(f"{stage} returned {type(value).__name__}; a stage returns None or "
                        f"a {self.event_class.__name__} that replaces the event")

    # -- the boundary check ------------------------------------------------------------------
    def tampered(self, problems: list[FieldError], raw: bytes | str) -> StageFailed:
        """The failure of an event that failed the boundary check with ``problems``.

        Names the stage that broke it: the event is read again from its input line ``raw``
        and run with the check after every stage, on scratch copies of the stages' state
        (their changes for this event are kept once, from the first run). Only failing events
        pay for this. A stage that behaves differently the second time is not found: the
        event is then blamed on ``?``.
        """
        stage, found = self._culprit(raw)
        return StageFailed(stage, EventTampered("; ".join(map(str, found or problems))))

    def _culprit(self, raw: bytes | str) -> tuple[str, list[FieldError] | None]:
        if self._checked is None:
            self._checked = self._checked_chain()
        stages = {name: stage for name, stage in self.stages().items()
                  if isinstance(getattr(stage, "state", None), MutableMapping)}
        real = {name: stage.state for name, stage in stages.items()}
        try:
            for name, stage in stages.items():
                stage.state = _Scratch(real[name])
            event = self.from_dict(parse_json(raw))
            self._reading = event.__dict__.copy()
            self._checked(event)
        except _Broken as broken:
            return broken.stage, broken.problems
        except Interrupted:
            raise
        except BaseException:  # it went another way this time: not found
            pass
        finally:
            for name, stage in stages.items():
                stage.state = real[name]
        return "?", None

    def _checked_chain(self) -> Callable[[Any], Any]:
        """Every phase with :meth:`_verify` after each stage, and after each wrapped phase."""
        phases = []
        for phase, busy in zip(hookspecs.PHASES, self._busy()):
            if busy:
                wrappers = [impl.plugin_name for impl in self.plugins.impls(
                    hookspecs.phase_hook(phase))
                    if impl.wrapper and impl.plugin_name not in self._quarantined]
                phases.append((self._compile(phase, probed=False, verify=self._verify),
                               " or ".join(wrappers) or phase))
        verify = self._verify

        def run(event: Any) -> Any:
            for phase, wrappers in phases:
                event = phase(event)
                verify(event, wrappers)
            return event

        return run

    _reading: Any = None  # the fields of the event being run again, as read

    def _verify(self, event: Any, stage: str) -> None:
        problems = self.boundary(event, self._reading)
        if problems:
            raise _Broken(stage, problems)

    def _run_async(self, awaitable: Any) -> Any:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(awaitable)

    # -- use ---------------------------------------------------------------------------------
    @property
    def hook(self) -> Any:
        """pluggy's hook relay, for every hook but the phases: ``pipeline.hook.hookline_run_start(
        run=...)``. Calling a phase hook through it raises PluginError: use :meth:`process`."""
        return _Relay(self.plugins.hook)

    def make_event(self, data: Mapping[str, Any]) -> Event:
        """Validate ``data`` into this pipeline's event class (raises ValidationError)."""
        return self.from_dict(dict(data) if type(data) is not dict else data)

    def process(self, event: Event | Mapping[str, Any]) -> Event:
        """Run every phase on one event; returns it, or raises Reject, Drop or StageFailed.
        While it runs, ``hookline.flags.is_enabled`` reads this pipeline's flags, as in a run."""
        if not isinstance(event, self.event_class):
            event = self.make_event(event.to_dict() if isinstance(event, Event) else event)
        with self.flags.active():
            result: Event = self.run_phases(event)
        return result

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None


class _Relay:
    """pluggy's hook relay with the phase hooks refused (their callers still answer
    ``get_hookimpls()`` and the like)."""

    __slots__ = ("_relay",)

    def __init__(self, relay: Any) -> None:
        self._relay = relay

    def __getattr__(self, name: str) -> Any:
        caller = getattr(self._relay, name)
        return _PhaseCaller(caller) if name in _PHASE_HOOKS else _Awaiting(caller)


class _Awaiting:
    """A hook's pluggy caller whose ``async def`` implementations' results are awaited
    (pluggy itself would return their coroutines, never run)."""

    __slots__ = ("_caller",)

    def __init__(self, caller: Any) -> None:
        self._caller = caller

    def __getattr__(self, name: str) -> Any:
        return getattr(self._caller, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        results = self._caller(*args, **kwargs)
        if type(results) is list and any(inspect.isawaitable(r) for r in results):
            results = [_awaited(r) if inspect.isawaitable(r) else r for r in results]
        return results


#: Hook coroutines started from inside a running event loop, kept until they are done.
_pending: set[Any] = set()


def _awaited(awaitable: Any) -> Any:
    """The result of ``awaitable``, run to completion; inside a running event loop (an async
    stage's batch), it is scheduled on that loop instead and its task returned."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        task = asyncio.ensure_future(awaitable)
        _pending.add(task)
        task.add_done_callback(_pending.discard)
        return task

    async def run() -> Any:
        return await awaitable

    return asyncio.run(run())


class _Scratch(MutableMapping[str, Any]):
    """A stage's state while an event runs again to find the stage that broke it: reads see
    (copies of) the real state, writes stay here and are thrown away."""

    def __init__(self, real: MutableMapping[str, Any]) -> None:
        self._real, self._mine, self._gone = real, dict[str, Any](), set[str]()

    def __getitem__(self, key: str) -> Any:
        if key in self._gone:
            raise KeyError(key)
        if key not in self._mine:
            self._mine[key] = copy.deepcopy(self._real[key])
        return self._mine[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._mine[key] = value
        self._gone.discard(key)

    def __delitem__(self, key: str) -> None:
        self[key]  # KeyError when missing
        self._mine.pop(key, None)
        self._gone.add(key)

    def __iter__(self) -> Iterator[str]:
        keys = dict.fromkeys(self._real)
        keys.update(dict.fromkeys(self._mine))
        return (key for key in keys if key not in self._gone)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def changes(self) -> list[tuple[str, Any]]:
        return []


class _PhaseCaller:
    """A phase hook's pluggy caller that refuses to be called: a phase runs through
    :meth:`Pipeline.process`, which hands each implementation's returned event on to the next;
    pluggy's caller would give each the original event and return a list."""

    __slots__ = ("_caller",)

    def __init__(self, caller: Any) -> None:
        self._caller = caller

    def __getattr__(self, name: str) -> Any:
        if name in ("call_extra", "call_historic"):
            return self.__call__
        return getattr(self._caller, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        name = self._caller.name
        raise PluginError(f"{name} is a phase: run it with Pipeline.process(event), not through "
                          f"pipeline.hook.{name}(...) (pluggy's relay would not pass a returned "
                          "event on to the next implementation)")
