"""Aggregates: the built-in per-user and per-kind tables, and the aggregations plugins add.

Built in: ``agg_by_user`` and ``agg_by_kind`` keep, per group, the event count, the sum,
minimum and maximum of ``amount``, and the sum and count of ``score`` (``score_mean`` is a
generated column). Each batch's partial is added to the stored rows (an UPSERT), so partials
merge with the totals in any order. Where each is computed follows from the partitioning:

* per user, in Python where the batch is processed (:class:`ByUser`): executors partition
  by ``user_id``, so one process sees all of a user's events of a batch, in input order, and
  its sums are those of an inline run, to the last bit;
* per kind, by SQLite from the rows the batch inserts (:func:`kind_statement`, one
  ``GROUP BY`` inside the batch's transaction): a kind spans every partition, and summing
  the committed rows in one place keeps the floating-point sums independent of how the
  batch was split. A few kinds make this cheap; per user it would not be.

Added by plugins: ``hookline_aggregations()`` returns fresh partial aggregations, objects
with ``table``, ``columns`` (the key column first), ``update(event)``, ``merge(other)``
(combine two partials, in any order), ``rows()`` (tuples in ``columns`` order) and, optionally,
``combine`` (how a stored column takes a new partial's value: ``"sum"``, the default,
``"min"``, ``"max"`` or ``"last"``). Each batch gets its own partials, filled by whoever
processed the batch (the run, or each worker process, whose partials are merged), and their
rows are written in the batch's transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from .errors import PluginError, short_repr

__all__ = ["AGGREGATE_TABLES", "BUILTIN_COMBINE", "COMBINE", "Aggregation", "ByUser",
           "Collected", "checked", "create_statement", "kind_statement", "merged",
           "upsert_statement"]

#: table name -> the event field it groups by
AGGREGATE_TABLES = {"agg_by_user": "user_id", "agg_by_kind": "kind"}

#: How a stored column takes the value of the same column of a new partial (``excluded``).
COMBINE = {
    "sum": "{c} + excluded.{c}",
    "min": "min(coalesce({c}, excluded.{c}), coalesce(excluded.{c}, {c}))",
    "max": "max(coalesce({c}, excluded.{c}), coalesce(excluded.{c}, {c}))",
    "last": "excluded.{c}",
}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED = {"events", "dead_letters", "checkpoints", "runs", "stage_state", *AGGREGATE_TABLES}


@runtime_checkable
class Aggregation(Protocol):
    """A partial aggregation a plugin adds (see the module docs)."""

    table: str
    columns: Sequence[str]

    def update(self, event: Any) -> None: ...

    def merge(self, other: Any) -> Any: ...

    def rows(self) -> Iterable[tuple[Any, ...]]: ...


def _quote(name: str) -> str:
    return f'"{name}"'


#: The columns of the built-in tables after the key, and how a partial adds to the totals.
BUILTIN_COMBINE = {"count": "sum", "amount_sum": "sum", "amount_min": "min",
                   "amount_max": "max", "score_sum": "sum", "score_count": "sum"}


class ByUser:
    """The partial of ``agg_by_user`` over some events: an :class:`Aggregation`."""

    table = "agg_by_user"
    columns = ("user_id", *BUILTIN_COMBINE)
    combine = BUILTIN_COMBINE

    def __init__(self) -> None:
        # user -> [count, amount sum, min, max, score sum, score count]
        self.groups: dict[str, list[Any]] = {}

    def update(self, event: Any) -> None:
        values = event.__dict__
        amount = values.get("amount") or 0
        score = values.get("score")
        group = self.groups.get(values["user_id"])
        if group is None:
            self.groups[values["user_id"]] = [1, 0.0 + amount, amount, amount,
                                              0.0 if score is None else 0.0 + score,
                                              0 if score is None else 1]
            return
        group[0] += 1
        group[1] += amount
        if amount < group[2]:
            group[2] = amount
        if amount > group[3]:
            group[3] = amount
        if score is not None:
            group[4] += score
            group[5] += 1

    def merge(self, other: ByUser) -> ByUser:
        for key, theirs in other.groups.items():
            mine = self.groups.get(key)
            if mine is None:
                self.groups[key] = list(theirs)
            else:
                mine[:] = [mine[0] + theirs[0], mine[1] + theirs[1], min(mine[2], theirs[2]),
                           max(mine[3], theirs[3]), mine[4] + theirs[4], mine[5] + theirs[5]]
        return self

    def rows(self) -> list[tuple[Any, ...]]:
        return [(key, *group) for key, group in self.groups.items()]


class Collected:
    """A partial that is already rows (``agg_by_user``'s, shipped from a worker in marshal's
    format rather than pickled): written as it is. Two rows of one key in a batch, from two
    partials, are added up by the table's UPSERT like any two partials."""

    def __init__(self, like: type[Any], rows: list[tuple[Any, ...]]) -> None:
        self.table, self.columns, self.combine = like.table, like.columns, like.combine
        self._rows = rows

    def rows(self) -> list[tuple[Any, ...]]:
        return self._rows


