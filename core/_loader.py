"""Loading plugins into one pluggy ``PluginManager``, one plugin at a time, in isolation.

A plugin whose import raises anything (ImportError, any Exception, SystemExit, even a
KeyboardInterrupt it raises itself) or whose module is missing is recorded as failed with its
distribution, version and error; so is a name that two distributions declare, and a plugin
whose stages' ``before=``/``after=`` form a cycle. Nothing half-registered is left behind: a
failing plugin's stages are forgotten and its already-registered parts unregistered. Loading
itself never fails: ``hookline plugins`` and ``hookline check`` list every plugin, and a run
refuses to start when a selected one failed (:meth:`PluginSet.refuse_broken`). A real Ctrl-C
while plugins load stops the loading (:class:`~hookline.errors.Interrupted`).

The plugins of a ``plugins_dir`` (``*.py`` files, each named after its file) are loaded the
same way, beside the installed ones: the same selection, contract checks, order and records
(with ``origin`` ``local`` and the file's path); a file and an installed plugin of one name
are refused together, as two distributions of one name are.

Order within a phase does not depend on install order: tryfirst/trylast, then the
``before=``/``after=`` constraints between plugin and stage names, then the name. hookline
registers plugins with pluggy in the reverse of that order (pluggy calls the last registered
first), and :meth:`PluginSet.impls` reads each hook's implementations back in hookline's order
for the compiled call plans, turning around the ``trylast`` group that pluggy calls first
registered first.
"""

from __future__ import annotations

import heapq
import importlib
import logging
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import groupby, islice
from types import FunctionType, MethodType, ModuleType
from typing import Any

import pluggy

from . import contracts, hookspecs
from ._discovery import EntryPointInfo, LocalPlugin, local_plugins
from ._registry import Registry, Stage, StageInfo, StageMeta, current_registry, plugin_name
from ._schema import Settings
from ._suggest import did_you_mean
from ._version import API_VERSION, __version__
from .config import Config, _dotted  # nested namespaces written a.b, as in TOML
from .errors import BrokenPlugins, Interrupted, PluginError, short_repr
from .flags import _imported_by, default_flags

__all__ = ["PluginRecord", "PluginSet", "StageRecord", "load_entry_points", "load_objects"]

LOADED, FAILED, BLOCKED, NOT_SELECTED = "loaded", "failed", "blocked", "not selected"

#: A plugin import running longer than this many seconds is named in a warning while it runs.
SLOW_IMPORT_S = 5.0

log = logging.getLogger("hookline.loader")


@dataclass
class StageRecord:
    """A stage as loaded: ``plugin.name``, its phase and its position in the phase."""

    qualname: str
    phase: str
    position: int
    cls: str
    flag: str | None = None
    behaviors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.qualname, "phase": self.phase, "position": self.position,
                "class": self.cls, "flag": self.flag, "behaviors": self.behaviors}


@dataclass
class PluginRecord:
    """What ``hookline plugins`` shows about one plugin."""

    name: str
    distribution: str | None
    version: str | None
    module: str
    status: str = LOADED
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    stages: list[StageRecord] = field(default_factory=list)
    #: Every way the plugin breaks the stage contract; it is refused when there is any.
    violations: list[contracts.Violation] = field(default_factory=list)
    #: The file of a plugin of ``plugins_dir`` (its origin is then ``local``).
    path: str | None = None
    #: The fields the plugin adds, to events and to its settings (:meth:`PluginSet.describe`).
    fields: list[dict[str, Any]] = field(default_factory=list)

    @property
    def origin(self) -> str:
        """``installed`` (an entry point of a distribution), ``local`` (a file of
        ``plugins_dir``), or ``object`` (handed to the pipeline in code)."""
        if self.path is not None:
            return "local"
        return "installed" if self.distribution else "object"

    @property
    def label(self) -> str:
        """``fraud (hookline-fraud 1.0)``: how messages name a plugin."""
        if self.distribution:
            return f"{self.name} ({self.distribution} {self.version})"
        if self.path is not None:
            return f"{self.name} (local {self.path})"
        return f"{self.name} ({self.module})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "status": self.status,
            "error": self.error,
            "hooks": sorted(self.hooks),
            "stages": [stage.as_dict() for stage in self.stages],
            "violations": [violation.as_dict() for violation in self.violations],
            "origin": self.origin,
            "path": self.path,
            "fields": self.fields,
        }


