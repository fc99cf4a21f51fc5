"""End to end: ``hookline run`` against a hand-written script doing the same work.

Three measurements, each a whole fresh process, run round-robin, medians over rounds:

1. Throughput: N generated events (5% invalid) through the three contrib plugins (fraud,
   ranking, monitoring) into SQLite, against ``handwritten.py``-style code inlined below that
   does the same work and stores the same tables: it parses, checks the same schema rules,
   rejects the same currencies, computes the same score (the ranking plugin's own function),
   times the three phases into latency histograms (as hookline-monitoring does), refuses
   event ids already stored, keeps the same per-user and per-kind aggregates, and inserts
   the rows, dead letters and checkpoint in 5,000-line transactions.
   Target: hookline >= 0.8x its throughput.
2. Peak memory (max RSS) of ``hookline run`` on the first N/10 events and on all N: within
   10% (streaming: memory does not grow with the input's length).
3. The process executor, 2 workers, with a stage costing >= 5 us per event, against inline.
   Target: >= 1.6x inline's throughput.

With ``--baseline REV`` (a git revision of this repository), the throughput measurement also
runs the same command on hookline as it was at ``REV`` (its ``core/`` exported from git into a
temporary folder, found first on ``PYTHONPATH``), in the same rounds: a change to the core is
judged against the code before it, side by side. Target: within 3 % of the baseline.
The same rounds run ``hookline run`` with the stage time limit off (``HOOKLINE_STAGE_TIMEOUT=0``):
the watchdog that enforces it must cost next to nothing. Target: within 3 % of off.

    python benchmarks/bench_end_to_end.py [--events 1000000] [--quick] [--baseline REV]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import check, finish, note, parse_args

from hookline.testing import write_installed

HANDWRITTEN = r'''
import json, re, sqlite3, sys, time
from hookline_ranking import relevance

path, db = sys.argv[1], sys.argv[2]
BLOCKED = {"XTS", "XXX"}
CURRENCY = re.compile("[A-Z]{3}").fullmatch
KEYS = {"event_id", "user_id", "kind", "ts", "amount", "currency", "tags", "properties"}

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

# The same tables as hookline's: events (with score and the flag-variants column), dead
# letters with where they came from, aggregates per user and per kind, checkpoints.
con = sqlite3.connect(db, isolation_level=None)
con.execute("PRAGMA journal_mode=WAL"); con.execute("PRAGMA synchronous=NORMAL")
con.execute("CREATE TABLE events (event_id TEXT PRIMARY KEY, user_id TEXT, kind TEXT, ts INTEGER,"
            " amount REAL, currency TEXT, tags TEXT, properties TEXT, score REAL, variants TEXT)")
con.execute("CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, payload TEXT, reason TEXT, "
            "stage TEXT, line INTEGER, source TEXT, plugin TEXT)")
AGG_COLUMNS = ("count INTEGER, amount_sum REAL, amount_min REAL, amount_max REAL, "
               "score_sum REAL, score_count INTEGER")
UPSERT = ("ON CONFLICT({key}) DO UPDATE SET count = count + excluded.count, "
          "amount_sum = amount_sum + excluded.amount_sum, "
          "amount_min = min(amount_min, excluded.amount_min), "
          "amount_max = max(amount_max, excluded.amount_max), "
          "score_sum = score_sum + excluded.score_sum, "
          "score_count = score_count + excluded.score_count")
for table, key in (("agg_by_user", "user_id"), ("agg_by_kind", "kind")):
    con.execute(f"CREATE TABLE {table} ({key} TEXT PRIMARY KEY, {AGG_COLUMNS})")
con.execute("CREATE TABLE checkpoints (source TEXT PRIMARY KEY, offset INTEGER)")
enc = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
buckets = {phase: {} for phase in ("validate", "enrich", "score")}  # latency histograms
rows, dead, by_user, by_kind, offset = [], [], {}, {}, 0

def timed(phase, ns):
    shift = max(ns.bit_length() - 3, 0)
    histogram = buckets[phase]
    key = (shift, ns >> shift)
    histogram[key] = histogram.get(key, 0) + 1

def add(groups, key, amount, score):
    g = groups.get(key)
    if g is None:
        groups[key] = [1, amount, amount, amount, score, 1]
    else:
        g[0] += 1; g[1] += amount; g[2] = min(g[2], amount); g[3] = max(g[3], amount)
        g[4] += score; g[5] += 1

def commit():
    stored = set()  # event ids already in the database are refused, as hookline does
    ids = [row[0] for row in rows]
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        stored.update(r[0] for r in con.execute(
            f"SELECT event_id FROM events WHERE event_id IN ({','.join('?' * len(chunk))})",
            chunk))
    con.execute("BEGIN")
    con.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [row for row in rows if row[0] not in stored])
    con.executemany("INSERT INTO dead_letters (payload, reason, stage, line, source, plugin) "
                    "VALUES (?,?,?,?,?,?)", dead)
    for table, key, groups in (("agg_by_user", "user_id", by_user),
                               ("agg_by_kind", "kind", by_kind)):
        con.executemany(f"INSERT INTO {table} VALUES (?,?,?,?,?,?,?) " + UPSERT.format(key=key),
                        [(k, *g) for k, g in groups.items()])
    con.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?)", (path, offset))
    con.execute("COMMIT")
    rows.clear(); dead.clear(); by_user.clear(); by_kind.clear()

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
                    score = relevance(d["kind"], d["amount"], d["tags"])
                    timed("score", time.perf_counter_ns() - t0)
                    rows.append((d["event_id"], d["user_id"], d["kind"], d["ts"], d["amount"],
                                 d["currency"], enc(d["tags"]), enc(d["properties"]), score,
                                 "[]"))
                    add(by_user, d["user_id"], d["amount"], score)
                    add(by_kind, d["kind"], d["amount"], score)
        if number % 5000 == 0:
            commit()
commit()
'''

BURN_PLUGIN = '''
import hashlib
import hookline

class Burn(hookline.Stage, phase="enrich", name="burn"):
    """Costs about 10 us per event: a stand-in for a real lookup or model."""

    def process(self, event):
        digest = event.user_id.encode()
        for _ in range(12):
            digest = hashlib.sha256(digest).digest()
'''

def _baseline_tree(revision: str, folder: Path) -> Path:
    """A folder holding the import package ``hookline`` and the contrib plugins' packages as
    they were at git ``revision`` (the installed plugins' entry points then import these)."""
    repository = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(repository), "archive", revision, "core",
                              "contrib"], check=True, capture_output=True).stdout
    folder.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    (folder / "core").rename(folder / "hookline")
    for package in folder.glob("contrib/*/src/hookline_*"):
        package.rename(folder / package.name)
    return folder


