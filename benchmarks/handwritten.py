"""The hand-written peer of ``hookline run`` in the end-to-end and PostgreSQL benchmarks.

What a team would write to do, without hookline, the work ``hookline run`` does with the three
contrib plugins at their default settings, into the same tables and columns, in SQLite or in
PostgreSQL:

- **input**: each line parsed (``NaN`` and ``Infinity`` refused: JSON has no such values) and
  checked against the event schema, the plugins' fields included; a line that fails is a dead
  letter of stage ``parse`` or ``schema`` whose reason names every bad field. Event ids
  already stored, or repeated within the batch, are set aside before any rule sees them and
  counted (as ``hookline run --duplicates count``, the default, does);
- **fraud** (hookline-fraud's defaults, its published constants): blocked currencies and
  users, the amount limit per kind in US dollars through the default rates, the velocity
  windows per user and kind in event time (late events within the tolerance put in their
  place, older ones refused), the refund larger than the user's purchases so far, and the
  ``risk`` of each accepted event; reasons worded as the rules word theirs;
- **ranking**: the control score through hookline-ranking's public functions
  (``relevance``, ``remember``, ``new_history``), ``score_model``, and the ``variants``
  column (the experiment's flag is off by default: no event is in it);
- **monitoring**: the phase timings hookline takes and hookline-monitoring reports: each phase
  that has a stage (validate and score; enrich has none, and hookline does not run it) timed
  on one event in 16, hookline's default ``sample_every`` (the lines whose number is a
  multiple of 16), two clock reads added to a latency histogram; a phase that refused the
  event is not timed;
- **output**: per-user and per-kind aggregates; the rules' and the scorer's per-user state
  (windows, balances, histories) loaded when the run starts and the keys a batch changed
  written to ``stage_state`` as JSON; every 5,000 lines one transaction with the rows, the
  dead letters, the aggregate deltas, the state and the checkpoint, so that a second run
  resumes after the last commit.

Everything but the database is the same code for both: only a :class:`Store` (open, the
stored state, the ids on the dead letters, the stored ids, the checkpoint, one batch's commit,
the run's record) differs. A ``postgresql://`` URL as DB writes with psycopg 3 into the
tables and PostgreSQL types hookline's PostgreSQL sink makes (``ts`` and the times
``timestamptz``, the JSON values ``jsonb``, ``score_mean`` a stored generated column), as
one would by hand: ``COPY`` for the events and the dead letters, one ``INSERT … SELECT FROM
unnest(…) ON CONFLICT DO UPDATE`` per aggregate table and one for the changed state, the
stored ids found with ``= ANY(%s)``; any other DB is a SQLite file.

What hookline does besides, and this script does not: the input limits (line length, nesting
depth, digits, repeated keys), stage statistics, flag evaluation, fault isolation, the
boundary check of each accepted event, the full run report, the writer lock, and, in PostgreSQL,
the fallback for a value the server refuses (a NUL character: the row becomes a dead letter).
``tests/test_bench_handwritten.py`` (SQLite) and ``tests/test_bench_handwritten_postgres.py``
keep the two honest: on the same generated input (attacks included), over two runs, they
store the same events, dead letters, aggregates, state and checkpoint.

    python benchmarks/handwritten.py INPUT DB      # DB: a SQLite file or a postgresql:// URL
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sqlite3
import sys
import time
import uuid
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from importlib import metadata
from typing import Any, Protocol

from hookline_fraud import (
    DEFAULT_BLOCKED,
    DEFAULT_MAX_AMOUNT,
    DEFAULT_RATES,
    DEFAULT_VELOCITY,
    MAX_ENTRIES,
)
from hookline_ranking import new_history, relevance, remember

BATCH_LINES = 5000

# -- the settings: hookline-fraud's defaults -------------------------------------------------

BLOCKED_CURRENCIES = frozenset(DEFAULT_BLOCKED)
BLOCKED_USERS: frozenset[str] = frozenset()
LIMITS_CURRENCY = "USD"
#: amount / DIVISORS[currency] is the amount in LIMITS_CURRENCY (1 for a currency not listed).
DIVISORS = {code: rate / DEFAULT_RATES.get(LIMITS_CURRENCY, 1.0)
            for code, rate in DEFAULT_RATES.items()}
MAX_BY_KIND = dict(DEFAULT_MAX_AMOUNT)
MAX_BY_CURRENCY: dict[str, float] = {}
RISK_FROM = 0.5
CHECK_REFUNDS = True
TOLERANCE_MS = 60_000


def seconds(value: float) -> str:
    return f"{value:g} s"


def money(amount: float, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def shown(amount: float, currency: str) -> str:
    """An amount as the reasons show it, with its value in LIMITS_CURRENCY when it differs."""
    if currency == LIMITS_CURRENCY:
        return money(amount, currency)
    return (f"{money(amount, currency)} "
            f"({money(amount / DIVISORS.get(currency, 1.0), LIMITS_CURRENCY)})")


TOLERANCE_TEXT = seconds(TOLERANCE_MS / 1000)
#: Per kind: (window in ms, max count or None, max amount or None, the window as shown).
VELOCITY: dict[str, list[tuple[int, int | None, float | None, str]]] = {}
for _limit in DEFAULT_VELOCITY:
    VELOCITY.setdefault(_limit["kind"], []).append(
        (round(_limit["window"] * 1000), _limit.get("max_count"), _limit.get("max_amount"),
         seconds(_limit["window"])))
#: Per kind, how far back from a user's latest event its entries are kept.
HORIZONS = {kind: max(limit[0] for limit in limits) + TOLERANCE_MS
            for kind, limits in VELOCITY.items()}
PLURALS = {kind: f"{kind}es" if kind.endswith(("s", "x", "sh", "ch")) else f"{kind}s"
           for kind in VELOCITY}

# -- the state the rules and the scorer keep per user -----------------------------------------

#: stage -> {user: value}, and the users whose value changed since the last commit.
STATE: dict[str, dict[str, Any]] = {
    "fraud.velocity": {}, "fraud.sequence": {}, "ranking.score": {}}
CHANGED: dict[str, set[str]] = {stage: set() for stage in STATE}
WINDOWS, BALANCES, HISTORIES = (STATE["fraud.velocity"], STATE["fraud.sequence"],
                                STATE["ranking.score"])
WINDOWS_CHANGED, BALANCES_CHANGED, HISTORIES_CHANGED = (
    CHANGED["fraud.velocity"], CHANGED["fraud.sequence"], CHANGED["ranking.score"])


def closer(risk: float, ratio: float) -> float:
    """The event's risk once a rule measured ``ratio`` of its limit."""
    if ratio >= RISK_FROM and ratio > risk:
        return round(ratio, 4) if ratio < 1.0 else 1.0
    return risk