class _StageAdapter:
    """What pluggy sees of a stage: one attribute, the phase hook, bound to ``process``
    wrapped in the behaviours that configuration or code injects."""

    def __init__(self, info: StageInfo, instance: Stage, qualname: str) -> None:
        self.info = info
        self.stage = instance
        self.qualname = qualname
        self.injected: list[tuple[Any, str]] = []  # (behaviour, where it came from)
        self.function: Any = instance.process
        setattr(self, hookspecs.phase_hook(info.phase), self.function)

    def inject(self, rules: Sequence[Any], metrics: Any) -> Any:
        """Wrap ``process`` in the behaviours of ``rules``; returns the new function."""
        from .behaviors import inject

        behaviors = [b for rule in rules for b in rule.behaviors]
        # The new behaviours wrap the ones already there: they come first, in their order.
        self.injected = [(b, f"{rule.source} {rule.pattern!r}") for rule in rules
                         for b in rule.behaviors] + self.injected
        self.function = inject(self.function, behaviors, name=self.qualname, metrics=metrics)
        setattr(self, hookspecs.phase_hook(self.info.phase), self.function)
        return self.function

    def behaviors(self) -> list[dict[str, str]]:
        """Every behaviour around the stage, outermost first, with its source."""
        from .behaviors import applied

        shown = [{"spec": b.spec, "source": source} for b, source in self.injected]
        injected = {id(b) for b, _ in self.injected}
        shown += [{"spec": b.spec, "source": "code"} for b in applied(self.function)
                  if id(b) not in injected]
        return shown

    def __repr__(self) -> str:
        return f"<stage {self.qualname} ({self.info.where})>"


# What pluggy's static lookup accepts as a hook implementation (pluggy._manager._static_hook_attr).
_HOOKABLE = (FunctionType, MethodType, staticmethod, classmethod)


class _Manager(pluggy.PluginManager):
    """pluggy's manager, told that a stage adapter's phase attribute is a hook implementation."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        if isinstance(plugin, _StageAdapter):
            if name != hookspecs.phase_hook(plugin.info.phase):
                return None
            return {"tryfirst": plugin.info.tryfirst, "trylast": plugin.info.trylast,
                    "wrapper": False, "hookwrapper": False, "optionalhook": False,
                    "specname": None}
        if type(plugin) is ModuleType and not isinstance(plugin.__dict__.get(name), _HOOKABLE):
            # A module's constants, classes and submodules: pluggy's answer is None too, but it
            # gets there through inspect.getattr_static (30 ms for 500 small plugins).
            return None
        return super().parse_hookimpl_opts(plugin, name)


@dataclass
class _Unit:
    """One thing registered with pluggy: a plugin's module (its @hookimpl functions) or a stage."""

    name: str
    obj: Any
    record: PluginRecord
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()


