"""The PostgreSQL sink (``--db postgresql://user:password@host:port/dbname``), built in with
``pip install "hookline[postgres]"`` (psycopg 3).

The tables and their columns are SQLite's (see :mod:`hookline._sinks.sqlite`), with
PostgreSQL's types: JSON values (lists, mappings, nested events, stage state, run reports)
are ``jsonb``, timestamps (``Timestamp`` fields, when a dead letter was written, when a run
started and ended) ``timestamptz``.

Exactly once, as in SQLite: a batch's events, dead letters, aggregate deltas, state changes
and checkpoint are one transaction. Events and dead letters go in with ``COPY``; aggregates
are merged into the stored totals with ``INSERT … ON CONFLICT DO UPDATE``.

Concurrency: a run decides from the state it loaded when it started, so two runs writing at
once would each commit state computed without the other's events. A run therefore holds a
session advisory lock on the database for its whole length (the server releases it when the
connection ends, however the process ends): a second run, whatever its input, waits for the
first, says so, and then starts from what the first committed. Two runs of one input are kept
apart by the same lock, and the second resumes after the first's checkpoint: nothing is
inserted twice. Readers (the process executor's workers) take no lock.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from .._schema import Event
from ..aggregates import AGGREGATE_TABLES, BUILTIN_COMBINE, Aggregation
from ..fields import Boolean, Field, Integer, List, Nested, Number, Timestamp
from ..fields import Mapping as MappingField
from ..sinks import DeadLetter, Sink, SinkBatch, SinkReader, StoredDeadLetter, mask_url
from ._sql import DEAD_COLUMNS, Dialect, History

__all__ = ["PostgresReader", "PostgresSink"]

#: The first key of every advisory lock hookline takes (``pg_advisory_lock(int, int)``), so
#: that its locks do not collide with an application's: ``hkl`` in ASCII.
_LOCKS = 0x686B6C
_WRITER = 1  # second key: the one writing run of the database
_SCHEMA = 2  # second key: creating or altering the tables (a transaction lock)

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_MS = datetime.timedelta(milliseconds=1)

#: How a stored aggregate column takes a new partial's value (``excluded``): the SQL of
#: :data:`hookline.aggregates.COMBINE` in PostgreSQL's words (LEAST and GREATEST ignore
#: NULLs, as the coalesce pairs do in SQLite).
_COMBINE = {
    "sum": "{t}.{c} + excluded.{c}",
    "min": "LEAST({t}.{c}, excluded.{c})",
    "max": "GREATEST({t}.{c}, excluded.{c})",
    "last": "excluded.{c}",
}

#: What the database said -> what the user can do about it (the first that matches).
_ADVICE = (
    (("connection refused", "could not connect", "timeout expired", "could not translate host",
      "no route to host", "network is unreachable", "server closed the connection"),
     "is the PostgreSQL server running and reachable? check the host and port in --db"),
    (("password authentication failed", "no password supplied", "authentication failed"),
     "check the user and the password: in the URL (postgresql://user:password@host/db), in "
     "PGPASSWORD or in ~/.pgpass"),
    (("permission denied", "must be owner"), "grant this user the right to create tables in "
     "the database's schema and to write them, or use a user who has it"),
    (("read-only",), "the server accepts no writes (a standby?): give the primary's URL"),
    (("too many connections", "remaining connection slots"),
     "the server has no free connection: wait, or raise its max_connections"),
    (("no space left", "disk full"), "free some disk space on the server, then run again: "
     "the run resumes after its last commit"),
    (("invalid dsn", "invalid connection option", "invalid uri", "invalid integer value"),
     "write --db as postgresql://user:password@host:port/dbname"),
)
_MISSING_DATABASE = re.compile(r'database "(?P<name>[^"]*)" does not exist')
_MISSING_ROLE = re.compile(r'role "(?P<name>[^"]*)" does not exist')


def _column_type(field: Field[Any]) -> str:
    if isinstance(field, Timestamp):
        return "timestamptz"
    if isinstance(field, Boolean):
        return "boolean"
    if isinstance(field, Integer):
        return "bigint"
    if isinstance(field, Number):
        return "double precision"
    if isinstance(field, (List, MappingField, Nested)):
        return "jsonb"
    return "text"


def _timestamp(ms: int | None) -> datetime.datetime | None:
    """Epoch milliseconds as the ``timestamptz`` they stand for (exact: integer arithmetic)."""
    return None if ms is None else _EPOCH + ms * _MS


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def connect(url: str, application_name: str) -> psycopg.Connection[Any]:
    """An autocommit connection to ``url`` (libpq reads a password missing from the URL from
    ``PGPASSWORD`` or ``~/.pgpass``); a 10 s connect timeout unless the URL sets one."""
    options: dict[str, Any] = {"autocommit": True, "application_name": application_name}
    if "connect_timeout" not in conninfo_to_dict(url):
        options["connect_timeout"] = 10
    return psycopg.connect(url, **options)


def read_state(connection: psycopg.Connection[Any], stages: Iterable[str]
               ) -> dict[str, dict[str, Any]]:
    """``{stage: {key: value}}`` committed for ``stages`` (each present, empty when it has
    none or before the table exists): the one reader of ``stage_state``."""
    state: dict[str, dict[str, Any]] = {stage: {} for stage in stages}
    if not state:
        return state
    try:
        rows = connection.execute("SELECT stage, key, value FROM stage_state "
                                  "WHERE stage = ANY(%s)", (list(state),)).fetchall()
    except psycopg.errors.UndefinedTable:
        return state
    for stage, key, value in rows:  # jsonb arrives decoded
        state[stage][key] = value
    return state


def stored_ids(connection: psycopg.Connection[Any], event_ids: Sequence[str], *,
               letters: bool) -> set[str]:
    """Which of ``event_ids`` are in ``events`` or, with ``letters``, on a dead letter a
    stage wrote; none before the tables exist. One round trip."""
    if not event_ids:
        return set()
    query = "SELECT event_id FROM events WHERE event_id = ANY(%(ids)s)"
    if letters:
        query += " UNION ALL SELECT event_id FROM dead_letters WHERE event_id = ANY(%(ids)s)"
    try:
        rows = connection.execute(query, {"ids": list(event_ids)}).fetchall()
    except psycopg.errors.UndefinedTable:
        return set()
    return {event_id for (event_id,) in rows}


def _starts_with(column: str, prefix: str) -> tuple[str, list[Any]]:
    return f"starts_with({column}, %s)", [prefix]


#: How PostgreSQL words what :class:`~hookline._sinks._sql.History` asks (jsonb arrives
#: decoded; ``LIMIT NULL`` is no limit; NULLs sort first in ``DESC`` unless told otherwise).
_DIALECT = Dialect(
    mark="%s", starts_with=_starts_with, contains="strpos(lower({column}), lower(%s)) > 0",
    epoch="extract(epoch FROM {column})::float8", no_limit=None,
    newest_first="started_at DESC NULLS LAST, run_id DESC",
    missing_table=(psycopg.errors.UndefinedTable,), report=lambda report: report)


class _Connected(History):
    """What the sink and its reader read alike on their connection: committed state, seen
    ids, and (from :class:`History`) the runs and dead letters."""

    dialect = _DIALECT
    connection: psycopg.Connection[Any]

    def load_state(self, stages: Iterable[str]) -> dict[str, dict[str, Any]]:
        return read_state(self.connection, stages)

    def seen_ids(self, event_ids: Sequence[str]) -> set[str]:
        return stored_ids(self.connection, event_ids, letters=True)


class PostgresReader(_Connected):
    """What a worker of the process executor reads: committed state and seen ids; what
    ``hookline runs`` and ``hookline dead-letters`` read."""

    def __init__(self, url: str) -> None:
        self.connection = connect(url, f"hookline reader, pid {os.getpid()}")

    def close(self) -> None:
        self.connection.close()


class PostgresSink(_Connected, Sink):
    """Writes batches into one PostgreSQL database, each in one transaction."""

    database_errors: ClassVar[tuple[type[BaseException], ...]] = (psycopg.Error,)

    def __init__(self, url: str, event_class: type[Event], *, run_id: str = "") -> None:
        super().__init__(url, event_class, run_id=run_id)
        self._name = f"hookline run {run_id or '-'}, pid {os.getpid()} on {socket.gethostname()}"
        self.connection = connect(url, self._name)
        self._locked = False
        try:
            self._create_tables()
        except BaseException:
            self.connection.close()
            raise
        names = self.rows.names
        self._copy_events = sql.SQL("COPY events ({}) FROM STDIN").format(
            sql.SQL(", ").join(map(sql.Identifier, names)))
        #: Where the timestamp columns are in a row (epoch ms in, timestamptz out).
        self._timestamps = [at for at, (_, field) in enumerate(self.rows.fields)
                            if isinstance(field, Timestamp)]
        self._kind_at = names.index("kind") if "kind" in names else None
        self._amount_at = names.index("amount") if "amount" in names else None
        self._score_at = names.index("score") if "score" in names else None
        #: table -> {column: SQL type} of the aggregate tables known to exist.
        self._aggregate_types: dict[str, dict[str, str]] = {}

    @classmethod
    def advice(cls, problem: str) -> str:
        missing = _MISSING_DATABASE.search(problem)
        if missing is not None:
            return (f"create it first (createdb {missing['name']}, or CREATE DATABASE "
                    f"\"{missing['name']}\" as a user who may), or name another one in --db")
        missing = _MISSING_ROLE.search(problem)
        if missing is not None:
            return f"check the user name in --db, or create the role {missing['name']}"
        lowered = problem.lower()
        for words, advice in _ADVICE:
            if any(word in lowered for word in words):
                return advice
        return "check the server and the --db URL (postgresql://user:password@host:port/db)"

    @classmethod
    def reader(cls, url: str) -> SinkReader:
        return PostgresReader(url)

    # -- the tables --

    def _create_tables(self) -> None:
        """Create what is missing, one run at a time (two runs creating the same table at
        once would collide in the catalog)."""
        with self.connection.transaction():
            db = self.connection
            db.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCKS, _SCHEMA))
            columns = sql.SQL(", ").join(
                sql.SQL("{} {}{}").format(
                    sql.Identifier(name), sql.SQL(_column_type(field)),
                    sql.SQL(" PRIMARY KEY" if name == "event_id" else ""))
                for name, field in self.rows.fields)
            db.execute(sql.SQL("CREATE TABLE IF NOT EXISTS events ({})").format(columns))
            present = {name for (name,) in db.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = 'events'")}
            for name, field in self.rows.fields:  # a plugin installed since added a field
                if name not in present:
                    db.execute(sql.SQL("ALTER TABLE events ADD COLUMN {} {}").format(
                        sql.Identifier(name), sql.SQL(_column_type(field))))
            db.execute(
                "CREATE TABLE IF NOT EXISTS dead_letters (id bigint GENERATED ALWAYS AS "
                "IDENTITY PRIMARY KEY, run_id text, payload text, reason text NOT NULL, "
                "stage text, error text, line bigint, source text, plugin text, "
                "distribution text, version text, created_at timestamptz, "
                "replays integer NOT NULL DEFAULT 0, event_id text)")
            db.execute("CREATE INDEX IF NOT EXISTS dead_letters_event_id "
                       "ON dead_letters (event_id)")
            for table, key in AGGREGATE_TABLES.items():
                db.execute(sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ({} text PRIMARY KEY, count bigint NOT NULL, "
                    "amount_sum double precision NOT NULL, amount_min double precision, "
                    "amount_max double precision, score_sum double precision NOT NULL, "
                    "score_count bigint NOT NULL, score_mean double precision GENERATED ALWAYS "
                    "AS (CASE WHEN score_count > 0 THEN score_sum / score_count END) STORED)"
                ).format(sql.Identifier(table), sql.Identifier(key)))
            db.execute('CREATE TABLE IF NOT EXISTS checkpoints (source text PRIMARY KEY, '
                       '"offset" bigint NOT NULL, line bigint NOT NULL, updated_at timestamptz)')
            db.execute("CREATE TABLE IF NOT EXISTS runs (run_id text PRIMARY KEY, "
                       "started_at timestamptz, finished_at timestamptz, report jsonb)")
            db.execute("CREATE TABLE IF NOT EXISTS stage_state (stage text NOT NULL, "
                       "key text NOT NULL, value jsonb NOT NULL, PRIMARY KEY (stage, key))")

    def _aggregate_table(self, aggregation: Aggregation, rows: list[tuple[Any, ...]]
                         ) -> dict[str, str]:
        """``{column: SQL type}`` of an aggregation's table, made on its first use with the
        types of the values in ``rows`` (SQLite needs none; PostgreSQL does)."""
        table = aggregation.table
        known = self._aggregate_types.get(table)
        if known is not None:
            return known
        key = aggregation.columns[0]
        types = [_value_type([row[at] for row in rows], key=at == 0)
                 for at in range(len(aggregation.columns))]
        with self.connection.transaction():  # a savepoint inside the batch's transaction
            self.connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCKS, _SCHEMA))
            self.connection.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                sql.Identifier(table), sql.SQL(", ").join(
                    sql.SQL("{} {}{}").format(sql.Identifier(column), sql.SQL(kind),
                                              sql.SQL(" PRIMARY KEY" if column == key else ""))
                    for column, kind in zip(aggregation.columns, types))))
        found = dict(self.connection.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (sql.Identifier(table).as_string(self.connection),)).fetchall())
        self._aggregate_types[table] = found
        return found

    # -- reading --

    def check_writable(self) -> None:
        """A write undone: a user without the right to insert, or a read-only server, stops
        the run now, before any input is read."""
        with self.connection.transaction(force_rollback=True):
            self.connection.execute("INSERT INTO runs (run_id) VALUES (%s)",
                                    (f"{self.run_id}-check",))

    def checkpoint(self, key: str) -> tuple[int, int]:
        row = self.connection.execute(
            'SELECT "offset", line FROM checkpoints WHERE source = %s', (key,)).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def existing_ids(self, event_ids: Sequence[str]) -> set[str]:
        return stored_ids(self.connection, event_ids, letters=False)

    def dead_letters(self, after_id: int, limit: int) -> list[StoredDeadLetter]:
        rows = self.connection.execute(
            "SELECT id, payload, line, source, replays, event_id FROM dead_letters WHERE id > %s "
            "ORDER BY id LIMIT %s", (after_id, limit)).fetchall()
        return [StoredDeadLetter(*row) for row in rows]

    def last_dead_letter_id(self) -> int:
        row = self.connection.execute("SELECT coalesce(max(id), 0) FROM dead_letters").fetchone()
        return int(row[0]) if row else 0

    def checkpoint_keys(self) -> list[str]:
        return [key for (key,) in self.connection.execute("SELECT source FROM checkpoints")]

    def reset(self, tables: Sequence[str]) -> None:
        """See :meth:`Sink.reset`: one transaction; an aggregation table that does not exist
        is skipped."""
        names = ["events", "dead_letters", *AGGREGATE_TABLES, *tables, "stage_state",
                 "checkpoints"]
        with self.connection.transaction():
            present = {name for (name,) in self.connection.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()")}
            for name in dict.fromkeys(names):
                if name in present:
                    self.connection.execute(sql.SQL("DELETE FROM {}").format(
                        sql.Identifier(name)))

    def read_table(self, name: str) -> list[dict[str, Any]]:
        """Every row of ``name`` as a dict, with PostgreSQL's types (jsonb decoded,
        timestamptz as aware datetimes); ``[]`` when there is no such table."""
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(name)))
                columns = [column.name for column in cursor.description or ()]
                return [dict(zip(columns, row)) for row in cursor.fetchall()]
        except psycopg.errors.UndefinedTable:
            return []

    # -- locking --

    def lock_writer(self, on_wait: Callable[[str], None] | None = None) -> None:
        """Become the one writing run of this database until :meth:`close` (see the module
        docs), waiting for another, and saying so with ``on_wait``, naming who holds it."""
        if self._locked:
            return
        db = self.connection
        [(got,)] = db.execute("SELECT pg_try_advisory_lock(%s, %s)", (_LOCKS, _WRITER))
        if not got:
            if on_wait is not None:
                on_wait(f"another run is writing into {mask_url(self.url)} "
                        f"({self._holder()}); waiting for it to finish")
            db.execute("SELECT pg_advisory_lock(%s, %s)", (_LOCKS, _WRITER))
        self._locked = True

    def _holder(self) -> str:
        """Who holds the writer lock, as the server knows it (its application name)."""
        row = self.connection.execute(
            "SELECT a.application_name, a.client_addr, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
            "AND l.granted AND l.classid = %s AND l.objid = %s AND l.objsubid = 2 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (_LOCKS, _WRITER)).fetchone()
        if row is None:
            return "another process"
        name, address, since = row
        where = f" from {address}" if address is not None else ""
        started = f", connected at {since:%Y-%m-%d %H:%M:%S %Z}" if since is not None else ""
        return f"{name or 'a client'}{where}{started}"

    def lock_input(self, key: str, on_wait: Callable[[str], None] | None = None) -> None:
        """Runs are kept apart by :meth:`lock_writer`, which also keeps two runs of one input
        apart; this names the input in the connection's application name, so that a run
        waiting for this one is told which input it is reading."""
        self.connection.execute("SELECT set_config('application_name', %s, false)",
                                (_reading(self.run_id, key),))

    # -- writing --

    def commit(self, batch: SinkBatch) -> None:
        known = dict(self._aggregate_types)
        try:
            with self.connection.transaction():
                self._write(batch)
        except BaseException:
            self._aggregate_types = known  # a table made in the rolled-back batch is gone
            raise

    def _write(self, batch: SinkBatch) -> None:
        """Everything :meth:`commit` writes, inside its transaction."""
        db = self.connection
        now = _now()
        if batch.replayed:
            db.execute("DELETE FROM dead_letters WHERE id = ANY(%s)", (list(batch.replayed),))
        if batch.rows:
            self._insert_rows(batch.rows, batch.dead_letters)
            self._add_by_kind(batch.rows)
        for aggregation in batch.aggregations:
            self._merge(aggregation)
        if batch.dead_letters:
            self._insert_dead_letters(batch.dead_letters, now)
        upserts = [change for change in batch.state if change[2] is not None]
        for round_ in _rounds(upserts, 2):
            stages, keys, values = zip(*round_)
            db.execute(
                "INSERT INTO stage_state (stage, key, value) SELECT * FROM "
                "unnest(%s::text[], %s::text[], %s::text[]::jsonb[]) "
                "ON CONFLICT (stage, key) DO UPDATE SET value = excluded.value",
                (list(stages), list(keys), list(values)))
        deleted = [(stage, key) for stage, key, text in batch.state if text is None]
        if deleted:
            stages, keys = zip(*deleted)
            db.execute("DELETE FROM stage_state s USING unnest(%s::text[], %s::text[]) "
                       "AS d(stage, key) WHERE s.stage = d.stage AND s.key = d.key",
                       (list(stages), list(keys)))
        checkpoints = [(key, size, 0) for key, size in batch.outputs]
        if batch.checkpoint is not None:
            checkpoints.append((batch.checkpoint.key, batch.checkpoint.offset,
                                batch.checkpoint.line))
        for key, offset, line in checkpoints:
            db.execute(
                'INSERT INTO checkpoints (source, "offset", line, updated_at) '
                "VALUES (%s, %s, %s, %s) ON CONFLICT (source) DO UPDATE SET "
                '"offset" = excluded."offset", line = excluded.line, '
                "updated_at = excluded.updated_at", (key, offset, line, now))

    def _insert_rows(self, rows: list[tuple[Any, ...]], dead_letters: list[DeadLetter]) -> None:
        """COPY the accepted events. Should one hold a value PostgreSQL refuses (a NUL
        character, a timestamp past its range, a number too large), the batch must not fail
        on every run: the rows are then inserted one by one, and each that fails moves from
        ``rows`` to ``dead_letters`` (stage ``sink``, the error as reason)."""
        try:
            with self.connection.transaction():
                self._copy_rows(rows)
        except _UNSTORABLE:
            kept = []
            for row in rows:
                try:
                    with self.connection.transaction():
                        self._copy_rows([row])
                except _UNSTORABLE as exc:
                    dead_letters.append(DeadLetter(
                        _storable_text(self.rows.json_line(row)),
                        f"cannot be stored: {type(exc).__name__}: {_one_line(str(exc))}",
                        "sink", event_id=_storable_text(str(row[self.rows.id_index]))))
                else:
                    kept.append(row)
            rows[:] = kept

    def _copy_rows(self, rows: Iterable[tuple[Any, ...]]) -> None:
        with self.connection.cursor() as cursor, cursor.copy(self._copy_events) as copy:
            write = copy.write_row
            at = self._timestamps
            if not at:
                for row in rows:
                    write(row)
                return
            for row in rows:
                values = list(row)
                for index in at:
                    values[index] = _timestamp(values[index])
                write(values)

    def _add_by_kind(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Add the batch's per-kind groups to ``agg_by_kind``, as SQLite's ``GROUP BY`` over
        the batch's rows does (count, total, min and max of ``amount`` (0 when missing),
        total and count of ``score``); sums are exact (``math.fsum``), as SQLite's are."""
        kind_at = self._kind_at
        if kind_at is None:
            return
        amount_at, score_at = self._amount_at, self._score_at
        amounts: dict[str, list[float]] = {}
        scores: dict[str, list[float]] = {}
        for row in rows:
            kind = row[kind_at]
            if kind is None:  # no key to add it to (a NULL key has no row in PostgreSQL)
                continue
            amount = row[amount_at] if amount_at is not None else None
            amounts.setdefault(kind, []).append(0 if amount is None else amount)
            score = row[score_at] if score_at is not None else None
            if score is not None:
                scores.setdefault(kind, []).append(score)
        groups = [(kind, len(values), math.fsum(values), float(min(values)),
                   float(max(values)), math.fsum(scores.get(kind, ())),
                   len(scores.get(kind, ())))
                  for kind, values in amounts.items()]
        self._upsert("agg_by_kind", ("kind", *BUILTIN_COMBINE), BUILTIN_COMBINE, groups,
                     _BUILTIN_TYPES)

    def _merge(self, aggregation: Aggregation) -> None:
        rows = [tuple(row) for row in aggregation.rows()]
        if not rows:
            return
        columns = tuple(aggregation.columns)
        if aggregation.table in AGGREGATE_TABLES:
            types = _BUILTIN_TYPES
        else:
            found = self._aggregate_table(aggregation, rows)
            types = {column: found.get(column, "text") for column in columns}
        combine = getattr(aggregation, "combine", None) or {}
        self._upsert(aggregation.table, columns,
                     {column: combine.get(column, "sum") for column in columns[1:]}, rows,
                     types)

    def _upsert(self, table: str, columns: Sequence[str], combine: Mapping[str, str],
                rows: Sequence[tuple[Any, ...]], types: Mapping[str, str]) -> None:
        """Add ``rows`` (a partial) to ``table``'s stored rows with one ``INSERT … SELECT
        FROM unnest(…) ON CONFLICT DO UPDATE`` per round: a key twice in the partials (two
        workers' rows) goes in two rounds, added in order as two statements would."""
        key = columns[0]
        target = sql.Identifier(table)
        kinds = [types.get(column, "text") for column in columns]
        arrays = sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(kind))
                                    for kind in kinds)
        statement = sql.SQL(
            "INSERT INTO {} ({}) SELECT * FROM unnest({}) ON CONFLICT ({}) ").format(
            target, sql.SQL(", ").join(map(sql.Identifier, columns)), arrays,
            sql.Identifier(key))
        if combine:
            statement += sql.SQL("DO UPDATE SET ") + sql.SQL(", ").join(
                sql.SQL("{c} = " + _COMBINE[how]).format(t=target, c=sql.Identifier(column))
                for column, how in combine.items())
        else:
            statement += sql.SQL("DO NOTHING")
        converters = [_CONVERT.get(kind, _as_is) for kind in kinds]
        for round_ in _rounds(rows, 1):
            values = [[convert(value) for value in column]
                      for convert, column in zip(converters, zip(*round_))]
            self.connection.execute(statement, values)

    def _insert_dead_letters(self, letters: Sequence[DeadLetter], now: datetime.datetime
                             ) -> None:
        """COPY the dead letters; should one hold text PostgreSQL refuses (a NUL character,
        a lone surrogate), they are written again with such characters escaped."""
        rows = [(self.run_id, now, *(getattr(letter, c) for c in DEAD_COLUMNS))
                for letter in letters]
        copy_sql = sql.SQL("COPY dead_letters (run_id, created_at, {}) FROM STDIN").format(
            sql.SQL(", ").join(map(sql.Identifier, DEAD_COLUMNS)))
        for attempt in (rows, [tuple(_storable(v) for v in row) for row in rows]):
            try:
                with self.connection.transaction(), self.connection.cursor() as cursor, \
                        cursor.copy(copy_sql) as copy:
                    for row in attempt:
                        copy.write_row(row)
                return
            except _UNSTORABLE:
                if attempt is not rows:
                    raise

    def record_run(self, started_at: float, report: Mapping[str, Any]) -> None:
        self.connection.execute(
            "INSERT INTO runs (run_id, started_at, finished_at, report) "
            "VALUES (%s, %s, %s, %s::jsonb) ON CONFLICT (run_id) DO UPDATE SET "
            "started_at = excluded.started_at, finished_at = excluded.finished_at, "
            "report = excluded.report",
            (self.run_id, datetime.datetime.fromtimestamp(started_at, datetime.timezone.utc),
             _now(), json.dumps(_without_nul(report))))

    def close(self) -> None:
        """Close the connection: the server releases the writer lock with it."""
        self.connection.close()
        self._locked = False