def velocity(user: str, kind: str, ts: int, amount: float, currency: str,
             limits: list[tuple[int, int | None, float | None, str]]) -> str | float:
    """Count the event in its user's windows of its kind: the reason it is refused, or the
    largest share of a limit it reached."""
    windows = WINDOWS.get(user)
    if windows is None:
        windows = WINDOWS[user] = {}
        WINDOWS_CHANGED.add(user)
    series: list[list[Any]] | None = windows.get(kind)
    if series is None:
        series = windows[kind] = [[], [], []]
    times, counts, amounts = series
    if times:
        latest = times[-1]
        if ts < latest - TOLERANCE_MS:
            return (f"velocity: {kind} at ts {ts} for user {user} is "
                    f"{seconds((latest - ts) / 1000)} older than the user's latest {kind}, "
                    f"tolerance {TOLERANCE_TEXT}")
        cut = bisect_right(times, max(ts, latest) - HORIZONS[kind])
        if cut:
            del times[:cut], counts[:cut], amounts[:cut]
    WINDOWS_CHANGED.add(user)
    value = round(amount / DIVISORS.get(currency, 1.0), 2)
    if not times or ts >= times[-1]:
        times.append(ts)
        counts.append(1)
        amounts.append(value)
        end = len(times)
    else:
        end = bisect_right(times, ts)
        times.insert(end, ts)
        counts.insert(end, 1)
        amounts.insert(end, value)
        end += 1
    if len(times) > MAX_ENTRIES:  # the two oldest merge, at the later time
        counts[1] += counts[0]
        amounts[1] = round(amounts[1] + amounts[0], 2)
        del times[0], counts[0], amounts[0]
        end = max(end - 1, 1)
    ratio = 0.0
    for window, max_count, max_amount, window_text in limits:
        start = bisect_right(times, ts - window, 0, end)
        if max_count is not None:
            count = sum(counts[start:end])
            if count > max_count:
                return (f"velocity: {count} {PLURALS[kind]} in {window_text} for user {user}, "
                        f"limit {max_count}")
            ratio = max(ratio, count / max_count)
        if max_amount is not None:
            spent = sum(amounts[start:end])
            if spent > max_amount:
                return (f"velocity: {money(spent, LIMITS_CURRENCY)} in {PLURALS[kind]} in "
                        f"{window_text} for user {user}, limit "
                        f"{money(max_amount, LIMITS_CURRENCY)}")
            ratio = max(ratio, spent / max_amount)
    return ratio


