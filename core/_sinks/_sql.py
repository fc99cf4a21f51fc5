"""What hookline's SQL sinks (SQLite, PostgreSQL) ask their databases alike: the runs
``hookline runs`` lists, the dead letters ``hookline dead-letters`` and ``replay`` select,
and the columns a dead letter is written in.

The questions are asked here once; how each database words them (its parameter mark, its
"starts with", the type its times are stored in…) is the sink's :class:`Dialect`, so that a
filter added to :class:`~hookline.sinks.LetterFilter` is added for both sinks at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any, ClassVar, Protocol

from ..sinks import DeadLetter, FoundDeadLetter, LetterFilter, SinkReader, StoredRun

__all__ = ["DEAD_COLUMNS", "Dialect", "History"]

#: The columns of ``dead_letters`` written from a :class:`~hookline.sinks.DeadLetter`, in the
#: order of its fields (``id``, ``run_id`` and ``created_at`` are the sink's own).
DEAD_COLUMNS: tuple[str, ...] = tuple(field.name for field in dataclass_fields(DeadLetter))


class _Cursor(Protocol):
    def fetchall(self) -> list[Any]: ...


class _Connection(Protocol):
    """What both drivers' connections (sqlite3, psycopg) offer: ``execute`` returning a
    cursor."""

    def execute(self, query: str, parameters: Sequence[Any], /) -> _Cursor: ...


@dataclass(frozen=True)
class Dialect:
    """How one database words the questions of :class:`History`."""

    #: The parameter placeholder (``?``, ``%s``).
    mark: str
    #: ``(column, prefix)`` -> the condition "``column`` starts with ``prefix``" and its
    #: parameters.
    starts_with: Callable[[str, str], tuple[str, list[Any]]]
    #: The condition "``{column}`` contains the parameter, in any case" (one mark).
    contains: str
    #: ``{column}`` (a stored time) in seconds since the epoch.
    epoch: str
    #: The ``LIMIT`` parameter that means no limit.
    no_limit: int | None
    #: The ``ORDER BY`` of the runs, newest first (a run not started yet last).
    newest_first: str
    #: What the driver raises where a table does not exist yet (nothing stored).
    missing_table: tuple[type[BaseException], ...]
    #: A stored ``runs.report`` as the dict it stands for (None for none).
    report: Callable[[Any], dict[str, Any] | None]


class History(SinkReader):
    """``runs``, ``find_dead_letters`` and ``count_dead_letters`` of a SQL sink or of its
    reader, on its ``connection`` (None: no database yet, so nothing stored)."""

    #: How this sink's database words its queries.
    dialect: ClassVar[Dialect]
    connection: Any

    def runs(self, limit: int | None = None, run_id: str = "") -> list[StoredRun]:
        """See :meth:`hookline.sinks.SinkReader.runs`; none before the table exists."""
        d = self.dialect
        query = (f"SELECT run_id, {d.epoch.format(column='started_at')}, "
                 f"{d.epoch.format(column='finished_at')}, report FROM runs")
        values: list[Any] = []
        if run_id:
            condition, values = d.starts_with("run_id", run_id)
            query += f" WHERE {condition}"
        query += f" ORDER BY {d.newest_first} LIMIT {d.mark}"
        rows = self._fetch(query, [*values, d.no_limit if limit is None else limit])
        return [StoredRun(found, started, finished, d.report(report))
                for found, started, finished, report in rows]

    def find_dead_letters(self, where: LetterFilter, *, after_id: int = 0,
                          limit: int | None = None) -> list[FoundDeadLetter]:
        """See :meth:`hookline.sinks.SinkReader.find_dead_letters` (the one reader of whole
        dead letters)."""
        d = self.dialect
        clause, values = self._letter_where(where, after_id)
        columns = ", ".join(d.epoch.format(column=name) if name == "created_at" else name
                            for name in FoundDeadLetter._fields)
        rows = self._fetch(
            f"SELECT {columns} FROM dead_letters WHERE {clause} ORDER BY id LIMIT {d.mark}",
            [*values, d.no_limit if limit is None else limit])
        return [FoundDeadLetter(*row) for row in rows]

    def count_dead_letters(self, where: LetterFilter) -> int:
        clause, values = self._letter_where(where, 0)
        rows = self._fetch(f"SELECT count(*) FROM dead_letters WHERE {clause}", values)
        return int(rows[0][0]) if rows else 0

    def _letter_where(self, where: LetterFilter, after_id: int) -> tuple[str, list[Any]]:
        """The ``WHERE`` clause selecting the dead letters of ``where`` after ``after_id``."""
        d = self.dialect
        clauses = [f"id > {d.mark}"]
        values: list[Any] = [after_id]
        if where.stage:  # the stage, or every stage of the plugin of that name
            condition, more = d.starts_with("stage", where.stage + ".")
            clauses.append(f"(stage = {d.mark} OR {condition})")
            values += [where.stage, *more]
        if where.reason:
            clauses.append(d.contains.format(column="reason"))
            values.append(where.reason)
        if where.run_id:
            condition, more = d.starts_with("run_id", where.run_id)
            clauses.append(condition)
            values += more
        return " AND ".join(clauses), values

    def _fetch(self, query: str, values: Sequence[Any]) -> list[Any]:
        """The rows of ``query``; none where the database or the table does not exist yet."""
        connection: _Connection | None = self.connection
        if connection is None:
            return []
        try:
            return connection.execute(query, values).fetchall()
        except self.dialect.missing_table:
            return []