_BUILTIN_TYPES = {"user_id": "text", "kind": "text", "count": "bigint",
                  "amount_sum": "double precision", "amount_min": "double precision",
                  "amount_max": "double precision", "score_sum": "double precision",
                  "score_count": "bigint"}

#: What inserting a value PostgreSQL cannot store raises (client side or server side); not
#: a lost connection or a full disk.
_UNSTORABLE = (OverflowError, ValueError, TypeError, psycopg.DataError,
               psycopg.IntegrityError)


def _as_is(value: Any) -> Any:
    return value


def _float(value: Any) -> Any:
    return None if value is None else float(value)


def _int(value: Any) -> Any:
    return None if value is None else int(value)


def _json(value: Any) -> Any:
    return None if value is None else json.dumps(value)


#: Each value of an unnest array column made the array's element type (psycopg types a
#: list by its first element; ``[1, 2.5]`` must be all floats).
_CONVERT: dict[str, Callable[[Any], Any]] = {
    "double precision": _float, "bigint": _int, "boolean": _as_is, "jsonb": _json,
}


def _value_type(values: Sequence[Any], *, key: bool) -> str:
    """The column type for an aggregation's values: by the first that is not None."""
    sample = next((value for value in values if value is not None), None)
    if isinstance(sample, bool):
        return "boolean"
    if isinstance(sample, int) and key:
        return "bigint"
    if isinstance(sample, (int, float)):
        return "double precision"
    if isinstance(sample, (dict, list)):
        return "jsonb"
    return "text"