def fraud(d: dict[str, Any]) -> tuple[str, str] | None:
    """The rules in hookline-fraud's order: the stage and reason refusing the event, or None
    with its ``risk`` set."""
    currency, user, kind = d["currency"], d["user_id"], d["kind"]
    if currency in BLOCKED_CURRENCIES:
        return "fraud.blocked_currency", f"blocked_currency: currency {currency!r} is blocked"
    if BLOCKED_USERS and user in BLOCKED_USERS:
        return "fraud.blocked_user", f"blocked_user: user {user} is blocked"
    amount = d["amount"]
    risk = 0.0
    if amount:
        ratio = 0.0
        by_currency = MAX_BY_CURRENCY.get(currency)
        if by_currency is not None:
            if amount > by_currency:
                return "fraud.amount_limit", (
                    f"amount_limit: {kind} of {money(amount, currency)} for user {user}, "
                    f"limit {money(by_currency, currency)}")
            ratio = amount / by_currency
        by_kind = MAX_BY_KIND.get(kind)
        if by_kind is not None:
            value = amount / DIVISORS.get(currency, 1.0)
            if value > by_kind:
                return "fraud.amount_limit", (
                    f"amount_limit: {kind} of {shown(amount, currency)} for user {user}, "
                    f"limit {money(by_kind, LIMITS_CURRENCY)}")
            ratio = max(ratio, value / by_kind)
        risk = closer(risk, ratio)
    limits = VELOCITY.get(kind)
    if limits is not None:
        found = velocity(user, kind, d["ts"], amount, currency, limits)
        if isinstance(found, str):
            return "fraud.velocity", found
        risk = closer(risk, found)
    if CHECK_REFUNDS and (kind == "purchase" or kind == "refund"):
        value = amount / DIVISORS.get(currency, 1.0)
        if value:
            balance = BALANCES.get(user, 0.0)
            if kind == "refund":
                if value > balance:
                    return "fraud.sequence", (
                        f"sequence: refund of {shown(amount, currency)} for user {user} is "
                        "larger than the user's purchases so far, "
                        f"{money(balance, LIMITS_CURRENCY)}")
                if balance:
                    risk = closer(risk, value / balance)
                value = -value
            BALANCES[user] = balance + value
            BALANCES_CHANGED.add(user)
    d["risk"] = risk
    return None


# -- the event schema ---------------------------------------------------------------------------

BASE_FIELDS = ("event_id", "user_id", "kind", "ts", "amount", "currency", "tags", "properties")
PLUGIN_FIELDS = ("risk", "fraud_shadow", "score", "score_model", "variants")
CODE = re.compile("[A-Z]{3}").fullmatch
INFINITY = float("inf")


def _number(value: Any, low: float, high: float) -> bool:
    return (type(value) is int or type(value) is float) and low <= value <= high


def _strings(value: Any) -> bool:
    return type(value) is list and all(type(item) is str for item in value)


def check(d: Any) -> list[str]:
    """What is wrong with a parsed line, one ``field: problem`` per bad field in schema order
    (empty: a valid event, its defaults filled in)."""
    if type(d) is not dict:
        return [f"$: must be an object (got {type(d).__name__})"]
    bad = []
    for key, longest in (("event_id", 256), ("user_id", 256), ("kind", 64)):
        value = d.get(key)
        if type(value) is not str or not 0 < len(value) <= longest:
            bad.append(f"{key}: must be a string of 1 to {longest} characters")
    ts = d.get("ts")
    if type(ts) is not int or ts <= 0:
        bad.append("ts: must be epoch ms (int > 0)")
    amount = d.setdefault("amount", 0)
    if not ((type(amount) is int or type(amount) is float) and 0 <= amount < INFINITY):
        bad.append("amount: must be a finite number >= 0")
    currency = d.setdefault("currency", "USD")
    if type(currency) is not str or CODE(currency) is None:
        bad.append("currency: must be a 3-letter code")
    tags = d.setdefault("tags", [])
    if type(tags) is not list:
        bad.append("tags: must be a list")
    else:
        for at, tag in enumerate(tags):
            if type(tag) is not str:
                bad.append(f"tags[{at}]: must be a string")
    if type(d.setdefault("properties", {})) is not dict:
        bad.append("properties: must be an object")
    if len(d) != len(BASE_FIELDS) or bad:  # a plugin's field, or a key of no field
        _check_more(d, bad)
    return bad


