"""``Pipeline``: the event schema and the compiled phases of one set of plugins.

Built from installed entry points (:meth:`Pipeline.from_entry_points`) or from objects in hand
(:meth:`Pipeline.from_plugins`, for tests and embedding). ``process(event)`` runs
validate → enrich → score and returns the final event, or raises ``Reject``/``Drop`` (with
``.stage`` set) or ``StageFailed`` (naming the stage that raised). It is the only way to run a
phase: ``pipeline.hook`` calls the other hooks and refuses the phases.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from . import _codegen, hookspecs
from ._discovery import installed
from ._fold import CULPRIT, blame
from ._loader import PluginSet, load_entry_points, load_objects
from ._registry import Registry
from ._schema import DefaultEvent, Event, compiled, compose
from ._stats import Stats
from .config import Config, load_config
from .errors import Drop, PluginError, Reject, StageFailed
from .fields import Field, List, String
from .flags import Flags, default_flags, from_environment

__all__ = ["Pipeline", "read_only"]

_SIGNALS = (Reject, Drop)

#: Error policies: what happens when a stage raises.
DEAD_LETTER, SKIP_PLUGIN, FAIL_RUN = "dead-letter", "skip-plugin", "fail-run"
_PHASE_HOOKS = frozenset(hookspecs.phase_hook(phase) for phase in hookspecs.PHASES)


def _same(event: Any) -> Any:
    return event


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
        if self._gated_stages() and "variants" not in self.event_class.__fields__:
            # Which flagged stages ran on each event, so that results split by variant.
            self.event_class = compose(self.event_class, {"hookline": {"variants": List(
                String(), default=list, description="flagged stages that ran on the event")}})
        self.from_dict = compiled(self.event_class).from_dict
        self.rebuild()
        plugins.hook.hookline_configure(config=MappingProxyType(self.config.as_dict()))

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_entry_points(cls, config: Config | None = None, *,
                          registry: Registry | None = None) -> Pipeline:
        """Load the installed ``hookline.plugins`` entry points that ``config`` selects."""
        config = config if config is not None else load_config()
        plugins = load_entry_points(installed(), config, registry=registry)
        if config.strict and plugins.failed():
            failures = "; ".join(f"{r.label}: {r.error}" for r in plugins.failed())
            raise PluginError(f"strict mode: plugin(s) failed to load: {failures}")
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
        from_environment(self.flags)
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
        #: Every phase on an event of ``event_class`` (no conversion): the per-event loop's call.
        self.run_phases = self._chain(self._phases, self._busy())
        #: The same, timing each stage call into ``stats`` (for the sampled events).
        self.run_phases_probed = self._chain(
            [self._compile(p, probed=True) for p in hookspecs.PHASES], self._busy())

    def _busy(self) -> list[bool]:
        """Which phases have implementations (an empty phase is left out of the chain)."""
        return [bool(self.plugins.impls(hookspecs.phase_hook(p))) for p in hookspecs.PHASES]

    @staticmethod
    def _chain(phases: Sequence[Callable[[Any], Any]], busy: list[bool]
               ) -> Callable[[Any], Any]:
        used = [phase for phase, has_impls in zip(phases, busy) if has_impls]
        first, second, third = (used + [_same] * 3)[:3]

        def process(event: Any) -> Any:
            try:
                return third(second(first(event)))
            except Exception as exc:
                raise StageFailed(getattr(exc, CULPRIT, "a phase wrapper"), exc) from exc

        return process

    def policy(self, stage: str) -> str:
        """The error policy of a stage: its own, its plugin's, or the default."""
        policies = self.config.error_policy
        return policies.get(stage) or policies.get(stage.partition(".")[0]) or DEAD_LETTER

    def _compile(self, phase: str, *, probed: bool) -> Callable[[Any], Any]:
        steps, wrappers = [], []
        for impl in self.plugins.impls(hookspecs.phase_hook(phase)):
            if impl.hookwrapper:
                raise PluginError(f"{impl.plugin_name}: old-style hookwrapper=True is not "
                                  "supported on phases; use @hookimpl(wrapper=True)")
            if impl.wrapper:
                wrappers.append(impl.function)
                continue
            adapter_info = getattr(impl.plugin, "info", None)
            gate = None
            if adapter_info is not None and adapter_info.flag:
                gate = self.flags.gate(adapter_info.flag)
            steps.append(_codegen.PlanStep(
                impl.plugin_name, impl.function,
                is_async=inspect.iscoroutinefunction(impl.function), gate=gate,
                skip_errors=self.policy(impl.plugin_name) == SKIP_PLUGIN,
            ))
        plan = _codegen.compile_phase(
            phase, steps, signals=_SIGNALS, blame=blame, returned=self._returned,
            run_async=self._run_async, on_skip=self._skipped,
            probe=self.stats.probe([step.name for step in steps]) if probed else None,
            clock=time.perf_counter_ns,
        )
        return _codegen.compile_wrapped(phase, plan, wrappers) if wrappers else plan

    def _skipped(self, stage: str, error: Exception, event: Any) -> None:
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

    def quarantine(self, stage: str) -> None:
        """Take ``stage`` (or every stage of a plugin) out of the plans for the rest of the run."""
        for name, plugin in list(self.plugins.manager.list_name_plugin()):
            if name == stage or name.startswith(stage + "."):
                self.plugins.manager.unregister(plugin)
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
        raise TypeError(f"{stage} returned {type(value).__name__}; a stage returns None or "
                        f"a {self.event_class.__name__} that replaces the event")

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
        """Run every phase on one event; returns it, or raises Reject, Drop or StageFailed."""
        if not isinstance(event, self.event_class):
            event = self.make_event(event.to_dict() if isinstance(event, Event) else event)
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
        return _PhaseCaller(caller) if name in _PHASE_HOOKS else caller


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
