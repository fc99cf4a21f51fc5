"""State for stateful stages (per-user windows, counters), committed with each batch.

A stage keeps what it needs between events in ``self.state``, a mapping of str keys to
JSON values. The runner loads it from the database when a run starts and writes the keys
changed during a batch in the same transaction as the batch and its checkpoint, so a run
resumed after a crash decides exactly as an uninterrupted one would have.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

__all__ = ["State", "changes", "load"]


class State(MutableMapping[str, Any]):
    """A dict of JSON values that remembers which keys changed since the last commit."""

    __slots__ = ("_data", "_dirty")

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._dirty: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value
        self._dirty.add(key)

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._dirty.add(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def changes(self) -> list[tuple[str, Any]]:
        """``(key, value)`` for each key changed since the last call (value None: deleted),
        and forget them: the caller commits them."""
        changed = [(key, self._data.get(key)) for key in sorted(self._dirty)]
        self._dirty.clear()
        return changed

    def load(self, items: dict[str, Any]) -> None:
        """Replace the contents with committed values (nothing is marked changed)."""
        self._data = dict(items)
        self._dirty.clear()


def load(stages: Mapping[str, Any], committed: Mapping[str, dict[str, Any]]) -> None:
    """Give each stateful stage (``{name: stage}``) its committed state, empty if none."""
    for name, stage in stages.items():
        stage.state.load(committed.get(name, {}))


def changes(stages: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """``(stage, key, value)`` of every key the stages changed since the last call: what a
    batch commits with its events."""
    return [(name, key, value) for name, stage in stages.items()
            for key, value in stage.state.changes()]