class PluginSet:
    """The loaded plugins: a pluggy manager that calls their hooks, and a record of each."""

    def __init__(self, manager: pluggy.PluginManager, records: list[PluginRecord]) -> None:
        self.manager = manager
        self.records = records

    @property
    def hook(self) -> Any:
        return self.manager.hook

    def loaded(self) -> list[PluginRecord]:
        return [record for record in self.records if record.status == LOADED]

    def failed(self) -> list[PluginRecord]:
        return [record for record in self.records if record.status == FAILED]

    def refuse_broken(self, config: Config) -> None:
        """Raise :class:`BrokenPlugins` naming every selected plugin that failed to load,
        unless ``config`` allows running without them (``--allow-broken-plugins``)."""
        failed = self.failed()
        if failed and config.fail_closed:
            raise BrokenPlugins([(record.label, record.error or "failed") for record in failed])

    def impls(self, hook_name: str) -> list[Any]:
        """The hook's implementations in hookline's order (wrappers first, outermost first).

        Units are registered in the reverse of hookline's order, and pluggy calls the last
        registered first, except within a ``trylast`` group, which it calls first registered
        first: that group is turned around here, so ``before=``/``after=`` and names order
        ``trylast`` implementations as they order the others.
        """
        caller = getattr(self.manager.hook, hook_name)
        ordered: list[Any] = []
        for (_, trylast), group in groupby(reversed(caller.get_hookimpls()),
                                           key=lambda impl: (impl.wrapper or impl.hookwrapper,
                                                             impl.trylast)):
            members = list(group)
            ordered.extend(reversed(members) if trylast else members)
        return ordered

    def describe(self) -> None:
        """Fill each loaded plugin's :attr:`PluginRecord.fields`: the event fields its
        ``hookline_event_fields`` returns, then its stages' settings, each with its type and
        constraints (what ``hookline plugins`` lists). Calls the plugins' field hooks, as
        building a pipeline does; one that raises is named in place of its fields."""
        records = {record.name: record for record in self.loaded()}
        for record in records.values():
            record.fields.clear()
        for impl in self.impls("hookline_event_fields"):
            owner = records.get(impl.plugin_name.partition(".")[0])
            if owner is None:
                continue
            try:
                added = impl.function() or {}
            except Exception as exc:
                owner.fields.append({"name": "?", "in": "event", "type": "?",
                                      "constraints": f"hookline_event_fields raised "
                                                     f"{type(exc).__name__}: {exc}",
                                      "default": None, "optional": False, "description": ""})
                continue
            owner.fields += [_field_row(name, value, "event") for name, value in _dotted(added)]
        for record in records.values():
            settings: dict[tuple[Any, ...], dict[str, Any]] = {}  # one row per key of the table
            for stage in record.stages:
                adapter = self.manager.get_plugin(stage.qualname)
                schema = getattr(getattr(adapter, "info", None), "cls", None)
                schema = getattr(schema, "Settings", None)
                for name, value in (schema.__fields__.items() if schema is not None else ()):
                    row = _field_row(name, value, f"[settings.{record.name}] of {stage.qualname}")
                    same = settings.setdefault(
                        (name, row["type"], row["constraints"], row["default"]), row)
                    if same is not row:
                        same["in"] += f", {stage.qualname}"
            record.fields += settings.values()


def _field_row(name: str, value: Any, where: str) -> dict[str, Any]:
    """One field as ``hookline plugins`` lists it: name, type, constraints, default."""
    from .fields import MISSING, Field

    if not isinstance(value, Field):
        return {"name": name, "in": where, "type": type(value).__name__, "constraints": "",
                "default": None, "optional": False, "description": ""}
    constraints = ", ".join(f"{key}={option!r}" for key, option in value._repr_options()
                            if option is not None)
    default = value.default
    if callable(default):  # a factory: what it makes (as each event or settings gets it)
        try:
            default = default()
        except Exception:
            default = f"{getattr(default, '__name__', '?')}()"
    shown = None if default is MISSING else short_repr(default)
    return {"name": name, "in": where, "type": type(value).__name__, "constraints": constraints,
            "default": shown, "optional": value.optional, "description": value.description}


def new_manager() -> pluggy.PluginManager:
    manager = _Manager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


def _error_text(exc: BaseException) -> str:
    """``ImportError: no module named x (at pkg/mod.py:12)``: the error and where it came from."""
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    user_frames = [f for f in frames if "importlib" not in f.filename]
    if user_frames:
        last = user_frames[-1]
        where = f" (at {last.filename}:{last.lineno})"
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}) raised while importing{where}"
    text = str(exc)
    return f"{type(exc).__name__}{': ' if text else ''}{text}{where}"


def _import(value: str) -> Any:
    module_name, _, attr = value.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def _check_api(record: PluginRecord, obj: Any) -> None:
    wanted = getattr(obj, "HOOKLINE_API", None)
    if wanted is None or wanted == API_VERSION:
        return
    if isinstance(wanted, int) and wanted > API_VERSION:
        advice = f"upgrade hookline (this is {__version__}, plugin API {API_VERSION})"
    else:
        plugin = record.distribution or record.module
        advice = f"upgrade {plugin} to a release for API {API_VERSION}"
    raise PluginError(
        f"plugin {record.label} needs hookline plugin API {wanted!r}, this hookline offers "
        f"{API_VERSION}: {advice}"
    )


