"""State for stateful stages (per-user windows, counters), committed with each batch.

A stage keeps what it needs between events in ``self.state``, a mapping of str keys to
JSON values. The runner loads it from the database when a run starts and writes the keys
changed during a batch in the same transaction as the batch and its checkpoint, so a run
resumed after a crash decides exactly as an uninterrupted one would have.

What counts as a change: a key assigned or deleted (``state[key] = value``, ``del``,
``setdefault``, ``pop``...), and a dict or list value changed in place after it was handed out
(``state.setdefault(user, {"n": 0})["n"] += 1``). Every container value a stage reads is
remembered, and at the end of the batch it is serialized and compared with the JSON text last
committed for that key: only those that differ are written. So in-place changes are saved and
reads cost nothing at commit.

A state is private to its stage. Once bound to its stage (:func:`load`, when a run or a replay
starts), a write is accepted only from the stage's own code (a method of its class, or a
function called from one): another stage's write raises :class:`~hookline.errors.StateError`
in the writer, which fails that stage for that event; another stage reading a dict or list
value gets a copy, so changing it in place changes nothing.
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from types import CodeType
from typing import Any

from ._json import encoder
from .errors import StateError

__all__ = ["State", "changes", "discard", "load"]

log = logging.getLogger("hookline.state")

_CONTAINERS = (dict, list)
_SCALARS = (str, int, float, bool, type(None))
_MISSING: Any = object()


#: The JSON text a value is committed as (what ``json.dumps(value)`` gives: the form the
#: table holds).
_text = encoder()


class State(MutableMapping[str, Any]):
    """A dict of JSON values that knows which keys changed since the last commit."""

    __slots__ = ("_code_ids", "_codes", "_data", "_dirty", "_name", "_saved", "_touched")

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        #: Keys assigned or deleted since the last commit.
        self._dirty: set[str] = set()
        #: Keys whose dict or list value was handed out since the last commit.
        self._touched: set[str] = set()
        #: The JSON text last committed (or loaded) of each dict or list value.
        self._saved: dict[str, str] = {}
        #: The owning stage's name and code, once bound; unbound, nothing is checked.
        self._name: str | None = None
        self._codes: frozenset[CodeType] = frozenset()
        #: Their ids, which the checks look up: a code object's hash is computed from its
        #: contents on every lookup (several hundred ns), an int's is free. ``_codes`` keeps
        #: the objects alive, so an id cannot be reused by another code object.
        self._code_ids: frozenset[int] = frozenset()

    # -- reading -------------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        if value.__class__ in _CONTAINERS:
            return self._handed_out(key, value)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self._data.get(key, _MISSING)
        if value.__class__ in _CONTAINERS:
            codes = self._code_ids  # _handed_out, its common case inlined: the owner calling
            if not codes or id(sys._getframe(1).f_code) in codes:
                self._touched.add(key)
                return value
            return self._handed_out(key, value)
        return default if value is _MISSING else value

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def _handed_out(self, key: str, value: Any) -> Any:
        """A dict or list value: the value itself for the owner (remembered, to compare at
        commit), a copy for anyone else."""
        if self._codes and not self._owner_calling():
            return copy.deepcopy(value)
        self._touched.add(key)
        return value

    # -- writing -------------------------------------------------------------------------------
    def __setitem__(self, key: str, value: Any) -> None:
        if self._codes and not self._owner_calling():
            raise self._refused("write")
        if key.__class__ is not str:
            raise StateError(f"state keys are str, not {type(key).__name__} ({key!r})")
        if value.__class__ not in _SCALARS:
            try:
                _text(value)
            except (TypeError, ValueError) as exc:
                raise StateError(f"state[{key!r}]: a state value is JSON ({exc})") from None
        self._data[key] = value
        self._dirty.add(key)

    def __delitem__(self, key: str) -> None:
        if self._codes and not self._owner_calling():
            raise self._refused("delete from")
        del self._data[key]
        self._dirty.add(key)

    def _owner_calling(self) -> bool:
        """Whether the owning stage's code is on the stack (its method, or a function one of
        its methods called): a walk up from the caller, usually one or two frames."""
        frame: Any = sys._getframe(2)  # __setitem__, __delitem__ or _handed_out, then up
        codes = self._code_ids
        while frame is not None:
            if id(frame.f_code) in codes:
                return True
            frame = frame.f_back
        return False

    def _refused(self, what: str) -> StateError:
        return StateError(f"cannot {what} the state of stage {self._name}: a stage's state is "
                          "private to it (keep what you need in your own stage's state)")

    # -- the runner's side ----------------------------------------------------------------------
    def bind(self, name: str, stage: Any) -> None:
        """Make this the private state of ``stage`` (called ``name``)."""
        self._name = name
        self._codes = _code_of(type(stage))
        self._code_ids = frozenset(map(id, self._codes))

    def changes(self) -> list[tuple[str, str | None]]:
        """``(key, JSON text)`` for each key changed since the last call (None: deleted), and
        forget them: the caller commits them."""
        keys = self._dirty | self._touched if self._touched else self._dirty
        changed: list[tuple[str, str | None]] = []
        data, saved = self._data, self._saved
        for key in sorted(keys):
            value = data.get(key, _MISSING)
            if value is _MISSING:
                saved.pop(key, None)
                if key in self._dirty:
                    changed.append((key, None))
                continue
            try:
                text = _text(value)
            except (TypeError, ValueError) as exc:  # changed in place into something not JSON
                log.warning("state of %s, key %r: %s; the change is not kept", self._name, key,
                            exc)
                self._revert(key)
                continue
            if value.__class__ in _CONTAINERS:
                if key not in self._dirty and saved.get(key) == text:
                    continue  # handed out, not changed
                saved[key] = text
            else:
                saved.pop(key, None)
            changed.append((key, text))
        self._dirty.clear()
        self._touched.clear()
        return changed

    def _revert(self, key: str) -> None:
        text = self._saved.get(key)
        if text is None:
            self._data.pop(key, None)
        else:
            self._data[key] = json.loads(text)

    def load(self, items: Mapping[str, Any]) -> None:
        """Replace the contents with committed values (nothing is marked changed)."""
        self._data = dict(items)
        self._saved = {key: _text(value) for key, value in self._data.items()
                       if value.__class__ in _CONTAINERS}
        self._dirty.clear()
        self._touched.clear()

    def discard(self, committed: Mapping[str, Any]) -> None:
        """Forget the changes since the last commit: each key changed goes back to its value
        in ``committed`` (the state as the database holds it)."""
        for key in self._dirty | self._touched:
            if key in committed:
                self._data[key] = copy.deepcopy(committed[key])
                if committed[key].__class__ in _CONTAINERS:
                    self._saved[key] = _text(committed[key])
                else:
                    self._saved.pop(key, None)
            else:
                self._data.pop(key, None)
                self._saved.pop(key, None)
        self._dirty.clear()
        self._touched.clear()


def _code_of(cls: type) -> frozenset[CodeType]:
    """The code objects of a stage class's own functions (those of its bases up to ``Stage``
    included, decorators unwrapped) and of every function nested in them."""
    found: set[CodeType] = set()

    def add(code: CodeType) -> None:
        if code not in found:
            found.add(code)
            for const in code.co_consts:
                if isinstance(const, CodeType):
                    add(const)

    for klass in cls.__mro__:
        if klass is object or klass.__module__ == "hookline._registry":
            continue  # hookline.Stage itself: its code is every stage's
        for value in vars(klass).values():
            for function in _functions(value):
                code = getattr(inspect.unwrap(function), "__code__", None)
                if isinstance(code, CodeType):
                    add(code)
    return frozenset(found)


def _functions(value: Any) -> list[Any]:
    if isinstance(value, (staticmethod, classmethod)):
        return [value.__func__]
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset, value.fdel) if f is not None]
    return [value] if callable(value) else []


def load(stages: Mapping[str, Any], committed: Mapping[str, dict[str, Any]]) -> None:
    """Give each stateful stage (``{name: stage}``) its committed state, empty if none, and
    make the state private to it."""
    for name, stage in stages.items():
        stage.state.bind(name, stage)
        stage.state.load(committed.get(name, {}))


def changes(stages: Mapping[str, Any]) -> list[tuple[str, str, str | None]]:
    """``(stage, key, JSON text)`` of every key the stages changed since the last call (None:
    deleted): what a batch commits with its events."""
    return [(name, key, text) for name, stage in stages.items()
            for key, text in stage.state.changes()]


def discard(stages: Mapping[str, Any], committed: Mapping[str, dict[str, Any]]) -> None:
    """Undo the stages' state changes since the last call of :func:`changes`."""
    for name, stage in stages.items():
        stage.state.discard(committed.get(name, {}))
