"""The SQLite sink, the embedded default.

Tables: ``events`` (one row per accepted event, one column per schema field, plugin fields
included), ``dead_letters`` (the original line and why it was refused), the aggregate tables,
``checkpoints`` (how far each input is committed) and ``runs``.

Exactly once: a batch's events, dead letters, aggregate deltas and the source checkpoint are
committed in one transaction. A run killed at any moment leaves the database at the end of
a batch, and the next run resumes after it. An ``event_id`` already stored is refused as a
duplicate (dead-lettered with that reason), never inserted twice.
"""

from __future__ import annotations

import json
import operator
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .._schema import Event
from ..aggregates import (
    AGGREGATE_TABLES,
    Aggregation,
    create_statement,
    kind_statement,
    upsert_statement,
)
from ..fields import Boolean, Field, Integer, List, Mapping, Nested, Number, Timestamp

__all__ = ["DeadLetter", "Rows", "SQLiteSink", "read_state"]


@dataclass
class DeadLetter:
    """An input line that did not become an accepted event, and why."""

    payload: str
    reason: str
    stage: str | None = None
    error: str | None = None
    line: int | None = None
    source: str | None = None
    plugin: str | None = None
    distribution: str | None = None
    version: str | None = None


_DEAD_COLUMNS = ("payload", "reason", "stage", "error", "line", "source", "plugin",
                 "distribution", "version")


def _sql_type(field: Field[Any]) -> str:
    if isinstance(field, (Integer, Timestamp, Boolean)):
        return "INTEGER"
    if isinstance(field, Number):
        return "REAL"
    if isinstance(field, (List, Mapping, Nested)):
        return "TEXT"  # JSON
    return "TEXT"


def _is_json(field: Field[Any]) -> bool:
    return isinstance(field, (List, Mapping, Nested))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Rows:
    """How events of one schema become rows of ``events``: a value per field, in schema
    order, lists, mappings and nested events as compact JSON text.

    Made wherever events are processed, so that a worker process ships rows, not events.
    """

    def __init__(self, event_class: type[Event]) -> None:
        self.fields = list(event_class.__fields__.items())
        self.names = [name for name, _ in self.fields]
        #: Where ``event_id`` is in a row.
        self.id_index = self.names.index("event_id")
        self._values = operator.itemgetter(*self.names) if len(self.names) > 1 else (
            lambda values: (values[self.names[0]],))
        #: Where the fields stored as JSON text (lists, mappings, nested events) are.
        self._json_at = [at for at, (_, field) in enumerate(self.fields) if _is_json(field)]

    def __call__(self, event: Event) -> tuple[Any, ...]:
        row = self._values(event.__dict__)
        if not self._json_at:
            return row
        values = list(row)
        for at in self._json_at:
            value = values[at]
            if value:  # None stays NULL; [] and {} need no encoder
                values[at] = _encode(value)
            elif value is not None:
                values[at] = "[]" if type(value) is list else "{}"
        return tuple(values)

    def json_line(self, row: tuple[Any, ...]) -> str:
        """The event of ``row`` as one compact JSON object, as ``event.to_dict()`` dumps."""
        texts = [_encode(value) for value in row]
        for at in self._json_at:  # already JSON text, unless NULL
            if row[at] is not None:
                texts[at] = row[at]
        return "{" + ",".join(f"{_encode(name)}:{text}"
                              for name, text in zip(self.names, texts)) + "}"