def _stage_settings(
    record: PluginRecord, stages: Sequence[StageInfo], table: Mapping[str, Any],
    own: type[Settings] | None = None,
) -> dict[str, dict[str, Any]]:
    """Split the plugin's settings table among its stages by the fields each declares (the
    fields of ``own``, the plugin's :func:`own settings <_own_settings>`, stay with it)."""
    per_stage: dict[str, dict[str, Any]] = {}
    claimed: set[str] = set(own.__fields__) if own is not None else set()
    for info in stages:
        schema = info.cls.Settings
        names = set(schema.__fields__) if schema is not None else set()
        per_stage[info.name] = {k: v for k, v in table.items() if k in names}
        claimed |= names
    unknown = sorted(set(table) - claimed)
    if unknown:
        hints = "".join(did_you_mean(key, claimed) for key in unknown)
        raise PluginError(
            f"[settings.{record.name}] has unknown key(s) {', '.join(unknown)}{hints}; the "
            f"stages of {record.label} declare: {', '.join(sorted(claimed)) or 'no settings'}"
        )
    return per_stage


def _own_settings(obj: Any) -> type[Settings] | None:
    """The ``Settings`` class (a ``hookline.Settings``) that a plugin made of hook functions
    declares beside them, or None. Its fields are checked here, when the plugin loads, like a
    stage's: a typo or a bad value stops the run before it starts; the plugin reads the
    values from ``plugin_settings`` in ``hookline_configure``."""
    own = None if isinstance(obj, StageMeta) else getattr(obj, "Settings", None)
    if isinstance(own, type) and issubclass(own, Settings) and own is not Settings:
        return own
    return None


def _units(record: PluginRecord, obj: Any, config: Config, registry: Registry) -> list[_Unit]:
    """Instantiate a plugin's stages with its settings; the object itself is a unit too."""
    stages = registry.stages_of(obj)
    table, own = config.settings_for(record.name), _own_settings(obj)
    settings = _stage_settings(record, stages, table, own)
    if own is not None:
        try:
            own.from_dict({key: value for key, value in table.items() if key in own.__fields__})
        except Exception as exc:  # (the message may quote a setting: secrets are masked)
            raise PluginError(f"[settings.{record.name}] of {record.label}: "
                              f"{config.masked(str(exc))}") from None
    units = []
    if not isinstance(obj, StageMeta):  # (not issubclass: ABCMeta scans every stage class)
        units.append(_Unit(record.name, obj, record))
    for info in stages:
        qualname = f"{record.name}.{info.name}"
        try:
            instance = info.cls(settings[info.name])
        except Exception as exc:  # (the message may quote a setting: secrets are masked)
            raise PluginError(f"stage {qualname} ({info.where}) cannot start: "
                              f"{config.masked(str(exc))}") from None
        adapter = _StageAdapter(info, instance, qualname)
        if config.behaviors:
            from .behaviors import matching, parse_table

            rules = matching(parse_table(config.behaviors, source=f"{config.source} "
                                         "[behaviors]"), qualname)
            if rules:
                adapter.inject(rules, metrics=None)
        units.append(_Unit(qualname, adapter, record, info.before, info.after))
    return units


def _matches(target: str, unit: str) -> bool:
    return unit == target or unit.startswith(target + ".")


def _rank(units: Sequence[_Unit]) -> list[_Unit]:
    """Order the loaded plugins' units by before/after constraints, ties by name.

    The plugins whose stages form a cycle fail, with an error naming the cycle's stages and
    their plugins; the others are ordered without them.
    """
    while True:
        units = [unit for unit in units if unit.record.status == LOADED]
        ordered, cycle = _sort(units)
        if not cycle:
            return ordered
        members = {unit.name: unit for unit in units if unit.name in cycle}
        where = "; ".join(_described(members[name]) for name in cycle[:-1])
        for unit in members.values():
            unit.record.status = FAILED
            unit.record.error = (f"before/after constraints form a cycle: "
                                 f"{' -> '.join(cycle)} ({where})")


def _described(unit: _Unit) -> str:
    """``alpha.x (class alpha_plugin.X, alpha-plugin 1.0)``."""
    if isinstance(unit.obj, _StageAdapter):
        return f"{unit.name} (class {unit.obj.info.where}, {unit.record.label})"
    return f"{unit.name} ({unit.record.label})"