def _check_more(d: dict[str, Any], bad: list[str]) -> None:
    if "risk" in d and not _number(d["risk"], 0, 1):
        bad.append("risk: must be a number from 0 to 1")
    shadow = d.get("fraud_shadow")
    if shadow is not None and not (_strings(shadow) and all(shadow)):
        bad.append("fraud_shadow: must be a list of non-empty strings")
    score = d.get("score")
    if score is not None and not _number(score, 0, 1):
        bad.append("score: must be a number from 0 to 1")
    if d.get("score_model") not in (None, "control", "freshness"):
        bad.append("score_model: must be control or freshness")
    if "variants" in d and not _strings(d["variants"]):
        bad.append("variants: must be a list of strings")
    bad += [f"{key}: is not a field of the schema" for key in d
            if key not in BASE_FIELDS and key not in PLUGIN_FIELDS]


def _not_json(name: str) -> Any:
    raise ValueError(f"malformed JSON: {name} is not a JSON value")


_decode = json.JSONDecoder(parse_constant=_not_json).decode


def parse(raw: bytes) -> Any:
    """One line's JSON value; ValueError with the reason when it is not JSON."""
    try:
        return _decode(raw.decode())
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON: {exc.msg} at column {exc.colno}") from None


# -- the databases: hookline's tables, in SQLite or in PostgreSQL --------------------------------

#: A batch's aggregate deltas: (table, key column, {key: [count, amount_sum, amount_min,
#: amount_max, score_sum, score_count]}).
Aggregates = Sequence[tuple[str, str, dict[str, list[Any]]]]


