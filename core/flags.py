"""Feature flags: declared by plugins, scoped by context managers, rolled out by a stable hash.

A flag's value comes from the first of these that sets it:

1. the innermost ``with flags.enabled(name)`` / ``flags.disabled(name)`` (per thread and per
   asyncio task: the scope lives in a :mod:`contextvars` variable);
2. the command line, ``hookline run --flag name=on|off|0.25``;
3. the environment, ``HOOKLINE_FLAGS="name=on,other=0.1"``;
4. the configuration file, ``[flags]`` table;
5. the declaration's default (``flags.define(name, default, rollout)``).

A value is on, off, or a rollout share: given an event, the flag is on for that share of the
values of its key field (``user_id`` by default), decided by a stable hash of the flag name and
the key (BLAKE2b, not Python's salted ``hash``), so a user sees the same variant in every run,
process and machine.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, TypeVar

from ._suggest import did_you_mean
from .errors import FlagError

__all__ = [
    "FlagError",
    "Flags",
    "current",
    "define",
    "disabled",
    "enabled",
    "gate",
    "is_enabled",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Precedence of the sources, most important first (the context manager is above them all).
SOURCES = ("cli", "env", "config", "default")


def parse_value(text: Any, *, where: str) -> bool | float:
    """``on``/``off``/``true``/``false``/``1``/``0``/``0.25`` → True, False or a share."""
    if isinstance(text, bool):
        return text
    if isinstance(text, (int, float)) and 0 <= text <= 1:
        return float(text) if 0 < text < 1 else bool(text)
    word = str(text).strip().lower()
    if word in ("on", "true", "yes", "enabled"):
        return True
    if word in ("off", "false", "no", "disabled"):
        return False
    try:
        share = float(word)
    except ValueError:
        share = -1.0
    if not 0 <= share <= 1:
        raise FlagError(f"{where}: {text!r} is not on, off or a share between 0 and 1")
    return share if 0 < share < 1 else bool(share)


def bucket(flag: str, key: Any) -> float:
    """Where ``key`` falls in [0, 1) for ``flag``: stable across runs, processes, machines."""
    digest = hashlib.blake2b(f"{flag}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


_NO_SCOPE: Mapping[str, bool] = MappingProxyType({})


class Flag:
    """A declared flag."""

    __slots__ = ("default", "description", "key", "name", "owner")

    def __init__(self, name: str, default: bool | float, key: str, description: str,
                 owner: str) -> None:
        self.name = name
        self.default = default
        self.key = key
        self.description = description
        self.owner = owner


class Flags:
    """A set of declared flags and the values set for them. An object, so tests own theirs."""

    def __init__(self) -> None:
        self.declared: dict[str, Flag] = {}
        self.values: dict[str, dict[str, bool | float]] = {source: {} for source in SOURCES}
        self._scope: contextvars.ContextVar[Mapping[str, bool]] = contextvars.ContextVar(
            f"hookline_flags_{id(self)}", default=_NO_SCOPE)
        self.evaluations: dict[str, list[int]] = {}

    def layer(self) -> Flags:
        """A flag set with values of its own (command line, environment, configuration) over
        these declarations, defaults and ``with enabled(...)`` scopes: each pipeline has one,
        so two pipelines in a process keep their own values while a scope applies to both."""
        child = Flags.__new__(Flags)
        child.declared = self.declared
        child.values = {**{source: {} for source in SOURCES}, "default": self.values["default"]}
        child._scope = self._scope
        child.evaluations = {}
        return child

    @contextmanager
    def active(self) -> Iterator[Flags]:
        """Make these the flags that ``hookline.flags.is_enabled`` reads, inside the block
        (in this thread or task); a run does it for its pipeline's flags."""
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)

    # -- declaring and setting ----------------------------------------------------------------
    def define(self, name: str, default: bool = False, rollout: float | None = None,
               key: str = "user_id", description: str = "", owner: str = "") -> Flag:
        """Declare a flag; ``rollout`` (a share) replaces ``default`` when given."""
        value = parse_value(rollout if rollout is not None else default,
                            where=f"flag {name!r} default")
        existing = self.declared.get(name)
        if existing is not None and (existing.default, existing.key) != (value, key):
            raise FlagError(f"flag {name!r} is declared twice differently: by "
                            f"{existing.owner or '?'} and by {owner or '?'}")
        flag = Flag(name, value, key, description, owner)
        self.declared[name] = flag
        self.values["default"][name] = value
        return flag

    def check(self, name: str, *, where: str) -> Flag:
        """The declared flag ``name``, or a FlagError that suggests the closest declared name."""
        flag = self.declared.get(name)
        if flag is None:
            known = ", ".join(sorted(self.declared)) or "none declared"
            raise FlagError(f"{where}: unknown flag {name!r}{did_you_mean(name, self.declared)}"
                            f" (declared: {known})")
        return flag

    def clear(self, *sources: str) -> None:
        """Forget the values set from ``sources`` (a new pipeline applies its own)."""
        for source in sources:
            self.values[source].clear()

    def set(self, source: str, name: str, value: Any) -> None:
        """Set ``name`` from ``source`` (``cli``, ``env`` or ``config``)."""
        self.check(name, where=source)
        self.values[source][name] = parse_value(value, where=f"{source} flag {name!r}")

    def set_many(self, source: str, assignments: Mapping[str, Any] | str) -> None:
        """Set several flags: a mapping, or text ``"a=on,b=0.25"`` (as in HOOKLINE_FLAGS)."""
        if isinstance(assignments, str):
            pairs = {}
            for part in filter(None, (p.strip() for p in assignments.split(","))):
                name, sep, value = part.partition("=")
                pairs[name.strip()] = value if sep else "on"
            assignments = pairs
        for name, value in assignments.items():
            self.set(source, name, value)

    # -- evaluating ---------------------------------------------------------------------------
    def value(self, name: str) -> tuple[bool | float, str]:
        """The current value of ``name`` and where it comes from."""
        scoped = self._scope.get()
        if name in scoped:
            return scoped[name], "context"
        for source in SOURCES:
            if name in self.values[source]:
                return self.values[source][name], source
        self.check(name, where="is_enabled")
        raise AssertionError("unreachable")  # pragma: no cover

    def is_enabled(self, name: str, event: Any = None) -> bool:
        """Whether ``name`` is on (for ``event``, when the value is a rollout share)."""
        value, _ = self.value(name)
        return self._decide(name, value, event)

    def _decide(self, name: str, value: bool | float, event: Any) -> bool:
        """On or off for ``event`` given the flag's value, counted for the report."""
        if value is True or value is False:
            on = value
        elif event is None:
            on = False  # a share applies to events; with none to key on, the flag is off
        else:
            key_field = self.declared[name].key
            key = event[key_field] if isinstance(event, Mapping) else getattr(event, key_field)
            on = bucket(name, key) < value
        counts = self.evaluations.get(name)
        if counts is None:
            counts = self.evaluations[name] = [0, 0]
        counts[on] += 1
        return on

    def gate(self, name: str) -> Callable[[Any], bool]:
        """A predicate for a gated stage: ``gate(name)(event)`` is ``is_enabled(name, event)``,
        with the lookups of :meth:`value` unrolled (it runs for every event)."""
        self.check(name, where="stage flag=")
        scope, decide, evaluations = self._scope.get, self._decide, self.evaluations
        cli, env, config, default = (self.values[source] for source in SOURCES)

        def gate(event: Any) -> bool:
            scoped = scope()
            value = (scoped[name] if name in scoped else cli[name] if name in cli
                     else env[name] if name in env else config[name] if name in config
                     else default[name])
            if value is True or value is False:  # _decide's common case: on or off for all
                counts = evaluations.get(name)
                if counts is not None:
                    counts[value] += 1
                    return value
            return decide(name, value, event)

        return gate

    # -- scoping ------------------------------------------------------------------------------
    def scopes(self) -> dict[str, bool]:
        """The ``with enabled(...)``/``disabled(...)`` scopes in force here: what an executor
        hands its workers, which enter them with :meth:`carried`."""
        return dict(self._scope.get())

    @contextmanager
    def carried(self, scopes: Mapping[str, bool]) -> Iterator[None]:
        """Inside the block, the scopes a run was started in (``scopes()`` in its process)."""
        token = self._scope.set(scopes)
        try:
            yield
        finally:
            self._scope.reset(token)

    @contextmanager
    def _scoped(self, name: str, on: bool) -> Iterator[None]:
        self.check(name, where="flags.enabled" if on else "flags.disabled")
        token = self._scope.set({**self._scope.get(), name: on})
        try:
            yield
        finally:
            self._scope.reset(token)

    def enabled(self, name: str) -> _Scope:
        """``with flags.enabled(name):`` (or as a decorator): on inside, restored after."""
        return _Scope(self, name, True)

    def disabled(self, name: str) -> _Scope:
        """``with flags.disabled(name):`` (or as a decorator): off inside, restored after."""
        return _Scope(self, name, False)

    def describe(self) -> list[dict[str, Any]]:
        """Every declared flag with its owner, default, current value and its source."""
        rows = []
        for name in sorted(self.declared):
            flag = self.declared[name]
            value, source = self.value(name)
            off, on = self.evaluations.get(name, [0, 0])
            rows.append({"name": name, "owner": flag.owner, "default": flag.default,
                         "key": flag.key, "value": value, "source": source,
                         "description": flag.description, "evaluations": off + on, "on": on})
        return rows