def _sort(units: Sequence[_Unit]) -> tuple[list[_Unit], list[str]]:
    """Topological order of ``units`` by before/after, ties by name, and ``[]``; or, when
    they form a cycle, the units ordered before it and the cycle (``[a, b, a]``)."""
    names = {unit.name: unit for unit in units}
    edges: dict[str, set[str]] = {name: set() for name in names}  # a -> b: a runs before b
    for unit in units:
        for target in unit.before:
            edges[unit.name].update(n for n in names if _matches(target, n) and n != unit.name)
        for target in unit.after:
            for n in names:
                if _matches(target, n) and n != unit.name:
                    edges[n].add(unit.name)
    incoming = {name: 0 for name in names}
    for targets in edges.values():
        for target in targets:
            incoming[target] += 1
    ready = [name for name, count in incoming.items() if count == 0]
    heapq.heapify(ready)
    ordered: list[_Unit] = []
    while ready:
        name = heapq.heappop(ready)
        ordered.append(names[name])
        for target in sorted(edges[name]):
            incoming[target] -= 1
            if incoming[target] == 0:
                heapq.heappush(ready, target)
    if len(ordered) != len(units):
        return ordered, _cycle(edges, incoming)
    return ordered, []


def _cycle(edges: Mapping[str, set[str]], incoming: Mapping[str, int]) -> list[str]:
    stuck = sorted(name for name, count in incoming.items() if count > 0)
    path = [stuck[0]]
    while True:
        following = sorted(t for t in edges[path[-1]] if incoming[t] > 0)
        if not following or following[0] in path:
            if following:
                path = [*path[path.index(following[0]):], following[0]]
            return path
        path.append(following[0])


def _verify(units: Sequence[_Unit], registry: Registry,
            known_plugins: Collection[str] | None) -> None:
    """Refuse every plugin that breaks the stage contract, recording each violation.

    All plugins are verified together, once all are imported: a stage may be gated by
    another plugin's flag, or ordered after another plugin.
    """
    records: dict[str, PluginRecord] = {}
    objects: dict[str, list[Any]] = {}
    for unit in units:
        if unit.record.status == LOADED:
            records[unit.record.name] = unit.record
            objects.setdefault(unit.record.name, []).append(
                unit.obj.info.cls if isinstance(unit.obj, _StageAdapter) else unit.obj)
    found = contracts.verify_plugins(objects, known_plugins=known_plugins,
                                     flags=default_flags.declared, registry=registry)
    for name, violations in found.items():
        if violations:
            record = records[name]
            record.status, record.violations = FAILED, violations
            record.error = contracts.format_violations(violations)


def _register(units: list[_Unit], records: list[PluginRecord]) -> PluginSet:
    manager = new_manager()
    ordered = _rank(units)
    for unit in reversed(ordered):  # pluggy calls the last registered first
        if unit.record.status != LOADED:
            continue
        try:
            manager.register(unit.obj, name=unit.name)
        except Exception as exc:
            _fail(unit.record, f"{type(exc).__name__}: {exc}", manager, units)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        bad = next((u for u in units if u.obj is exc.plugin), None)
        if bad is None:
            raise
        _fail(bad.record, str(exc), manager, units)
    # One pass over the hooks, not get_hookcallers() per unit: that and is_registered() scan
    # every registered plugin, O(n^2) for n plugins.
    hooks_of: dict[int, list[str]] = {}
    for caller in vars(manager.hook).values():
        for impl in caller.get_hookimpls():
            hooks_of.setdefault(id(impl.plugin), []).append(caller.name)
    for unit in units:
        if unit.record.status == LOADED:
            unit.record.hooks.extend(h for h in hooks_of.get(id(unit.obj), ())
                                     if h not in unit.record.hooks)
    plugins = PluginSet(manager, records)
    _record_positions(plugins, units)
    return plugins


def _fail(record: PluginRecord, error: str, manager: pluggy.PluginManager,
          units: Iterable[_Unit]) -> None:
    record.status, record.error = FAILED, error
    for unit in units:
        if unit.record is record and manager.is_registered(unit.obj):
            manager.unregister(unit.obj)
    record.hooks.clear()
    record.stages.clear()