class Store(Protocol):
    """What the run asks of its database; everything else is the same for both."""

    def state(self) -> Iterable[tuple[str, str, Any]]:
        """The committed ``(stage, key, value)`` of ``stage_state``, values decoded."""

    def letter_ids(self) -> set[str]:
        """The event ids on the stored dead letters."""

    def stored_ids(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` are in ``events``."""

    def checkpoint(self, key: str) -> tuple[int, int]:
        """The committed ``(offset, line)`` of the input ``key``, ``(0, 0)`` for none."""

    def commit(self, rows: list[tuple[Any, ...]], letters: list[tuple[Any, ...]],
               aggregates: Aggregates, state: list[tuple[str, str, str]],
               checkpoint: tuple[str, int, int]) -> None:
        """One transaction: the rows, the dead letters, the aggregate deltas, the changed
        state (its values as JSON) and the checkpoint ``(key, offset, line)``."""

    def finish(self, run_id: str, started: float, finished: float, report: str) -> None:
        """Record the run (times in epoch seconds, the report as JSON) and close."""


AGGREGATE_COLUMNS = (
    "count INTEGER NOT NULL, amount_sum REAL NOT NULL, amount_min REAL, amount_max REAL, "
    "score_sum REAL NOT NULL, score_count INTEGER NOT NULL, score_mean REAL GENERATED ALWAYS "
    "AS (CASE WHEN score_count > 0 THEN score_sum / score_count END) VIRTUAL")
SCHEMA = (
    'CREATE TABLE IF NOT EXISTS events ("event_id" TEXT PRIMARY KEY, "user_id" TEXT, '
    '"kind" TEXT, "ts" INTEGER, "amount" REAL, "currency" TEXT, "tags" TEXT, '
    '"properties" TEXT, "risk" REAL, "fraud_shadow" TEXT, "score" REAL, "score_model" TEXT, '
    '"variants" TEXT)',
    "CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY, run_id TEXT, "
    "payload TEXT, reason TEXT NOT NULL, stage TEXT, error TEXT, line INTEGER, source TEXT, "
    "plugin TEXT, distribution TEXT, version TEXT, created_at REAL, "
    "replays INTEGER NOT NULL DEFAULT 0, event_id TEXT)",
    "CREATE INDEX IF NOT EXISTS dead_letters_event_id ON dead_letters (event_id)",
    f"CREATE TABLE IF NOT EXISTS agg_by_user (user_id TEXT PRIMARY KEY, {AGGREGATE_COLUMNS})",
    f"CREATE TABLE IF NOT EXISTS agg_by_kind (kind TEXT PRIMARY KEY, {AGGREGATE_COLUMNS})",
    "CREATE TABLE IF NOT EXISTS checkpoints (source TEXT PRIMARY KEY, offset INTEGER NOT NULL, "
    "line INTEGER NOT NULL, updated_at REAL)",
    "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, started_at REAL, "
    "finished_at REAL, report TEXT)",
    "CREATE TABLE IF NOT EXISTS stage_state (stage TEXT NOT NULL, key TEXT NOT NULL, "
    "value TEXT NOT NULL, PRIMARY KEY (stage, key))",
)
INSERT_EVENT = "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
INSERT_LETTER = ("INSERT INTO dead_letters (run_id, payload, reason, stage, line, source, "
                 "plugin, distribution, version, created_at, event_id) "
                 "VALUES (?,?,?,?,?,?,?,?,?,?,?)")
UPSERT_AGGREGATE = (
    "INSERT INTO {table} ({key}, count, amount_sum, amount_min, amount_max, score_sum, "
    "score_count) VALUES (?,?,?,?,?,?,?) ON CONFLICT({key}) DO UPDATE SET "
    "count = count + excluded.count, amount_sum = amount_sum + excluded.amount_sum, "
    "amount_min = min(amount_min, excluded.amount_min), "
    "amount_max = max(amount_max, excluded.amount_max), "
    "score_sum = score_sum + excluded.score_sum, score_count = score_count + excluded.score_count")
UPSERT_STATE = ("INSERT INTO stage_state (stage, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT(stage, key) DO UPDATE SET value = excluded.value")
UPSERT_CHECKPOINT = ("INSERT INTO checkpoints (source, offset, line, updated_at) "
                     "VALUES (?, ?, ?, ?) ON CONFLICT(source) DO UPDATE SET "
                     "offset = excluded.offset, line = excluded.line, "
                     "updated_at = excluded.updated_at")


class SqliteStore:
    """The tables in a SQLite file (WAL, ``synchronous=NORMAL``, as hookline opens it)."""

    def __init__(self, path: str) -> None:
        self.db = db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for statement in SCHEMA:
            db.execute(statement)

    def state(self) -> Iterable[tuple[str, str, Any]]:
        return [(stage, key, json.loads(value)) for stage, key, value in
                self.db.execute("SELECT stage, key, value FROM stage_state")]

    def letter_ids(self) -> set[str]:
        return {event_id for (event_id,) in self.db.execute(
            "SELECT event_id FROM dead_letters WHERE event_id IS NOT NULL")}

    def stored_ids(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), 400):
            chunk = ids[start:start + 400]
            found.update(row[0] for row in self.db.execute(
                f"SELECT event_id FROM events WHERE event_id IN ({','.join('?' * len(chunk))})",
                chunk))
        return found

    def checkpoint(self, key: str) -> tuple[int, int]:
        row = self.db.execute("SELECT offset, line FROM checkpoints WHERE source = ?",
                              (key,)).fetchone()
        return (row[0], row[1]) if row else (0, 0)

    def commit(self, rows: list[tuple[Any, ...]], letters: list[tuple[Any, ...]],
               aggregates: Aggregates, state: list[tuple[str, str, str]],
               checkpoint: tuple[str, int, int]) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        db.executemany(INSERT_EVENT, rows)
        db.executemany(INSERT_LETTER, letters)
        for table, key, groups in aggregates:
            db.executemany(UPSERT_AGGREGATE.format(table=table, key=key),
                           [(name, *group) for name, group in groups.items()])
        db.executemany(UPSERT_STATE, state)
        db.execute(UPSERT_CHECKPOINT, (*checkpoint, time.time()))
        db.execute("COMMIT")

    def finish(self, run_id: str, started: float, finished: float, report: str) -> None:
        self.db.execute("INSERT INTO runs VALUES (?, ?, ?, ?)",
                        (run_id, started, finished, report))
        self.db.close()


#: hookline's PostgreSQL tables: SQLite's, with PostgreSQL's types (the ``Timestamp`` field
#: ``ts`` and the times are ``timestamptz``, the JSON values ``jsonb``).
PG_AGGREGATE_COLUMNS = (
    "count bigint NOT NULL, amount_sum double precision NOT NULL, "
    "amount_min double precision, amount_max double precision, "
    "score_sum double precision NOT NULL, score_count bigint NOT NULL, "
    "score_mean double precision GENERATED ALWAYS "
    "AS (CASE WHEN score_count > 0 THEN score_sum / score_count END) STORED")
PG_SCHEMA = (
    'CREATE TABLE IF NOT EXISTS events ("event_id" text PRIMARY KEY, "user_id" text, '
    '"kind" text, "ts" timestamptz, "amount" double precision, "currency" text, '
    '"tags" jsonb, "properties" jsonb, "risk" double precision, "fraud_shadow" jsonb, '
    '"score" double precision, "score_model" text, "variants" jsonb)',
    "CREATE TABLE IF NOT EXISTS dead_letters (id bigint GENERATED ALWAYS AS IDENTITY "
    "PRIMARY KEY, run_id text, payload text, reason text NOT NULL, stage text, error text, "
    "line bigint, source text, plugin text, distribution text, version text, "
    "created_at timestamptz, replays integer NOT NULL DEFAULT 0, event_id text)",
    "CREATE INDEX IF NOT EXISTS dead_letters_event_id ON dead_letters (event_id)",
    f"CREATE TABLE IF NOT EXISTS agg_by_user (user_id text PRIMARY KEY, {PG_AGGREGATE_COLUMNS})",
    f"CREATE TABLE IF NOT EXISTS agg_by_kind (kind text PRIMARY KEY, {PG_AGGREGATE_COLUMNS})",
    'CREATE TABLE IF NOT EXISTS checkpoints (source text PRIMARY KEY, "offset" bigint NOT NULL, '
    "line bigint NOT NULL, updated_at timestamptz)",
    "CREATE TABLE IF NOT EXISTS runs (run_id text PRIMARY KEY, started_at timestamptz, "
    "finished_at timestamptz, report jsonb)",
    "CREATE TABLE IF NOT EXISTS stage_state (stage text NOT NULL, key text NOT NULL, "
    "value jsonb NOT NULL, PRIMARY KEY (stage, key))",
)
COPY_EVENTS = "COPY events FROM STDIN"
COPY_LETTERS = ("COPY dead_letters (run_id, payload, reason, stage, line, source, plugin, "
                "distribution, version, created_at, event_id) FROM STDIN")
PG_UPSERT_AGGREGATE = (
    "INSERT INTO {table} ({key}, count, amount_sum, amount_min, amount_max, score_sum, "
    "score_count) SELECT * FROM unnest(%s::text[], %s::bigint[], %s::float8[], %s::float8[], "
    "%s::float8[], %s::float8[], %s::bigint[]) ON CONFLICT ({key}) DO UPDATE SET "
    "count = {table}.count + excluded.count, "
    "amount_sum = {table}.amount_sum + excluded.amount_sum, "
    "amount_min = LEAST({table}.amount_min, excluded.amount_min), "
    "amount_max = GREATEST({table}.amount_max, excluded.amount_max), "
    "score_sum = {table}.score_sum + excluded.score_sum, "
    "score_count = {table}.score_count + excluded.score_count")
PG_UPSERT_STATE = ("INSERT INTO stage_state (stage, key, value) SELECT * FROM "
                   "unnest(%s::text[], %s::text[], %s::text[]::jsonb[]) "
                   "ON CONFLICT (stage, key) DO UPDATE SET value = excluded.value")
PG_UPSERT_CHECKPOINT = ('INSERT INTO checkpoints (source, "offset", line, updated_at) '
                        "VALUES (%s, %s, %s, %s) ON CONFLICT (source) DO UPDATE SET "
                        '"offset" = excluded."offset", line = excluded.line, '
                        "updated_at = excluded.updated_at")
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
MS = datetime.timedelta(milliseconds=1)


def moment(seconds: float) -> datetime.datetime:
    """Epoch seconds as the ``timestamptz`` value they stand for."""
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


class PostgresStore:
    """The tables in a PostgreSQL database (psycopg 3): ``COPY`` for the events and the dead
    letters, one ``INSERT … SELECT FROM unnest(…)`` per table for the aggregate deltas and
    the state, each batch in one transaction."""

    def __init__(self, url: str) -> None:
        import psycopg  # only this database needs it

        self.db = db = psycopg.connect(url, autocommit=True)
        with db.transaction():
            for statement in PG_SCHEMA:
                db.execute(statement)

    def state(self) -> Iterable[tuple[str, str, Any]]:
        return self.db.execute("SELECT stage, key, value FROM stage_state").fetchall()

    def letter_ids(self) -> set[str]:
        return {event_id for (event_id,) in self.db.execute(
            "SELECT event_id FROM dead_letters WHERE event_id IS NOT NULL")}

    def stored_ids(self, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        return {event_id for (event_id,) in self.db.execute(
            "SELECT event_id FROM events WHERE event_id = ANY(%s)", (ids,))}

    def checkpoint(self, key: str) -> tuple[int, int]:
        row = self.db.execute('SELECT "offset", line FROM checkpoints WHERE source = %s',
                              (key,)).fetchone()
        return (row[0], row[1]) if row else (0, 0)

    def commit(self, rows: list[tuple[Any, ...]], letters: list[tuple[Any, ...]],
               aggregates: Aggregates, state: list[tuple[str, str, str]],
               checkpoint: tuple[str, int, int]) -> None:
        db = self.db
        with db.transaction(), db.cursor() as cursor:
            with cursor.copy(COPY_EVENTS) as copy:
                write = copy.write_row
                for row in rows:  # ts: epoch ms in the row, timestamptz in the table
                    write((*row[:3], EPOCH + row[3] * MS, *row[4:]))
            if letters:
                with cursor.copy(COPY_LETTERS) as copy:
                    for letter in letters:
                        copy.write_row((*letter[:9], moment(letter[9]), letter[10]))
            for table, key, groups in aggregates:
                if groups:  # one array per column; the amounts may be ints: float8[] all
                    count, amount_sum, low, high, score_sum, score_count = zip(
                        *groups.values())
                    cursor.execute(PG_UPSERT_AGGREGATE.format(table=table, key=key), (
                        list(groups), list(count), list(map(float, amount_sum)),
                        list(map(float, low)), list(map(float, high)),
                        list(map(float, score_sum)), list(score_count)))
            if state:
                stages, keys, values = zip(*state)
                cursor.execute(PG_UPSERT_STATE, (list(stages), list(keys), list(values)))
            cursor.execute(PG_UPSERT_CHECKPOINT, (*checkpoint, moment(time.time())))

    def finish(self, run_id: str, started: float, finished: float, report: str) -> None:
        self.db.execute("INSERT INTO runs VALUES (%s, %s, %s, %s::jsonb)",
                        (run_id, moment(started), moment(finished), report))
        self.db.close()


def open_store(database: str) -> Store:
    """The database named on the command line, its tables made, the committed state loaded."""
    store: Store = (PostgresStore(database)
                    if database.startswith(("postgresql://", "postgres://"))
                    else SqliteStore(database))
    for stage, key, value in store.state():
        if stage in STATE:
            STATE[stage][key] = value
    return store


# -- the run ------------------------------------------------------------------------------------

def add(groups: dict[str, list[Any]], key: str, amount: float, score: float) -> None:
    group = groups.get(key)
    if group is None:
        groups[key] = [1, 0.0 + amount, amount, amount, score, 1]
        return
    group[0] += 1
    group[1] += amount
    if amount < group[2]:
        group[2] = amount
    if amount > group[3]:
        group[3] = amount
    group[4] += score
    group[5] += 1


#: hookline's bucket layout: four buckets per power of two, found by bit length.
SHIFTS = tuple(max(0, length - 3) for length in range(65))
OFFSETS = tuple(shift << 2 for shift in SHIFTS)
SAMPLE = 1 << 64  # a bucket holds its count from bit 64 up, its total nanoseconds below
#: The phases are timed on the lines whose number is a multiple of this (hookline's default).
SAMPLE_EVERY = 16


def add_latency(bins: list[int], ns: int) -> None:
    """Record ``ns`` in a histogram of that layout."""
    length = ns.bit_length()
    bins[(ns >> SHIFTS[length]) + OFFSETS[length]] += ns + SAMPLE


class Run:
    """One run over one input: its counts, its latency histograms and what the batch being
    processed will commit."""

    def __init__(self, path: str, store: Store) -> None:
        self.store, self.name = store, path
        status = os.stat(path)
        self.key = f"{os.path.realpath(path)}|{status.st_dev}|{status.st_ino}"
        self.run_id = uuid.uuid4().hex[:12]
        self.started = time.time()
        self.origin = ("fraud", "hookline-fraud", metadata.version("hookline-fraud"))
        #: Event ids on the dead letters the rules wrote: refused again as duplicates.
        self.letter_ids = store.letter_ids()
        self.latency = {phase: [0] * 256 for phase in ("validate", "score")}
        self.read = self.accepted = self.dead = self.duplicates = 0
        self.rows: list[tuple[Any, ...]] = []
        self.letters: list[tuple[Any, ...]] = []
        self.by_user: dict[str, list[Any]] = {}
        self.by_kind: dict[str, list[Any]] = {}

    def checkpoint(self) -> tuple[int, int]:
        return self.store.checkpoint(self.key)

    def letter(self, raw: bytes, reason: str, stage: str, number: int,
               origin: tuple[Any, ...] = (None, None, None), event_id: str | None = None
               ) -> None:
        self.letters.append((self.run_id, raw.rstrip(b"\r\n").decode(errors="replace"), reason,
                             stage, number, self.name, *origin, time.time(), event_id))

    def batch(self, lines: list[tuple[int, bytes]]) -> None:
        """Parse and check the lines, set duplicates aside, then run the phases on each
        event in input order."""
        self.read += len(lines)
        events: list[tuple[int, bytes, dict[str, Any]]] = []
        for number, raw in lines:
            try:
                d = parse(raw)
            except ValueError as exc:
                self.letter(raw, str(exc), "parse", number)
                continue
            bad = check(d)
            if bad:
                self.letter(raw, f"{self.name}, line {number}: invalid event, {len(bad)} bad "
                            f"field{'s' if len(bad) > 1 else ''}: {'; '.join(bad)}", "schema",
                            number)
            else:
                events.append((number, raw, d))
        ids = [d["event_id"] for _, _, d in events]
        taken = self.store.stored_ids(ids)
        taken.update(self.letter_ids.intersection(ids))
        clock, every = time.perf_counter_ns, SAMPLE_EVERY
        validate, scored = self.latency["validate"], self.latency["score"]
        encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        rows, by_user, by_kind = self.rows, self.by_user, self.by_kind
        for number, raw, d in events:
            event_id = d["event_id"]
            if event_id in taken:
                self.duplicates += 1
                continue
            taken.add(event_id)
            timed = not number % every
            if timed:
                t0 = clock()
            refused = fraud(d)
            if refused is not None:
                self.letter(raw, refused[1], refused[0], number, self.origin, event_id)
                self.letter_ids.add(event_id)
                continue
            if timed:
                add_latency(validate, clock() - t0)
                t0 = clock()
            user, kind, amount, tags = d["user_id"], d["kind"], d["amount"], d["tags"]
            history = HISTORIES.get(user)
            if history is None:
                history = HISTORIES[user] = new_history()
            score = relevance(kind, amount, tags, history)
            remember(history, kind)
            HISTORIES_CHANGED.add(user)
            if timed:
                add_latency(scored, clock() - t0)
            variants = d.get("variants")
            rows.append((event_id, user, kind, d["ts"], amount, d["currency"],
                         encode(tags) if tags else "[]",
                         encode(d["properties"]) if d["properties"] else "{}",
                         d["risk"], None, score, "control",
                         encode(variants) if variants else "[]"))
            add(by_user, user, amount, score)
            add(by_kind, kind, amount, score)

    def commit(self, offset: int, line: int) -> None:
        """One transaction: the batch's rows, dead letters, aggregate deltas, changed state
        and the checkpoint."""
        state = []
        for stage, changed in CHANGED.items():
            values = STATE[stage]
            state += [(stage, user, json.dumps(values[user])) for user in sorted(changed)]
            changed.clear()
        self.store.commit(self.rows, self.letters, (("agg_by_user", "user_id", self.by_user),
                                                    ("agg_by_kind", "kind", self.by_kind)),
                          state, (self.key, offset, line))
        self.accepted += len(self.rows)
        self.dead += len(self.letters)
        self.rows.clear()
        self.letters.clear()
        self.by_user.clear()
        self.by_kind.clear()

    def finish(self) -> None:
        report = {"read": self.read, "accepted": self.accepted, "dead_lettered": self.dead,
                  "duplicates": self.duplicates,
                  "latency_ns": {phase: {"calls": sum(bins) >> 64,
                                         "total": sum(b & (SAMPLE - 1) for b in bins)}
                                 for phase, bins in self.latency.items()}}
        self.store.finish(self.run_id, self.started, time.time(), json.dumps(report))


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print("usage: python benchmarks/handwritten.py INPUT DB (a SQLite file or a "
              "postgresql:// URL)", file=sys.stderr)
        return 2
    path, database = argv
    run = Run(path, open_store(database))
    offset, number = run.checkpoint()
    lines: list[tuple[int, bytes]] = []
    with open(path, "rb") as handle:
        handle.seek(offset)
        for raw in handle:
            offset += len(raw)
            number += 1
            if raw.strip():
                lines.append((number, raw))
                if len(lines) == BATCH_LINES:
                    run.batch(lines)
                    run.commit(offset, number)
                    lines.clear()
    run.batch(lines)
    run.commit(offset, number)
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