RSS = "import resource, sys; print('RSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"


def _hookline(*args: str, env: dict[str, str] | None = None) -> list[str]:
    return [sys.executable, "-m", "hookline.cli", "run", *args]


def _timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    for stale in cwd.glob("out.db*"):
        stale.unlink()
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _peak_rss_kib(command: list[str], cwd: Path, env: dict[str, str]) -> int:
    for stale in cwd.glob("out.db*"):
        stale.unlink()
    wrapper = (f"import subprocess; subprocess.run({command!r}, check=True, "
               f"stdout=subprocess.DEVNULL); {RSS}")
    out = subprocess.run([sys.executable, "-c", wrapper], cwd=cwd, env=env, check=True,
                         capture_output=True, text=True).stdout
    return int(out.split("RSS")[-1])


def _rounds(commands: dict[str, list[str]], cwd: Path, env: dict[str, str],
            repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            times[name].append(_timed(command, cwd, env))
    return times


def _table(title: str, times: dict[str, list[float]], events: int, reference: str) -> None:
    print(f"\n{title}")
    base = statistics.median(times[reference])
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:<34} {median:8.2f} s  {events / median:>10,.0f} events/s  "
              f"throughput x{base / median:5.2f} of {reference}")


def main(argv: Sequence[str] | None = None) -> int:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--events", type=int, default=None)
    extra.add_argument("--baseline", metavar="REV",
                       help="also time hookline as it was at this git revision, same rounds")
    known, rest = extra.parse_known_args(argv)
    args = parse_args(__doc__.partition("\n")[0], rest)
    events = known.events or (100_000 if args.quick else 1_000_000)
    repeats = 1 if args.quick else 3
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="hookline-bench-") as folder:
        work = Path(folder)
        env["HOOKLINE_CACHE_DIR"] = str(work / "cache")
        subprocess.run([sys.executable, "-m", "hookline.cli", "generate", "-n", str(events),
                        "-o", "in.jsonl"], cwd=work, env=env, check=True,
                       stderr=subprocess.DEVNULL)
        (work / "handwritten.py").write_text(HANDWRITTEN)
        try:
            import hookline_fraud  # noqa: F401
            import hookline_monitoring  # noqa: F401
            import hookline_ranking  # noqa: F401
        except ImportError:
            note("the contrib plugins are not installed: end-to-end comparison skipped")
        else:
            commands = {
                "hand-written script": [sys.executable, "handwritten.py", "in.jsonl", "out.db"],
                "hookline run (3 contrib plugins)": _hookline("in.jsonl", "--db", "out.db"),
                "hookline run, stage time limit off": [
                    "env", "HOOKLINE_STAGE_TIMEOUT=0", *_hookline("in.jsonl", "--db", "out.db")],
            }
            if known.baseline:
                tree = _baseline_tree(known.baseline, work / "baseline")
                # A shell line so that only this command sees the older package first.
                commands[f"hookline at {known.baseline}"] = [
                    "env", f"PYTHONPATH={tree}", f"HOOKLINE_CACHE_DIR={work / 'cache-base'}",
                    *_hookline("in.jsonl", "--db", "out.db")]
            times = _rounds(commands, work, env, repeats)
            _table(f"{events:,} events into SQLite", times, events, "hand-written script")
            ratio = statistics.median(
                h / k for h, k in zip(times["hand-written script"],
                                      times["hookline run (3 contrib plugins)"]))
            check("hookline throughput, x hand-written", ratio, ">=", 0.8)
            ratio = statistics.median(
                o / k for o, k in zip(times["hookline run, stage time limit off"],
                                      times["hookline run (3 contrib plugins)"]))
            check("hookline throughput with the stage time limit, x without", ratio, ">=", 0.97)
            if known.baseline:
                ratio = statistics.median(
                    b / k for b, k in zip(times[f"hookline at {known.baseline}"],
                                          times["hookline run (3 contrib plugins)"]))
                check(f"hookline throughput, x hookline at {known.baseline}", ratio, ">=", 0.97)

            # The small input is the large one's first tenth: the same users and the same
            # mix, only shorter (a separately generated file would have a tenth of the users).
            with open(work / "in.jsonl", "rb") as whole, open(work / "small.jsonl", "wb") as part:
                for _ in range(events // 10):
                    part.write(whole.readline())
            small = _peak_rss_kib(_hookline("small.jsonl", "--db", "out.db"), work, env)
            large = _peak_rss_kib(_hookline("in.jsonl", "--db", "out.db"), work, env)
            print(f"\npeak RSS: {events // 10:,} events {small / 1024:.1f} MiB, "
                  f"{events:,} events {large / 1024:.1f} MiB")
            check("peak RSS, large / small input", large / small, "<=", 1.10)

        site = write_installed(work / "site", "burn", textwrap.dedent(BURN_PLUGIN))
        burn_env = {**env, "PYTHONPATH": str(site), "HOOKLINE_PLUGINS": "burn"}
        times = _rounds({
            "inline": _hookline("in.jsonl", "--db", "out.db"),
            "process, 2 workers": _hookline("in.jsonl", "--db", "out.db", "--executor",
                                            "process", "--workers", "2"),
        }, work, burn_env, repeats)
        _table("process executor, a ~10 us stage", times, events, "inline")
        ratio = statistics.median(i / p for i, p in zip(times["inline"],
                                                         times["process, 2 workers"]))
        check("process executor (2 workers), x inline", ratio, ">=", 1.6)
    return finish(args, "end_to_end", ("hookline",))


if __name__ == "__main__":
    sys.exit(main())