def _record_positions(plugins: PluginSet, units: Sequence[_Unit]) -> None:
    by_obj = {id(unit.obj): unit for unit in units}
    for phase in hookspecs.PHASES:
        position = 0
        for impl in plugins.impls(hookspecs.phase_hook(phase)):
            if impl.wrapper or impl.hookwrapper:
                continue
            position += 1
            unit = by_obj.get(id(impl.plugin))
            if unit is not None and isinstance(unit.obj, _StageAdapter):
                unit.record.stages.append(StageRecord(
                    unit.name, phase, position, unit.obj.info.where, unit.obj.info.flag,
                    unit.obj.behaviors()))


class _ImportClock:
    """One thread for a whole load, started with the first import: it names an import that
    has run for :data:`SLOW_IMPORT_S` while it still runs, so a slow plugin is not silent."""

    def __init__(self) -> None:
        self.current: tuple[str, float] | None = None
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    @contextmanager
    def timing(self, label: str) -> Iterator[None]:
        began = time.monotonic()
        self.current = (label, began)
        if self.thread is None:
            self.thread = threading.Thread(target=self._watch, name="hookline-import-clock",
                                           daemon=True)
            self.thread.start()
        try:
            yield
        finally:
            self.current = None
            took = time.monotonic() - began
            if took >= SLOW_IMPORT_S:
                log.warning("plugin %s took %.1f s to load", label, took)

    def _watch(self) -> None:
        warned = None
        while not self.done.wait(0.25):
            current = self.current
            if (current is not None and current is not warned
                    and time.monotonic() - current[1] >= SLOW_IMPORT_S):
                log.warning("still loading plugin %s after %.0f s…", current[0], SLOW_IMPORT_S)
                warned = current

    def close(self) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join()  # (the process executor forks only when no other thread runs)


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted()


@contextmanager
def _real_interrupts() -> Iterator[None]:
    """While plugins load, a real Ctrl-C (SIGINT) raises :class:`Interrupted`, which stops
    the loading, while a ``KeyboardInterrupt`` a plugin raises itself is its load failure.
    Only where Python's default handler is in place (the main thread of a process that has
    not chosen its own)."""
    installed = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    try:
        if installed:
            signal.signal(signal.SIGINT, _interrupt)
    except ValueError:  # not the main thread
        installed = False
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _load_one(record: PluginRecord, value: str, config: Config, registry: Registry, *,
              path: str | None = None) -> list[_Unit]:
    """Import the plugin ``value`` (``module[:attr]``; with ``path``, the module ``value`` is
    that file) and make its units; a failure of any kind is recorded as the plugin's."""
    before = len(sys.modules)  # sys.modules keeps insertion order: what follows is new
    module = value.partition(":")[0].strip()
    try:
        with registry.activate(), _imported_by(record.label):
            obj = _import(value) if path is None else _import_file(module, path)
        _check_api(record, obj)
        return _units(record, obj, config, registry)
    except Interrupted:  # a real Ctrl-C, not the plugin's doing
        raise
    except BaseException as exc:  # KeyboardInterrupt and SystemExit too: the plugin's failure
        record.status, record.error = FAILED, _error_text(exc)
        registry.forget(module)
        for name in list(islice(sys.modules, before, None)):  # nothing half-imported stays
            if name.partition(".")[0] == module.partition(".")[0]:
                sys.modules.pop(name, None)
        return []


def _import_file(module: str, path: str) -> ModuleType:
    """Import the file ``path`` as the module ``module`` (a plugin of ``plugins_dir``)."""
    import importlib.util

    existing = sys.modules.get(module)
    if existing is not None and getattr(existing, "__file__", None) == path:
        return existing  # loaded before in this process, as an installed plugin's import is
    spec = importlib.util.spec_from_file_location(module, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path} as a module")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[module] = loaded
    spec.loader.exec_module(loaded)
    return loaded