def kind_statement(fields: Iterable[str]) -> str | None:
    """The statement adding a batch's per-kind groups to ``agg_by_kind``, for an event schema
    with ``fields`` (None without ``kind``); its one parameter is the last ``rowid`` of
    ``events`` before the batch's rows."""
    present = set(fields)
    if "kind" not in present:
        return None
    amount = "coalesce(amount, 0)" if "amount" in present else "0"
    score = "score" if "score" in present else "NULL"
    return (
        f"INSERT INTO agg_by_kind (kind, {', '.join(BUILTIN_COMBINE)}) SELECT kind, count(*), "
        f"total({amount}), min({amount}), max({amount}), total({score}), count({score}) "
        "FROM events WHERE rowid > ? GROUP BY kind ON CONFLICT(kind) DO UPDATE SET "
        + _assignments(BUILTIN_COMBINE))


def _assignments(combine: Mapping[str, str]) -> str:
    return ", ".join(f"{_quote(column)} = {COMBINE[how].format(c=_quote(column))}"
                     for column, how in combine.items())


def create_statement(aggregation: Aggregation) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for a plugin aggregation (the key column is the key)."""
    key, *others = aggregation.columns
    columns = ", ".join([f"{_quote(key)} PRIMARY KEY", *map(_quote, others)])
    return f"CREATE TABLE IF NOT EXISTS {_quote(aggregation.table)} ({columns})"


def upsert_statement(aggregation: Aggregation) -> str:
    """The statement adding one row of a partial to a plugin aggregation's table."""
    key, *others = aggregation.columns
    combine = getattr(aggregation, "combine", None) or {}
    columns = ", ".join(map(_quote, aggregation.columns))
    marks = ", ".join("?" for _ in aggregation.columns)
    statement = f"INSERT INTO {_quote(aggregation.table)} ({columns}) VALUES ({marks})"
    if not others:
        return statement + f" ON CONFLICT({_quote(key)}) DO NOTHING"
    return statement + f" ON CONFLICT({_quote(key)}) DO UPDATE SET " + _assignments(
        {column: combine.get(column, "sum") for column in others})


def checked(found: Iterable[Any], where: str) -> list[Aggregation]:
    """The aggregations ``hookline_aggregations()`` returned, each checked; a mistake raises
    :class:`PluginError` naming ``where`` (the plugin), the object and what to fix."""
    result = []
    for aggregation in found:
        problem = _problem(aggregation)
        if problem is not None:
            raise PluginError(f"{where}: hookline_aggregations() returned "
                              f"{short_repr(aggregation)}: {problem}")
        result.append(aggregation)
    return result


def _problem(aggregation: Any) -> str | None:
    if not isinstance(aggregation, Aggregation):
        missing = [name for name in ("table", "columns", "update", "merge", "rows")
                   if not hasattr(aggregation, name)]
        return f"an aggregation needs {', '.join(missing)}"
    table, columns = aggregation.table, aggregation.columns
    if not isinstance(table, str) or not _NAME.fullmatch(table) or table in _RESERVED:
        return (f"table={table!r} must be an SQL name (letters, digits, _) other than "
                f"hookline's own tables ({', '.join(sorted(_RESERVED))})")
    if (isinstance(columns, str) or not isinstance(columns, Sequence) or not columns
            or not all(isinstance(c, str) and _NAME.fullmatch(c) for c in columns)
            or len(set(columns)) != len(columns)):
        return (f"columns={columns!r} must be a non-empty sequence of distinct SQL names, "
                "the key first")
    combine = getattr(aggregation, "combine", None) or {}
    for column, how in dict(combine).items():
        if column not in columns[1:]:
            return f"combine names {column!r}, which is not one of the non-key columns"
        if how not in COMBINE:
            return f"combine[{column!r}]={how!r}: use one of {', '.join(COMBINE)}"
    return None


def merged(partials: Sequence[Sequence[Aggregation]]) -> list[Aggregation]:
    """One list of partials from several lists of the same aggregations (one per worker):
    the first list's objects, with the others merged into them, position by position."""
    if not partials:
        return []
    first, *others = partials
    combined = list(first)
    for more in others:
        combined = [mine.merge(theirs) for mine, theirs in zip(combined, more, strict=True)]
    return combined