def _rounds(rows: Sequence[tuple[Any, ...]], width: int) -> Iterator[list[tuple[Any, ...]]]:
    """``rows`` in rounds where no key (the first ``width`` values) repeats: the first row
    of each key, then the second..., each round in the order of ``rows``."""
    pending = list(rows)
    while pending:
        seen: set[tuple[Any, ...]] = set()
        this: list[tuple[Any, ...]] = []
        later: list[tuple[Any, ...]] = []
        for row in pending:
            key = row[:width]
            (later if key in seen else this).append(row)
            seen.add(key)
        yield this
        pending = later


def _storable_text(text: str) -> str:
    """``text`` that PostgreSQL's text and jsonb take: NUL and lone surrogates escaped."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _storable(value: Any) -> Any:
    return _storable_text(value) if isinstance(value, str) else value


def _reading(run_id: str, key: str) -> str:
    """The application name of a run reading the input ``key``: the server keeps 63 bytes,
    so a long key keeps its end (the file name). A file's key is ``path|device|inode``: the
    path is what the user knows it by."""
    key = key.partition("|")[0] or key
    head = f"hookline run {run_id or '-'}, reading "
    room = 63 - len(head.encode())
    if len(key.encode()) > room:
        key = "..." + key.encode()[-(room - 3):].decode(errors="ignore")
    return head + key


def _without_nul(value: Any) -> Any:
    """``value`` (JSON data) with the NUL characters jsonb refuses escaped in its strings."""
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")
    if isinstance(value, Mapping):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_nul(item) for item in value]
    return value


def _one_line(text: str) -> str:
    return " ".join(text.split())
