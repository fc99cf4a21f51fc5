"""The PostgreSQL sink: ``hookline run --db postgresql://…`` against a hand-written psycopg
script doing the same work.

N generated events (5% invalid) through the three contrib plugins (fraud, ranking,
monitoring) into a throwaway PostgreSQL server (started as the tests start theirs, from
``tests/_postgres.py``). The peer is ``benchmarks/handwritten.py`` given the server's
``postgresql://`` URL, the end-to-end benchmark's peer: it does the work hookline does with
the three plugins (its docstring lists it: the schema check, every fraud rule at its defaults
with its per-user state, the ranking score and histories, the sampled phase timings, the
duplicate ids, the aggregates, the state and the checkpoint, a second run resuming) and
writes the rows hookline's PostgreSQL sink writes, into the same tables with the same types,
as one would by hand with psycopg: ``COPY`` for the events and the dead letters, ``INSERT …
SELECT FROM unnest(…) ON CONFLICT DO UPDATE`` for the aggregate deltas and the changed state,
one transaction per 5,000 lines. ``tests/test_bench_handwritten_postgres.py`` checks that
both store the same rows.

Each command writes into a new database of its own; whole fresh processes, run round-robin,
medians over rounds. Target: hookline >= 0.8x the script's throughput. The same rounds time
hookline into SQLite, to show what the sink itself costs (no target).

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

from _harness import CONTRIB_MODULES, check, finish, generate_events, missing, note, parse_run_args

HANDWRITTEN = Path(__file__).resolve().parent / "handwritten.py"


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
    absent = missing(*CONTRIB_MODULES, "psycopg")
    if absent is not None:
        note(f"{absent} is not installed: the PostgreSQL comparison needs psycopg and the "
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
            commands: dict[str, Callable[[str], list[str]]] = {
                "hand-written psycopg script": lambda url: [
                    sys.executable, str(HANDWRITTEN), "in.jsonl", url],
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