#: What a plugin of ``plugins_dir`` may be named: its file name is its plugin name.
_LOCAL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def load_entry_points(
    entry_points: Iterable[EntryPointInfo],
    config: Config,
    *,
    registry: Registry | None = None,
) -> PluginSet:
    """Load the selected entry points (never importing the others), and the plugins of
    ``config.plugins_dir``, into one PluginSet.

    A name that several distributions (or a distribution and a local file) declare loads
    none of them: each is recorded as failed, naming the others.
    """
    registry = registry or current_registry()
    records: list[PluginRecord] = []
    units: list[_Unit] = []
    candidates: list[EntryPointInfo | LocalPlugin] = list(entry_points)
    if config.plugins_dir is not None:
        candidates += local_plugins(config.plugins_dir)
    clock = _ImportClock()
    try:
        with _real_interrupts():
            for name, group in groupby(sorted(candidates, key=lambda ep: ep.name),
                                       key=lambda ep: ep.name):
                declared = list(group)
                for ep in declared:
                    record = _record(ep)
                    records.append(record)
                    if ep.name in config.disable_plugins:
                        record.status = BLOCKED
                    elif not config.selects(ep.name):
                        record.status = NOT_SELECTED
                    elif len(declared) > 1:
                        record.status, record.error = FAILED, _conflict(name, declared)
                    elif isinstance(ep, LocalPlugin) and not _LOCAL_NAME.match(ep.name):
                        record.status, record.error = FAILED, _bad_file_name(ep)
                    else:
                        with clock.timing(record.label):
                            units.extend(_load_one(
                                record, record.module, config, registry,
                                path=ep.path if isinstance(ep, LocalPlugin) else None))
    finally:
        clock.close()
    if config.plugins is not None:
        known = {r.name for r in records}
        for name in sorted(set(config.plugins) - known):
            records.append(PluginRecord(
                name, None, None, "?", FAILED, "selected but not installed (no such entry "
                f"point){did_you_mean(name, known)}"))
    # before=/after= may name any installed plugin, selected or not
    _verify(units, registry, known_plugins={record.name for record in records})
    return _register(units, records)


def _record(found: EntryPointInfo | LocalPlugin) -> PluginRecord:
    if isinstance(found, LocalPlugin):
        return PluginRecord(found.name, None, None, found.module, path=found.path)
    return PluginRecord(found.name, found.distribution, found.version, found.value)


def _bad_file_name(plugin: LocalPlugin) -> str:
    fitting = re.sub(r"[^A-Za-z0-9_]+", "_", plugin.name).strip("_")
    hint = f": rename it {fitting}.py" if _LOCAL_NAME.match(fitting) else ""
    return (f"{plugin.path}: the file name {plugin.name!r} cannot name a plugin (letters, "
            f"digits and _, starting with a letter){hint}")


def _conflict(name: str, declared: Sequence[EntryPointInfo | LocalPlugin]) -> str:
    both = " and ".join(f"the local file {ep.path}" if isinstance(ep, LocalPlugin)
                        else f"{ep.distribution} {ep.version} ({ep.value})" for ep in declared)
    return (f"the plugin name {name!r} is declared by {len(declared)} distributions: {both}; "
            f"none of them is loaded: uninstall all but one, or rename an entry point"
            + (" or the file" if any(isinstance(ep, LocalPlugin) for ep in declared) else ""))


def load_objects(
    objects: Iterable[Any], config: Config, *, registry: Registry | None = None
) -> PluginSet:
    """A PluginSet from objects in hand (modules, Stage classes, hook namespaces, or
    ``(name, object)`` pairs): what tests and embedders use instead of installing."""
    registry = registry or current_registry()
    records: dict[str, PluginRecord] = {}
    units: list[_Unit] = []
    for item in objects:
        name, obj = item if isinstance(item, tuple) else (plugin_name(item), item)
        module = getattr(obj, "__module__", None) if isinstance(obj, type) else None
        module = module or getattr(obj, "__name__", type(obj).__name__)
        record = records.setdefault(name, PluginRecord(name, None, None, str(module)))
        try:
            _check_api(record, obj)
            units.extend(_units(record, obj, config, registry))
        except PluginError as exc:
            record.status, record.error = FAILED, str(exc)
    # objects in hand are often a few plugins of many: before=/after= are not judged
    _verify(units, registry, known_plugins=None)
    return _register(units, list(records.values()))
