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
import os
import sqlite3
import sys
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

__all__ = ["DeadLetter", "Rows", "SQLiteSink", "WriterLock", "connect", "read_state",
           "stored_ids"]

#: ``sqlite3.connect`` as it was when hookline's sink was imported, before any plugin: a
#: plugin that patches it (to an in-memory database, say) does not redirect a run's writes.
connect = sqlite3.connect


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
    #: How many times ``hookline replay`` has run this letter's event (its state changes are
    #: kept on the first processing and the first replay only).
    replays: int = 0
    #: The ``event_id`` of an event a stage refused or failed on (it counts as seen: a
    #: re-delivery of it is a duplicate); None for a line no stage saw.
    event_id: str | None = None


_DEAD_COLUMNS = ("payload", "reason", "stage", "error", "line", "source", "plugin",
                 "distribution", "version", "replays", "event_id")


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
        self.connection = connect(path, isolation_level=None)
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
            "source TEXT, plugin TEXT, distribution TEXT, version TEXT, created_at REAL, "
            "replays INTEGER NOT NULL DEFAULT 0, event_id TEXT)"
        )
        present = {row[1] for row in db.execute("PRAGMA table_info(dead_letters)")}
        for column, declaration in (("replays", "INTEGER NOT NULL DEFAULT 0"),
                                    ("event_id", "TEXT")):  # a database from before them
            if column not in present:
                db.execute(f"ALTER TABLE dead_letters ADD COLUMN {column} {declaration}")
        db.execute("CREATE INDEX IF NOT EXISTS dead_letters_event_id ON dead_letters (event_id)")
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

    def dead_letters(self, after_id: int, limit: int
                     ) -> list[tuple[int, str, int | None, str, int]]:
        """``(id, payload, line, source, replays)`` of the dead letters after ``after_id``, in
        order."""
        return self.connection.execute(
            "SELECT id, payload, line, source, replays FROM dead_letters WHERE id > ? "
            "ORDER BY id LIMIT ?", (after_id, limit)).fetchall()

    def existing_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Which of ``event_ids`` are already stored."""
        return stored_ids(self.connection, event_ids, letters=False)

    #: The event ids on the dead letters stages wrote, held while there are at most
    #: ``_HOLD`` of them (looked up in memory, not with a second query per batch); None: not
    #: read yet; False: too many, asked of the database.
    _letter_ids: set[str] | bool | None = None
    _HOLD = 100_000

    def seen_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Which of ``event_ids`` the stages have seen already: stored, or dead-lettered by a
        stage (see :func:`stored_ids`). This sink's run is the one writer (:meth:`lock_writer`),
        so the letter ids it holds stay true as it commits."""
        if self._letter_ids is None:
            read = {event_id for (event_id,) in self.connection.execute(
                "SELECT event_id FROM dead_letters WHERE event_id IS NOT NULL LIMIT ?",
                (self._HOLD + 1,))}
            self._letter_ids = read if len(read) <= self._HOLD else False
        held = self._letter_ids
        if not isinstance(held, set):
            return stored_ids(self.connection, event_ids)
        found = stored_ids(self.connection, event_ids, letters=False)
        if held:
            found.update(held.intersection(event_ids))
        return found

    def _held(self, dead_letters: Sequence[DeadLetter]) -> None:
        """Hold the event ids of committed dead letters (see :attr:`_letter_ids`)."""
        held = self._letter_ids
        if isinstance(held, set):
            held.update(d.event_id for d in dead_letters if d.event_id is not None)
            if len(held) > self._HOLD:
                self._letter_ids = False

    def commit(
        self,
        rows: Sequence[tuple[Any, ...]],
        dead_letters: Sequence[DeadLetter],
        checkpoint: tuple[str, int, int] | None,
        state: Sequence[tuple[str, str, str | None]] = (),
        replayed: Sequence[int] = (),
        outputs: Sequence[tuple[str, int]] = (),
        aggregations: Sequence[Aggregation] = (),
    ) -> None:
        """Write one batch, the stage state it changed and its checkpoint in one transaction.

        ``state``: ``(stage, key, JSON text)`` of each key changed, None for one deleted.
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
                self._insert_rows(rows, dead_letters)
                if self._by_kind is not None:
                    db.execute(self._by_kind, (last,))
            for aggregation in aggregations:
                if aggregation.table not in self._tables:
                    db.execute(create_statement(aggregation))
                    self._tables.add(aggregation.table)
                db.executemany(upsert_statement(aggregation), list(aggregation.rows()))
            letters = [(self.run_id, now, *(getattr(d, c) for c in _DEAD_COLUMNS))
                       for d in dead_letters]
            _savepoint(db, lambda: db.executemany(_INSERT_DEAD, letters),
                       lambda _: db.executemany(_INSERT_DEAD, map(_storable, letters)))
            db.executemany(
                "INSERT INTO stage_state (stage, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT(stage, key) DO UPDATE SET value = excluded.value",
                [change for change in state if change[2] is not None])
            db.executemany("DELETE FROM stage_state WHERE stage = ? AND key = ?",
                           [(stage, key) for stage, key, text in state if text is None])
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
        self._held(dead_letters)

    def _insert_rows(self, rows: Sequence[tuple[Any, ...]],
                     dead_letters: Sequence[DeadLetter]) -> None:
        """Insert the accepted events. Validation keeps out what SQLite cannot store, but
        should a row hold such a value, it must not roll back its batch on every run: the
        rows are then inserted one by one, and each that fails moves from ``rows`` to
        ``dead_letters`` (stage ``sink``, the error as reason; both lists, changed in place,
        so that the caller's counts stay true)."""
        db = self.connection

        def one_by_one(error: BaseException) -> None:
            if not isinstance(rows, list) or not isinstance(dead_letters, list):
                raise error  # nothing to report the row through
            kept = []
            for row in rows:
                try:
                    db.execute(self._insert_event, row)
                except _UNSTORABLE as exc:
                    dead_letters.append(DeadLetter(
                        _printable(self.rows, row), f"cannot be stored: {type(exc).__name__}: "
                        f"{exc}", "sink", event_id=str(row[self.rows.id_index])))
                else:
                    kept.append(row)
            rows[:] = kept

        _savepoint(db, lambda: db.executemany(self._insert_event, rows), one_by_one)

    def record_run(self, started_at: float, report: dict[str, Any]) -> None:
        self.connection.execute(
            "INSERT OR REPLACE INTO runs (run_id, started_at, finished_at, report) "
            "VALUES (?, ?, ?, ?)",
            (self.run_id, started_at, time.time(), json.dumps(report)),
        )

    #: The lock this sink's run holds on the database (:meth:`lock_writer`).
    _writer: WriterLock | None = None

    def lock_writer(self, on_wait: Callable[[str], None] | None = None) -> None:
        """Become the one writing run of this database (waiting for another, saying so with
        ``on_wait``) until :meth:`close`."""
        if self._writer is None:
            self._writer = WriterLock(self.path, on_wait)

    def close(self) -> None:
        self.connection.close()
        if self._writer is not None:
            self._writer.release()
            self._writer = None


_INSERT_DEAD = ("INSERT INTO dead_letters (run_id, created_at, " + ", ".join(_DEAD_COLUMNS)
                + ") VALUES (?, ?, " + ", ".join("?" for _ in _DEAD_COLUMNS) + ")")

#: What binding a value SQLite cannot store raises (not a locked or full database).
_UNSTORABLE = (OverflowError, UnicodeError, ValueError, TypeError, sqlite3.InterfaceError,
               sqlite3.ProgrammingError, sqlite3.DataError, sqlite3.IntegrityError)


def _savepoint(db: sqlite3.Connection, write: Callable[[], Any],
               instead: Callable[[BaseException], Any]) -> None:
    """``write()``; if it fails on a value SQLite cannot store, undo what it did and run
    ``instead(error)`` (inside the caller's transaction)."""
    db.execute("SAVEPOINT unstorable")
    try:
        write()
    except _UNSTORABLE as error:
        db.execute("ROLLBACK TO unstorable")
        instead(error)
    db.execute("RELEASE unstorable")


def _storable(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """``values`` made storable: text with lone surrogates escaped, a huge int as text."""
    return tuple(
        value.encode("utf-8", "backslashreplace").decode("utf-8") if type(value) is str
        else str(value) if type(value) is int and not -(1 << 63) <= value < 1 << 63
        else value for value in values)


def _printable(rows: Rows, row: tuple[Any, ...]) -> str:
    """The event of a row that could not be stored, as text that can (for its dead letter)."""
    try:
        text = rows.json_line(row)
    except (TypeError, ValueError):
        text = repr(row)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class WriterLock:
    """One writing run (``hookline run`` or ``replay``) per database at a time.

    Each batch is one transaction, but a run also decides from what it loaded when it started
    (the stages' state), so two runs writing into one database at once would each commit
    state computed without the other's events, and one's updates would be lost. A run holds
    this lock, an advisory lock on ``<database>.lock`` that the operating system releases when
    the process ends however it ends (``kill -9`` included); a second run waits for it, and
    ``on_wait`` tells the user so. Readers (``hookline runs``, workers) take no lock.
    """

    def __init__(self, path: str, on_wait: Callable[[str], None] | None = None) -> None:
        self.path = f"{path}.lock"
        self._file: Any = None
        if path == ":memory:" or path.startswith("file:"):
            return
        try:
            handle = open(self.path, "a+")  # noqa: SIM115 - held until release()
        except OSError:  # no right to create it next to the database: run without it
            return
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            if on_wait is not None:
                on_wait(f"another run is writing into {path} ({holder}); waiting for it "
                        "to finish")
            _lock(handle)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            _unlock(self._file)
            self._file.close()
            self._file = None


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(handle: Any) -> bool:
        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _lock(handle: Any) -> None:
        while not _try_lock(handle):
            time.sleep(0.2)

    def _unlock(handle: Any) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(handle: Any) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _lock(handle: Any) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)

    def _unlock(handle: Any) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def stored_ids(connection: sqlite3.Connection, event_ids: Sequence[str], *,
               letters: bool = True) -> set[str]:
    """Which of ``event_ids`` are in ``events`` or, with ``letters``, on a dead letter a stage
    wrote (none when the tables do not exist yet): the events the stages have seen."""
    found: set[str] = set()
    query = "SELECT event_id FROM events WHERE event_id IN ({marks})"
    if letters:
        query += " UNION ALL SELECT event_id FROM dead_letters WHERE event_id IN ({marks})"
    try:
        for start in range(0, len(event_ids), 400):
            chunk = list(event_ids[start:start + 400])
            marks = ",".join("?" * len(chunk))
            found.update(row[0] for row in connection.execute(
                query.format(marks=marks), chunk * 2 if letters else chunk))
    except sqlite3.OperationalError:  # no such table: nothing stored
        pass
    return found


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
