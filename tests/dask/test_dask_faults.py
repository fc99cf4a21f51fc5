"""Faults: an event on which a worker dies is dead-lettered (``worker died``, with the stage)
instead of stalling the run; the run killed with -9 at random moments and run again ends with
the database of an uninterrupted inline run."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _dask_support import RUN_OPTIONS, Cluster, committed_lines, hookline_run, succeeded

import hookline
from hookline._generate import write_jsonl
from hookline.config import load_config
from hookline.testing import database_content


def test_an_event_a_worker_dies_on_is_dead_lettered_with_its_stage(
    environment: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)  # the workers (and their children) start with these
    monkeypatch.syspath_prepend(environment["PYTHONPATH"].split(os.pathsep)[0])
    source = tmp_path / "in.jsonl"
    write_jsonl(source, 20_000, invalid_rate=0.03, seed=4)
    lines = source.read_bytes().splitlines()
    poison = json.loads(lines[12_345])["event_id"]
    monkeypatch.setenv("HOOKLINE_TEST_POISON", poison)
    config = load_config().with_(batch_size=2000)

    monkeypatch.setenv("HOOKLINE_TEST_POISON_MODE", "reject")
    hookline.run([str(source)], db=str(tmp_path / "inline.db"), config=config)
    monkeypatch.setenv("HOOKLINE_TEST_POISON_MODE", "exit")  # os._exit(3) in the stage
    report = hookline.run([str(source)], db=str(tmp_path / "dask.db"), config=config,
                          executor="dask", workers=2)

    inline, dask = (database_content(tmp_path / db) for db in ("inline.db", "dask.db"))
    [rejected] = [row for row in inline["dead_letters"] if row[1] == "poison"]
    [died] = [row for row in dask["dead_letters"] if row[0] == rejected[0]]
    assert died[1].startswith("worker died") and "exit status 3" in died[1], died
    assert died[2] == rejected[2] == "tally.poison" and died[6:8] == ("tally", "tally-plugin")
    # Everything else is what inline made of it: the other letters, the events, the state.
    assert [row for row in dask["dead_letters"] if row is not died] == [
        row for row in inline["dead_letters"] if row is not rejected]
    for table in ("events", "stage_state", "agg_by_user", "agg_tally_currency"):
        assert dask[table] == inline[table], table
    assert report.read == 20_000 and report.balanced


def test_the_run_killed_with_9_at_three_random_moments_resumes_to_the_inline_database(
    cluster: Cluster, environment: dict[str, str], work: Path, tmp_path: Path
) -> None:
    source = tmp_path / "events.jsonl"
    write_jsonl(source, 200_000, invalid_rate=0.03, seed=16)
    address = cluster.scheduler()
    cluster.worker("one")
    cluster.worker("two")
    cluster.wait_for(2)
    inline = tmp_path / "inline.db"
    succeeded(hookline_run(str(source), "--db", str(inline), *RUN_OPTIONS, env=environment,
                           cwd=work))

    db = tmp_path / "killed.db"
    command = [sys.executable, "-m", "hookline.cli", "run", str(source), "--db", str(db),
               *RUN_OPTIONS, "--executor", "dask", "--scheduler", address]
    moments = sorted(random.Random(2027).sample(range(15_000, 185_000, 1000), 3))
    for moment in moments:
        run = subprocess.Popen(command, cwd=work, env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while committed_lines(db) < moment and run.poll() is None:
            assert time.monotonic() < deadline, "no progress in two minutes"
            time.sleep(0.02)
        assert run.poll() is None, f"the run ended before line {moment}: {run.communicate()[1]!r}"
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
        assert moment <= committed_lines(db) < 200_000
    succeeded(hookline_run(*command[4:], env=environment, cwd=work))
    assert database_content(db) == database_content(inline)
    with sqlite3.connect(db) as connection:
        runs = connection.execute("SELECT count(*) FROM runs").fetchone()[0]
    assert runs == 1  # only the last run ended and recorded its report: the others were killed

