"""The SQLite sink, the embedded default (``--db hookline.db``, ``--db sqlite:///path``).

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
import os
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from .._schema import Event
from ..aggregates import AGGREGATE_TABLES, create_statement, kind_statement, upsert_statement
from ..errors import UsageError
from ..fields import Boolean, Field, Integer, List, Nested, Number, Timestamp
from ..fields import Mapping as MappingField
from ..sinks import DeadLetter, Rows, Sink, SinkBatch, SinkReader, StoredDeadLetter, mask_url
from ._sql import DEAD_COLUMNS, Dialect, History

__all__ = ["DeadLetter", "Rows", "SQLiteSink", "WriterLock", "connect", "path_of", "read_state",
           "stored_ids"]

#: ``connect`` of sqlite3's implementation module, not the ``sqlite3.connect`` attribute a
#: plugin may have patched (to an in-memory database, say) before this module was imported:
#: such a patch does not redirect a run's writes.
connect = sqlite3.dbapi2.connect

# CPython 3.10 and 3.11 bind a None parameter through sqlite3's adaptation protocol, whose
# lookup of ``__adapt__`` on the protocol type raises (and words) an AttributeError that is
# then cleared: about 0.35 us per None, two or three per row of a typical schema. An adapter
# registered for NoneType is found by one dict lookup instead; ``{}.get(None)`` is None, so
# None is still stored as NULL. From 3.12 that lookup no longer raises, and the default is
# the quicker; a NoneType adapter the process registered already is left as it is.
if sys.version_info < (3, 12) and (type(None), sqlite3.PrepareProtocol) not in sqlite3.adapters:
    _none: dict[None, None] = {}
    sqlite3.register_adapter(type(None), _none.get)


def _starts_with(column: str, prefix: str) -> tuple[str, list[Any]]:
    return f"substr({column}, 1, ?) = ?", [len(prefix), prefix]


def _report(text: str | None) -> dict[str, Any] | None:
    report: dict[str, Any] | None = json.loads(text) if text else None
    return report


#: How SQLite words what :class:`~hookline._sinks._sql.History` asks (times are stored as
#: seconds since the epoch, reports as JSON text; ``LIMIT -1`` is no limit).
_DIALECT = Dialect(
    mark="?", starts_with=_starts_with, contains="instr(lower({column}), lower(?)) > 0",
    epoch="{column}", no_limit=-1, newest_first="started_at DESC, rowid DESC",
    missing_table=(sqlite3.OperationalError,), report=_report)


def _sql_type(field: Field[Any]) -> str:
    if isinstance(field, (Integer, Timestamp, Boolean)):
        return "INTEGER"
    if isinstance(field, Number):
        return "REAL"
    if isinstance(field, (List, MappingField, Nested)):
        return "TEXT"  # JSON
    return "TEXT"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def path_of(url: str) -> str:
    """The file of a SQLite ``--db``: a plain path as it is, ``sqlite:///path`` its path
    (``sqlite:///out.db`` is relative, ``sqlite:////srv/out.db`` absolute; a subclass offered
    for another scheme reads its URLs alike)."""
    found = _URL.match(url)
    if found is None:
        return url
    if not found["path"].startswith("/") or found["path"] == "/":
        raise UsageError(f"--db {mask_url(url)}: write a SQLite URL as {found['scheme']}:///path "
                         "(three slashes, then the path), or give the path alone")
    return found["path"][1:]


_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<path>.*)", re.DOTALL)


#: What to do about the database file, by what SQLite said about it.
_ADVICE = (
    (("readonly", "read-only"), "make the file writable (and its folder, where SQLite keeps "
     "its -wal and -shm files), or give --db a path you can write to"),
    (("not a database", "malformed", "disk image", "file is encrypted"),
     "the file is not a SQLite database or is damaged: move it aside (keep it to inspect) and "
     "run again to start a new database, or give another --db"),
    (("unable to open", "cannot open"), "check that its folder exists and that you may write "
     "there, or give another --db"),
    (("full",), "free some disk space, then run again: the run resumes after its last commit"),
    (("locked", "busy"), "another process holds the database: wait for it, or use another --db"),
)


class SQLiteSink(History, Sink):
    """Writes batches to one SQLite database (WAL mode), each in one transaction."""

    database_errors: ClassVar[tuple[type[BaseException], ...]] = (sqlite3.Error,)
    dialect = _DIALECT

    def __init__(self, url: str, event_class: type[Event], *, run_id: str = "") -> None:
        super().__init__(url, event_class, run_id=run_id)
        self.path = self.path_for(url)
        self.connection = connect(self.path, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.execute("PRAGMA busy_timeout=10000")
        self._fields = self.rows.fields
        self._create_tables()
        columns = ", ".join(_quote(name) for name, _ in self._fields)
        marks = ", ".join("?" for _ in self._fields)
        self._insert_event = f"INSERT INTO events ({columns}) VALUES ({marks})"
        self._by_kind = kind_statement(self.rows.names)
        self._tables = set(AGGREGATE_TABLES)  # aggregation tables that exist

    @classmethod
    def advice(cls, problem: str) -> str:
        """The fix for what SQLite said about the file."""
        lowered = problem.lower()
        return next((text for words, text in _ADVICE if any(word in lowered for word in words)),
                    "check the file, or give another --db")

    @classmethod
    def path_for(cls, url: str) -> str:
        """The database file of ``url`` (:func:`path_of`; a subclass may map URLs otherwise)."""
        return path_of(url)

    @classmethod
    def exists(cls, url: str) -> bool:
        return os.path.isfile(cls.path_for(url))

    @classmethod
    def reader(cls, url: str) -> SinkReader:
        return _Reader(cls.path_for(url))

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

    def check_writable(self) -> None:
        """Try a write and undo it: a database the run cannot write to (a read-only file, say)
        stops the run now, before any input is read, not at the first commit."""
        connection = self.connection
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute(f"PRAGMA user_version = {version}")
        finally:
            connection.execute("ROLLBACK")

    def checkpoint(self, key: str) -> tuple[int, int]:
        row = self.connection.execute(
            "SELECT offset, line FROM checkpoints WHERE source = ?", (key,)
        ).fetchone()
        return (row[0], row[1]) if row else (0, 0)

    def load_state(self, stages: Iterable[str]) -> dict[str, dict[str, Any]]:
        return read_state(self.connection, stages)

    def dead_letters(self, after_id: int, limit: int) -> list[StoredDeadLetter]:
        return [StoredDeadLetter(*row) for row in self.connection.execute(
            "SELECT id, payload, line, source, replays, event_id FROM dead_letters WHERE id > ? "
            "ORDER BY id LIMIT ?", (after_id, limit))]

    def last_dead_letter_id(self) -> int:
        [(last,)] = self.connection.execute("SELECT coalesce(max(id), 0) FROM dead_letters")
        return int(last)

    def existing_ids(self, event_ids: Sequence[str]) -> set[str]:
        return stored_ids(self.connection, event_ids, letters=False)

    #: The event ids on the dead letters stages wrote, held while there are at most
    #: ``_HOLD`` of them (looked up in memory, not with a second query per batch); None: not
    #: read yet; False: too many, asked of the database.
    _letter_ids: set[str] | bool | None = None
    _HOLD = 100_000

    def seen_ids(self, event_ids: Sequence[str]) -> set[str]:
        """See :meth:`Sink.seen_ids`. This sink's run is the one writer (:meth:`lock_writer`),
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

    def commit(self, batch: SinkBatch) -> None:
        """See :meth:`Sink.commit`: one ``BEGIN IMMEDIATE`` transaction. ``agg_by_kind`` is
        updated by one ``GROUP BY`` over the rows just inserted."""
        db = self.connection
        rows, dead_letters = batch.rows, batch.dead_letters
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("DELETE FROM dead_letters WHERE id = ?",
                           [(i,) for i in batch.replayed])
            if rows:
                [(last,)] = db.execute("SELECT coalesce(max(rowid), 0) FROM events")
                self._insert_rows(rows, dead_letters)
                if self._by_kind is not None:
                    db.execute(self._by_kind, (last,))
            for aggregation in batch.aggregations:
                if aggregation.table not in self._tables:
                    db.execute(create_statement(aggregation))
                    self._tables.add(aggregation.table)
                db.executemany(upsert_statement(aggregation), list(aggregation.rows()))
            letters = [(self.run_id, now, *(getattr(d, c) for c in DEAD_COLUMNS))
                       for d in dead_letters]
            _savepoint(db, lambda: db.executemany(_INSERT_DEAD, letters),
                       lambda _: db.executemany(_INSERT_DEAD, map(_storable, letters)))
            state = batch.state
            db.executemany(
                "INSERT INTO stage_state (stage, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT(stage, key) DO UPDATE SET value = excluded.value",
                [change for change in state if change[2] is not None])
            db.executemany("DELETE FROM stage_state WHERE stage = ? AND key = ?",
                           [(stage, key) for stage, key, text in state if text is None])
            db.executemany(
                "INSERT INTO checkpoints (source, offset, line, updated_at) VALUES (?, ?, 0, ?) "
                "ON CONFLICT(source) DO UPDATE SET offset = excluded.offset, "
                "updated_at = excluded.updated_at",
                [(key, size, now) for key, size in batch.outputs])
            if batch.checkpoint is not None:
                db.execute(
                    "INSERT INTO checkpoints (source, offset, line, updated_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT(source) DO UPDATE SET "
                    "offset = excluded.offset, line = excluded.line, "
                    "updated_at = excluded.updated_at",
                    (*batch.checkpoint, now),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._held(dead_letters)

    def _insert_rows(self, rows: list[tuple[Any, ...]], dead_letters: list[DeadLetter]) -> None:
        """Insert the accepted events. Validation keeps out what SQLite cannot store, but
        should a row hold such a value, it must not roll back its batch on every run: the
        rows are then inserted one by one, and each that fails moves from ``rows`` to
        ``dead_letters`` (stage ``sink``, the error as reason; both lists, changed in place,
        so that the caller's counts stay true)."""
        db = self.connection

        def one_by_one(error: BaseException) -> None:
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

    def record_run(self, started_at: float, report: Mapping[str, Any]) -> None:
        self.connection.execute(
            "INSERT OR REPLACE INTO runs (run_id, started_at, finished_at, report) "
            "VALUES (?, ?, ?, ?)",
            (self.run_id, started_at, time.time(), json.dumps(report)),
        )

    def read_table(self, name: str) -> list[dict[str, Any]]:
        cursor = self.connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        if cursor.fetchone() is None:
            return []
        cursor = self.connection.execute(f"SELECT * FROM {_quote(name)}")
        columns = [column[0] for column in cursor.description]
        return [dict(zip(columns, row)) for row in cursor]

    def checkpoint_keys(self) -> list[str]:
        return [key for (key,) in self.connection.execute("SELECT source FROM checkpoints")]

    def reset(self, tables: Sequence[str]) -> None:
        """See :meth:`Sink.reset`: one transaction; an aggregation table that does not exist
        is skipped."""
        db = self.connection
        present = {name for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        names = ["events", "dead_letters", *AGGREGATE_TABLES, *tables, "stage_state",
                 "checkpoints"]
        db.execute("BEGIN IMMEDIATE")
        try:
            for name in dict.fromkeys(names):
                if name in present:
                    db.execute(f"DELETE FROM {_quote(name)}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._letter_ids = None

    #: The lock this sink's run holds on the database (:meth:`lock_writer`).
    _writer: WriterLock | None = None

    def lock_writer(self, on_wait: Callable[[str], None] | None = None) -> None:
        """Become the one writing run of this database (waiting for another, saying so with
        ``on_wait``) until :meth:`close` (see :class:`WriterLock`)."""
        if self._writer is None:
            self._writer = WriterLock(self.path, on_wait)

    def close(self) -> None:
        self.connection.close()
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class _Reader(History):
    """A read-only connection to a SQLite database that a run may be writing (WAL mode lets
    it read the last commit); nothing to read while the file does not exist."""

    dialect = _DIALECT

    def __init__(self, path: str) -> None:
        self.connection = (connect(f"file:{path}?mode=ro", uri=True)  # as bound before plugins
                           if os.path.exists(path) else None)

    def load_state(self, stages: Iterable[str]) -> dict[str, dict[str, Any]]:
        if self.connection is None:
            return {stage: {} for stage in stages}
        return read_state(self.connection, stages)

    def seen_ids(self, event_ids: Sequence[str]) -> set[str]:
        return set() if self.connection is None else stored_ids(self.connection, event_ids)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


_INSERT_DEAD = ("INSERT INTO dead_letters (run_id, created_at, " + ", ".join(DEAD_COLUMNS)
                + ") VALUES (?, ?, " + ", ".join("?" for _ in DEAD_COLUMNS) + ")")

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
