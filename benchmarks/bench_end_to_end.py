"""End to end: ``hookline run`` against a hand-written script doing the same work.

Three measurements, each a whole fresh process, run round-robin, medians over rounds:

1. Throughput: N generated events (5% invalid) through the three contrib plugins (fraud,
   ranking, monitoring) into SQLite, against ``handwritten.py``-style code inlined below that
   parses, checks the same schema rules, rejects the same currencies, computes the same
   score (the ranking plugin's own function), times each phase, aggregates and inserts the
   same rows in 5,000-row transactions. Target: hookline >= 0.8x its throughput.
2. Peak memory (max RSS) of ``hookline run`` on the first N/10 events and on all N: within
   10% (streaming: memory does not grow with the input's length).
3. The process executor, 2 workers, with a stage costing >= 5 us per event, against inline.
   Target: >= 1.6x inline's throughput.

    python benchmarks/bench_end_to_end.py [--events 1000000] [--quick]
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

HANDWRITTEN = r'''
import json, math, re, sqlite3, sys, time
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

con = sqlite3.connect(db, isolation_level=None)
con.execute("PRAGMA journal_mode=WAL"); con.execute("PRAGMA synchronous=NORMAL")
con.execute("CREATE TABLE events (event_id TEXT PRIMARY KEY, user_id TEXT, kind TEXT, ts INTEGER,"
            " amount REAL, currency TEXT, tags TEXT, properties TEXT, score REAL)")
con.execute("CREATE TABLE dead_letters (payload TEXT, reason TEXT, line INTEGER)")
con.execute("CREATE TABLE agg (user_id TEXT PRIMARY KEY, count INTEGER, amount_sum REAL)")
con.execute("CREATE TABLE checkpoints (source TEXT PRIMARY KEY, offset INTEGER)")
enc = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
timing = {"validate": 0, "score": 0}
rows, dead, agg, offset = [], [], {}, 0

def commit():
    con.execute("BEGIN")
    con.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)", rows)
    con.executemany("INSERT INTO dead_letters VALUES (?,?,?)", dead)
    con.executemany("INSERT INTO agg VALUES (?,?,?) ON CONFLICT(user_id) DO UPDATE SET "
                    "count = count + excluded.count, amount_sum = amount_sum + excluded.amount_sum",
                    [(u, c, s) for u, (c, s) in agg.items()])
    con.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?)", (path, offset))
    con.execute("COMMIT")
    rows.clear(); dead.clear(); agg.clear()

with open(path, "rb") as handle:
    for number, raw in enumerate(handle, 1):
        offset += len(raw)
        try:
            d = json.loads(raw)
        except ValueError as exc:
            dead.append((raw.decode(), str(exc), number))
        else:
            t0 = time.perf_counter_ns()
            problem = check(d)
            if problem is None and d["currency"] in BLOCKED:
                problem = "currency blocked"
            timing["validate"] += time.perf_counter_ns() - t0
            if problem is not None:
                dead.append((raw.decode(), problem, number))
            else:
                t0 = time.perf_counter_ns()
                score = relevance(d["kind"], d["amount"], d["tags"])
                timing["score"] += time.perf_counter_ns() - t0
                rows.append((d["event_id"], d["user_id"], d["kind"], d["ts"], d["amount"],
                             d["currency"], enc(d["tags"]), enc(d["properties"]), score))
                c, s = agg.get(d["user_id"], (0, 0.0))
                agg[d["user_id"]] = (c + 1, s + d["amount"])
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
            times = _rounds({
                "hand-written script": [sys.executable, "handwritten.py", "in.jsonl", "out.db"],
                "hookline run (3 contrib plugins)": _hookline("in.jsonl", "--db", "out.db"),
            }, work, env, repeats)
            _table(f"{events:,} events into SQLite", times, events, "hand-written script")
            ratio = statistics.median(
                h / k for h, k in zip(times["hand-written script"],
                                      times["hookline run (3 contrib plugins)"]))
            check("hookline throughput, x hand-written", ratio, ">=", 0.8)

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

        site = work / "site"
        (site / "burn_plugin").mkdir(parents=True)
        (site / "burn_plugin" / "__init__.py").write_text(textwrap.dedent(BURN_PLUGIN))
        info = site / "burn_plugin-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: burn-plugin\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text("[hookline.plugins]\nburn = burn_plugin\n")
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