class SQLiteSink:
    """Writes batches to one SQLite database (WAL mode), each in one transaction."""

    def __init__(self, path: str, event_class: type[Event], *, run_id: str = "") -> None:
        self.path = path
        self.event_class = event_class
        self.run_id = run_id
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.execute("PRAGMA busy_timeout=10000")
        self.rows = Rows(event_class)
        self._fields = self.rows.fields
        self._create_tables()
        columns = ", ".join(_quote(name) for name, _ in self._fields)
        marks = ", ".join("?" for _ in self._fields)
        self._insert_event = f"INSERT INTO events ({columns}) VALUES ({marks})"
        self._by_kind = kind_statement(self.rows.names)
        self._tables = set(AGGREGATE_TABLES)  # aggregation tables that exist

    def _create_tables(self) -> None:
        db = self.connection
        columns = ", ".join(
            f"{_quote(name)} {_sql_type(field)}" + (" PRIMARY KEY" if name == "event_id" else "")
            for name, field in self._fields
        )
        db.execute(f"CREATE TABLE IF NOT EXISTS events ({columns})")
        present = {row[1] for row in db.execute("PRAGMA table_info(events)")}
        for name, field in self._fields:  # a plugin installed since the last run adds fields
            if name not in present:
                db.execute(f"ALTER TABLE events ADD COLUMN {_quote(name)} {_sql_type(field)}")
        db.execute(
            "CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY, run_id TEXT, "
            "payload TEXT, reason TEXT NOT NULL, stage TEXT, error TEXT, line INTEGER, "
            "source TEXT, plugin TEXT, distribution TEXT, version TEXT, created_at REAL)"
        )
        for table, key in AGGREGATE_TABLES.items():
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {table} ({key} TEXT PRIMARY KEY, "
                "count INTEGER NOT NULL, amount_sum REAL NOT NULL, amount_min REAL, "
                "amount_max REAL, score_sum REAL NOT NULL, score_count INTEGER NOT NULL, "
                "score_mean REAL GENERATED ALWAYS AS "
                "(CASE WHEN score_count > 0 THEN score_sum / score_count END) VIRTUAL)"
            )
        db.execute(
            "CREATE TABLE IF NOT EXISTS checkpoints (source TEXT PRIMARY KEY, "
            "offset INTEGER NOT NULL, line INTEGER NOT NULL, updated_at REAL)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, started_at REAL, "
            "finished_at REAL, report TEXT)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS stage_state (stage TEXT NOT NULL, key TEXT NOT NULL, "
            "value TEXT NOT NULL, PRIMARY KEY (stage, key))"
        )

    def checkpoint(self, source_key: str) -> tuple[int, int]:
        """(byte offset, line number) already committed for a source; (0, 0) if none."""
        row = self.connection.execute(
            "SELECT offset, line FROM checkpoints WHERE source = ?", (source_key,)
        ).fetchone()
        return (row[0], row[1]) if row else (0, 0)

    def load_state(self, stages: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The committed state of each of the stateful ``stages`` (see :func:`read_state`)."""
        return read_state(self.connection, stages)

    def dead_letters(self, after_id: int, limit: int) -> list[tuple[int, str, int | None, str]]:
        """``(id, payload, line, source)`` of the dead letters after ``after_id``, in order."""
        return self.connection.execute(
            "SELECT id, payload, line, source FROM dead_letters WHERE id > ? ORDER BY id "
            "LIMIT ?", (after_id, limit)).fetchall()

    def existing_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Which of ``event_ids`` are already stored."""
        found: set[str] = set()
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(row[0] for row in self.connection.execute(
                f"SELECT event_id FROM events WHERE event_id IN ({marks})", chunk))
        return found

    def commit(
        self,
        rows: Sequence[tuple[Any, ...]],
        dead_letters: Sequence[DeadLetter],
        checkpoint: tuple[str, int, int] | None,
        state: Sequence[tuple[str, str, Any]] = (),
        replayed: Sequence[int] = (),
        outputs: Sequence[tuple[str, int]] = (),
        aggregations: Sequence[Aggregation] = (),
    ) -> None:
        """Write one batch, the stage state it changed and its checkpoint in one transaction.

        ``rows``: the accepted events, as :class:`Rows` makes them; the built-in aggregate
        table ``agg_by_kind`` is updated from them. ``aggregations``: the batch's partials of
        ``agg_by_user`` and of the plugins' aggregations. ``replayed``: ids of dead letters
        this batch re-ran (``hookline replay``); they are deleted in the same transaction,
        their outcome written in their place. ``outputs``: ``(key, committed length)`` of
        other sinks written before this commit.
        """
        db = self.connection
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("DELETE FROM dead_letters WHERE id = ?", [(i,) for i in replayed])
            if rows:
                [(last,)] = db.execute("SELECT coalesce(max(rowid), 0) FROM events")
                db.executemany(self._insert_event, rows)
                if self._by_kind is not None:
                    db.execute(self._by_kind, (last,))
            for aggregation in aggregations:
                if aggregation.table not in self._tables:
                    db.execute(create_statement(aggregation))
                    self._tables.add(aggregation.table)
                db.executemany(upsert_statement(aggregation), list(aggregation.rows()))
            db.executemany(
                "INSERT INTO dead_letters (run_id, created_at, "
                + ", ".join(_DEAD_COLUMNS) + ") VALUES (?, ?, "
                + ", ".join("?" for _ in _DEAD_COLUMNS) + ")",
                [(self.run_id, now, *(getattr(d, c) for c in _DEAD_COLUMNS))
                 for d in dead_letters],
            )
            db.executemany(
                "INSERT INTO stage_state (stage, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT(stage, key) DO UPDATE SET value = excluded.value",
                [(stage, key, json.dumps(value)) for stage, key, value in state
                 if value is not None])
            db.executemany("DELETE FROM stage_state WHERE stage = ? AND key = ?",
                           [(stage, key) for stage, key, value in state if value is None])
            db.executemany(
                "INSERT INTO checkpoints (source, offset, line, updated_at) VALUES (?, ?, 0, ?) "
                "ON CONFLICT(source) DO UPDATE SET offset = excluded.offset, "
                "updated_at = excluded.updated_at", [(key, size, now) for key, size in outputs])
            if checkpoint is not None:
                db.execute(
                    "INSERT INTO checkpoints (source, offset, line, updated_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT(source) DO UPDATE SET "
                    "offset = excluded.offset, line = excluded.line, "
                    "updated_at = excluded.updated_at",
                    (*checkpoint, now),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def record_run(self, started_at: float, report: dict[str, Any]) -> None:
        self.connection.execute(
            "INSERT OR REPLACE INTO runs (run_id, started_at, finished_at, report) "
            "VALUES (?, ?, ?, ?)",
            (self.run_id, started_at, time.time(), json.dumps(report)),
        )

    def close(self) -> None:
        self.connection.close()


def read_state(connection: sqlite3.Connection, stages: Iterable[str]
               ) -> dict[str, dict[str, Any]]:
    """``{stage: {key: value}}``: the state committed for each of ``stages``, empty for a
    stage with none, or when the database has no ``stage_state`` table yet.

    The one reader of the table: the run loop and ``hookline replay`` read through
    :meth:`SQLiteSink.load_state`, and each worker of the process executor reads on its own
    read-only connection.
    """
    state: dict[str, dict[str, Any]] = {stage: {} for stage in stages}
    if not state:
        return state
    try:  # one pass over the table (a run asks for every stage; no limit on their number)
        rows = connection.execute("SELECT stage, key, value FROM stage_state")
        for stage, key, value in rows:
            if stage in state:
                state[stage][key] = json.loads(value)
    except sqlite3.OperationalError:  # no stage_state table: nothing committed
        pass
    return state


def _plain(value: Any) -> Any:
    if isinstance(value, Event):
        return value.to_dict()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _compact_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_plain)``, made
    once: ``JSONEncoder.encode`` builds its C encoder again on every call, which costs more
    than encoding a short list."""
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_plain)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator (another Python implementation)
        return encoder.encode
    encode = make({}, _plain, json.encoder.encode_basestring, None, ":", ",", False, False,
                  True)  # {}: circular references are refused, as json.dumps does
    join = "".join

    def compact(value: Any) -> str:
        if isinstance(value, str):  # the C encoder's one-shot path wants a container
            return encoder.encode(value)
        return join(encode(value, 0))

    return compact


_encode = _compact_encoder()