class _Scope:
    """A flag scope usable as a context manager or a decorator (sync and async)."""

    def __init__(self, flags: Flags, name: str, on: bool) -> None:
        self.flags, self.name, self.on = flags, name, on
        self._local = threading.local()  # one scope object may be entered in many threads

    def __enter__(self) -> None:
        manager = self.flags._scoped(self.name, self.on)
        manager.__enter__()
        self._local.__dict__.setdefault("active", []).append(manager)

    def __exit__(self, *exc_info: Any) -> None:
        self._local.active.pop().__exit__(*exc_info)

    def __call__(self, function: F) -> F:
        import inspect

        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self.flags._scoped(self.name, self.on):
                    return await function(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self.flags._scoped(self.name, self.on):
                return function(*args, **kwargs)

        return run  # type: ignore[return-value]


#: The flags of this process: its declarations and scopes, which every pipeline's flag set
#: (a :meth:`Flags.layer`) shares; the module-level functions use them outside a run.
default_flags = Flags()

_active: contextvars.ContextVar[Flags | None] = contextvars.ContextVar(
    "hookline_active_flags", default=None)


def current() -> Flags:
    """The flags a run made active (:meth:`Flags.active`), else :data:`default_flags`."""
    return _active.get() or default_flags


#: The plugin whose module is being imported (set by the loader): the owner of a flag that
#: module-level code declares with :func:`define`, so that a clash names it.
_importing: contextvars.ContextVar[str] = contextvars.ContextVar("hookline_importing",
                                                                 default="")


@contextmanager
def _imported_by(plugin: str) -> Iterator[None]:
    """Inside the block, :func:`define` records ``plugin`` as the owner of what it declares
    (the loader wraps each plugin's import in it)."""
    token = _importing.set(plugin)
    try:
        yield
    finally:
        _importing.reset(token)


def define(name: str, default: bool = False, rollout: float | None = None,
           key: str = "user_id", description: str = "") -> Flag:
    """Declare a flag in the process's flag set (plugins use the ``hookline_flags`` hook).

    Called while a plugin is imported, the flag's owner is that plugin (``at import``)."""
    plugin = _importing.get()
    owner = f"{plugin}, at import" if plugin else ""
    return default_flags.define(name, default, rollout, key, description, owner)


def is_enabled(name: str, event: Any = None) -> bool:
    """Whether ``name`` is on, with the values of the running pipeline (see :func:`current`)."""
    return current().is_enabled(name, event)


def enabled(name: str) -> _Scope:
    return default_flags.enabled(name)


def disabled(name: str) -> _Scope:
    return default_flags.disabled(name)


def gate(name: str) -> Callable[[Any], bool]:
    return current().gate(name)


def from_environment(flags: Flags, environ: Mapping[str, str] | None = None) -> None:
    """Apply ``HOOKLINE_FLAGS`` to ``flags``: from ``environ`` (a pipeline passes the
    environment its configuration kept from before the plugins were imported), else from
    ``os.environ``."""
    text = (os.environ if environ is None else environ).get("HOOKLINE_FLAGS", "")
    if text.strip():
        flags.set_many("env", text)
