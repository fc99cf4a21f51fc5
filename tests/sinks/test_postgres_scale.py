"""PostgreSQL at scale, with the three contrib plugins installed: the same data as SQLite from
200,000 events, the uninterrupted database after kill -9 at five random moments, and two runs
of different inputs at the same time losing no update."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _postgres import Server, normalized

from hookline._generate import write_jsonl
from hookline.testing import write_installed

pytestmark = pytest.mark.integration

#: Aggregate sums depend on how events are grouped into batches: the same in every run here.
BATCH = ("--batch-size", "2000")
CONTRIB = {"fraud", "ranking", "monitoring"}


def _command(source: Path, db: str, *more: str) -> list[str]:
    return [sys.executable, "-m", "hookline.cli", "run", str(source), "--db", db, *BATCH,
            "--format", "json", *more]


def _run(source: Path, db: str, *more: str, env: dict[str, str] | None = None
         ) -> dict[str, Any]:
    done = subprocess.run(_command(source, db, *more), capture_output=True, text=True,
                          timeout=600, check=False, cwd=source.parent,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_200000_events_leave_the_same_tables_as_sqlite(
    postgres_url: str, tmp_path: Path,
) -> None:
    source = tmp_path / "events.jsonl"
    write_jsonl(source, 200_000, invalid_rate=0.05, seed=16)
    sqlite = str(tmp_path / "same.db")
    runs = [subprocess.Popen(_command(source, db), cwd=tmp_path, text=True,  # side by side
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for db in (postgres_url, sqlite)]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (_, err) in zip(runs, outputs):
        assert run.returncode == 0, err
    into_postgres, into_sqlite = (json.loads(out) for out, _ in outputs)
    assert {plugin["name"] for plugin in into_postgres["plugins"]} >= CONTRIB
    assert into_postgres["accepted"] == into_sqlite["accepted"] > 150_000
    assert into_postgres["dead_lettered"] == into_sqlite["dead_lettered"] > 5_000
    in_postgres, in_sqlite = normalized(postgres_url), normalized(sqlite)
    for table, rows in in_sqlite.items():
        assert rows, f"{table}: the SQLite run left no rows: nothing compared"
        assert in_postgres[table] == rows, f"{table} differs between PostgreSQL and SQLite"


def _committed(url: str) -> int:
    """How far the input is committed in ``url`` (its checkpoint's byte offset; 0: none)."""
    import psycopg

    with psycopg.connect(url) as connection:
        try:
            row = connection.execute('SELECT max("offset") FROM checkpoints').fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return int(row[0] or 0) if row else 0


def test_kill_9_at_five_random_moments_then_resume(
    postgres_server: Server, tmp_path: Path,
) -> None:
    """60,000 events (not 200,000: a whole run, five killed ones and a last one fit in a
    minute on a busy two-core machine). Five random points of the input, in order: each run
    is killed with SIGKILL once its commits pass the next point, after a random fraction of a
    batch more (so a kill lands anywhere: in a commit, between two), and the next run resumes
    from there."""
    source = tmp_path / "events.jsonl"
    write_jsonl(source, 60_000, invalid_rate=0.05, seed=17)
    size = source.stat().st_size
    whole, crashed = postgres_server.create_database(), postgres_server.create_database()
    _run(source, whole)
    seed = int.from_bytes(os.urandom(4), "big")
    chance = random.Random(seed)
    points = sorted(chance.uniform(0.05, 0.9) * size for _ in range(5))
    kills: list[int] = []
    for point in points:
        run = subprocess.Popen(_command(source, crashed), cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while _committed(crashed) < point and run.poll() is None:
            assert time.monotonic() < deadline, "the run commits nothing"
            time.sleep(0.01)
        time.sleep(chance.uniform(0, 0.1))
        assert run.poll() is None, f"the run ended before the kill (seed {seed})"
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=60)
        kills.append(_committed(crashed))
    last = _run(source, crashed)
    assert 0 < kills[-1] < size and last["read"] < 60_000  # the last run resumed
    assert normalized(crashed) == normalized(whole), (
        f"killed at {kills} bytes committed of {size:,} (seed {seed}), each time run again: "
        "the database differs from an uninterrupted run's")


#: A stateful stage: each user's running count and total, kept in the stage's state.
_TALLY_PLUGIN = '''
import hookline


class Tally(hookline.Stage, phase="enrich", name="per_user"):
    def process(self, event):
        tally = self.state.setdefault(event.user_id, {"events": 0, "amount": 0.0})
        tally["events"] += 1
        tally["amount"] = round(tally["amount"] + event.amount, 2)
'''


def test_two_runs_of_different_inputs_at_once_lose_no_update(
    postgres_server: Server, tmp_path: Path,
) -> None:
    """Both complete, their counts add up, each user's state equals a sequential run's (the
    same users appear in both inputs), and nothing is stored twice."""
    site = write_installed(tmp_path / "site", "tally", _TALLY_PLUGIN)
    env = {"PYTHONPATH": str(site), "HOOKLINE_PLUGINS": "tally,fraud"}
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    write_jsonl(first, 30_000, invalid_rate=0.05, seed=21)
    write_jsonl(second, 30_000, invalid_rate=0.05, seed=22)
    together, one_by_one = postgres_server.create_database(), postgres_server.create_database()
    runs = [subprocess.Popen(_command(source, together), cwd=tmp_path, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, **env}) for source in (first, second)]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (_, err) in zip(runs, outputs):
        assert run.returncode == 0, err
    reports = [json.loads(out) for out, _ in outputs]
    waited = ["another run is writing into" in err for _, err in outputs]
    assert waited.count(True) == 1, outputs  # one ran, the other waited and said so
    assert sum(report["read"] for report in reports) == 60_000
    order = (first, second) if waited[1] else (second, first)
    sequential = [_run(source, one_by_one, env=env) for source in order]
    accepted = sum(report["accepted"] for report in reports)
    assert accepted == sum(report["accepted"] for report in sequential)
    concurrent, alone = normalized(together), normalized(one_by_one)
    assert len(concurrent["events"]) == accepted  # each accepted event stored once
    assert concurrent["stage_state"], "the stateful stage kept no state: nothing compared"
    for table, rows in alone.items():
        assert concurrent[table] == rows, f"{table} differs from a sequential run's"
