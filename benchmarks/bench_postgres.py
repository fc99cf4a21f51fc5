"""The PostgreSQL sink: ``hookline run --db postgresql://…`` against a hand-written psycopg
script doing the same work.

N generated events (5% invalid) through the three contrib plugins (fraud, ranking,
monitoring) into a throwaway PostgreSQL server (started as the tests start theirs, from
``tests/_postgres.py``), against the script below: it parses, checks the same schema rules,
rejects the blocked currencies, scores each event with the ranking plugin's own function and
the user's history, times the three phases into latency histograms (as hookline-monitoring
does), refuses event ids already stored, keeps the per-user and per-kind aggregates, and
writes the rows (``COPY``), dead letters (``COPY``), aggregates (``INSERT … ON CONFLICT``),
the users' scoring histories the batch changed (``stage_state``, as the ranking stage keeps
them) and the checkpoint into the same tables with PostgreSQL's types, one transaction per
5,000 lines. (hookline also keeps the fraud plugin's velocity and refund state; the script
keeps only the ranking histories.) Each command writes into a new database of its own;
whole fresh processes, run round-robin, medians over rounds. Target: hookline >= 0.8x the
script's throughput. The same rounds time hookline into SQLite, to show what the sink
itself costs (no target).

    python benchmarks/bench_postgres.py [--events 1000000] [--quick]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # its test server

from _harness import check, finish, generate_events, note, parse_run_args

HANDWRITTEN = r'''
import datetime, json, re, sys, time
import psycopg
from hookline_fraud import DEFAULT_BLOCKED
from hookline_ranking import relevance, remember

path, url = sys.argv[1], sys.argv[2]
BLOCKED = set(DEFAULT_BLOCKED)
CURRENCY = re.compile("[A-Z]{3}").fullmatch
KEYS = {"event_id", "user_id", "kind", "ts", "amount", "currency", "tags", "properties"}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
MS = datetime.timedelta(milliseconds=1)

def check(d):
    if type(d) is not dict or not d.keys() <= KEYS:
        return "bad object"
    for key in ("event_id", "user_id", "kind"):
        v = d.get(key)
        if type(v) is not str or not v or len(v) > 256:
            return "bad " + key
    ts = d.get("ts")
    if type(ts) is not int or ts <= 0:
        return "bad ts"
    a = d.setdefault("amount", 0)
    if not (type(a) is int or type(a) is float and a - a == 0) or a < 0:
        return "bad amount"
    c = d.setdefault("currency", "USD")
    if type(c) is not str or CURRENCY(c) is None:
        return "bad currency"
    t = d.setdefault("tags", [])
    if type(t) is not list or not all(type(x) is str for x in t):
        return "bad tags"
    p = d.setdefault("properties", {})
    if type(p) is not dict:
        return "bad properties"
    return None

# The tables hookline makes with the three plugins, with PostgreSQL's types.
con = psycopg.connect(url, autocommit=True)
con.execute("CREATE TABLE events (event_id text PRIMARY KEY, user_id text, kind text, "
            "ts timestamptz, amount double precision, currency text, tags jsonb, "
            "properties jsonb, risk double precision, fraud_shadow jsonb, "
            "score double precision, score_model text, variants jsonb)")
con.execute("CREATE TABLE dead_letters (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "payload text, reason text, stage text, line bigint, source text, plugin text)")
for table, key in (("agg_by_user", "user_id"), ("agg_by_kind", "kind")):
    con.execute(f"CREATE TABLE {table} ({key} text PRIMARY KEY, count bigint, "
                "amount_sum double precision, amount_min double precision, "
                "amount_max double precision, score_sum double precision, score_count bigint)")
con.execute('CREATE TABLE checkpoints (source text PRIMARY KEY, "offset" bigint)')
con.execute("CREATE TABLE stage_state (stage text, key text, value jsonb, "
            "PRIMARY KEY (stage, key))")
UPSERT = ("INSERT INTO {table} SELECT * FROM unnest(%s::text[], %s::bigint[], "
          "%s::float8[], %s::float8[], %s::float8[], %s::float8[], %s::bigint[]) "
          "ON CONFLICT ({key}) DO UPDATE SET count = {table}.count + excluded.count, "
          "amount_sum = {table}.amount_sum + excluded.amount_sum, "
          "amount_min = LEAST({table}.amount_min, excluded.amount_min), "
          "amount_max = GREATEST({table}.amount_max, excluded.amount_max), "
          "score_sum = {table}.score_sum + excluded.score_sum, "
          "score_count = {table}.score_count + excluded.score_count")
enc = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
buckets = {phase: {} for phase in ("validate", "enrich", "score")}  # latency histograms
histories, changed = {}, set()  # each user's history, and whose changed in this batch
rows, dead, by_user, by_kind, offset = [], [], {}, {}, 0

def timed(phase, ns):
    shift = max(ns.bit_length() - 3, 0)
    histogram = buckets[phase]
    key = (shift, ns >> shift)
    histogram[key] = histogram.get(key, 0) + 1

def add(groups, key, amount, score):
    amount = float(amount)  # float8[] columns: psycopg types a list by its values
    g = groups.get(key)
    if g is None:
        groups[key] = [1, amount, amount, amount, score, 1]
    else:
        g[0] += 1; g[1] += amount; g[2] = min(g[2], amount); g[3] = max(g[3], amount)
        g[4] += score; g[5] += 1

def commit():
    # event ids already in the database are refused, as hookline does
    stored = {r[0] for r in con.execute("SELECT event_id FROM events WHERE event_id = ANY(%s)",
                                        ([row[0] for row in rows],))}
    with con.transaction():
        cur = con.cursor()
        with cur.copy("COPY events FROM STDIN") as copy:
            for row in rows:
                if row[0] not in stored:
                    copy.write_row(row)
        with cur.copy("COPY dead_letters (payload, reason, stage, line, source, plugin) "
                      "FROM STDIN") as copy:
            for letter in dead:
                copy.write_row(letter)
        for table, key, groups in (("agg_by_user", "user_id", by_user),
                                   ("agg_by_kind", "kind", by_kind)):
            if groups:
                con.execute(UPSERT.format(table=table, key=key),
                            [list(groups), *map(list, zip(*groups.values()))])
        if changed:  # the histories the batch changed, kept for the next run
            con.execute("INSERT INTO stage_state SELECT 'ranking.score', * FROM "
                        "unnest(%s::text[], %s::text[]::jsonb[]) ON CONFLICT (stage, key) "
                        "DO UPDATE SET value = excluded.value",
                        (list(changed), [json.dumps(histories[user]) for user in changed]))
        con.execute('INSERT INTO checkpoints VALUES (%s, %s) ON CONFLICT (source) '
                    'DO UPDATE SET "offset" = excluded."offset"', (path, offset))
    rows.clear(); dead.clear(); by_user.clear(); by_kind.clear(); changed.clear()

with open(path, "rb") as handle:
    for number, raw in enumerate(handle, 1):
        offset += len(raw)
        try:
            d = json.loads(raw)
        except ValueError as exc:
            dead.append((raw.decode(), str(exc), "parse", number, path, None))
        else:
            problem = check(d)
            if problem is not None:
                dead.append((raw.decode(), problem, "schema", number, path, None))
            else:
                t0 = time.perf_counter_ns()
                blocked = d["currency"] in BLOCKED
                timed("validate", time.perf_counter_ns() - t0)
                if blocked:
                    dead.append((raw.decode(), "currency blocked", "fraud.blocked_currency",
                                 number, path, "fraud"))
                else:
                    t0 = time.perf_counter_ns()
                    timed("enrich", time.perf_counter_ns() - t0)
                    t0 = time.perf_counter_ns()
                    history = histories.get(d["user_id"])
                    score = relevance(d["kind"], d["amount"], d["tags"], history)
                    if history is None:
                        history = histories[d["user_id"]] = [0, 0, 0]
                    remember(history, d["kind"])
                    changed.add(d["user_id"])
                    timed("score", time.perf_counter_ns() - t0)
                    rows.append((d["event_id"], d["user_id"], d["kind"], EPOCH + d["ts"] * MS,
                                 d["amount"], d["currency"], enc(d["tags"]),
                                 enc(d["properties"]), 0.0, None, score, "control", "[]"))
                    add(by_user, d["user_id"], d["amount"], score)
                    add(by_kind, d["kind"], d["amount"], score)
        if number % 5000 == 0:
            commit()
commit()
'''


def _timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _rounds(commands: dict[str, Callable[[str], list[str]]], new_database: Callable[[], str],
            cwd: Path, env: dict[str, str], repeats: int) -> dict[str, list[float]]:
    """Each command, given a new database's URL, timed ``repeats`` times round-robin."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            times[name].append(_timed(command(new_database()), cwd, env))
    return times


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_run_args(__doc__.partition("\n")[0], argv)
    events, repeats = args.events, args.runs
    try:
        import hookline_fraud  # noqa: F401
        import hookline_monitoring  # noqa: F401
        import hookline_ranking  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError as exc:
        note(f"{exc.name} is not installed: the PostgreSQL comparison needs psycopg and the "
             "three contrib plugins")
        return finish(args, "postgres", ("hookline", "psycopg"))
    import _postgres

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKLINE_", "PG"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    server = _postgres.start()
    try:
        with tempfile.TemporaryDirectory(prefix="hookline-bench-") as folder:
            work = Path(folder)
            env["HOOKLINE_CACHE_DIR"] = str(work / "cache")
            generate_events(events, work, env)
            (work / "handwritten.py").write_text(HANDWRITTEN)
            commands: dict[str, Callable[[str], list[str]]] = {
                "hand-written psycopg script": lambda url: [
                    sys.executable, "handwritten.py", "in.jsonl", url],
                "hookline run (3 contrib plugins)": lambda url: [
                    sys.executable, "-m", "hookline.cli", "run", "in.jsonl", "--db", url],
                # the same run into SQLite (a new file each time): what the sink costs
                "hookline run into SQLite": lambda url: [
                    sys.executable, "-m", "hookline.cli", "run", "in.jsonl", "--db",
                    str(work / f"{url.rpartition('/')[2]}.db")],
            }
            times = _rounds(commands, server.create_database, work, env, repeats)
    finally:
        server.stop()
    print(f"\n{events:,} events into PostgreSQL (server {server.origin})")
    base = statistics.median(times["hand-written psycopg script"])
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:<34} {median:8.2f} s  {events / median:>10,.0f} events/s  "
              f"throughput x{base / median:5.2f} of the hand-written script")
    ratio = statistics.median(h / k for h, k in zip(times["hand-written psycopg script"],
                                                    times["hookline run (3 contrib plugins)"]))
    check("hookline throughput into PostgreSQL, x hand-written psycopg", ratio, ">=", 0.8)
    ratio = statistics.median(s / k for s, k in zip(times["hookline run into SQLite"],
                                                    times["hookline run (3 contrib plugins)"]))
    print(f"  hookline into PostgreSQL, throughput x{ratio:.2f} of hookline into SQLite")
    return finish(args, "postgres", ("hookline", "psycopg"))


if __name__ == "__main__":
    sys.exit(main())
