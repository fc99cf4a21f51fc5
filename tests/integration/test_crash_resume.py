"""Exactly once: kill -9 a run at random moments, re-run, and get the uninterrupted database."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from hookline._generate import write_jsonl
from hookline.testing import database_content


def _hookline(*args: str, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hookline.cli", "run", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_kill_9_at_five_random_moments_then_resume(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    write_jsonl(source, 200_000, invalid_rate=0.05, seed=7)
    batches = ("--batch-size", "2000")  # float sums are grouped by batch: keep it the same
    whole = _hookline(str(source), "--db", "whole.db", *batches, cwd=tmp_path)
    started = time.monotonic()
    assert whole.wait(timeout=600) == 0
    duration = time.monotonic() - started

    moments = random.Random(2026).sample(range(5, 95), 5)
    kills = 0
    for percent in sorted(moments):
        run = _hookline(str(source), "--db", "crashed.db", *batches, cwd=tmp_path)
        time.sleep(duration * percent / 100 / 6)  # five kills must land before the end
        if run.poll() is None:
            os.kill(run.pid, signal.SIGKILL)
            kills += 1
        run.wait(timeout=600)
    assert kills >= 3, "the runs finished before they could be killed: kill sooner"
    final = _hookline(str(source), "--db", "crashed.db", *batches, cwd=tmp_path)
    assert final.wait(timeout=600) == 0
    assert database_content(tmp_path / "crashed.db") == database_content(tmp_path / "whole.db")


def test_sigterm_finishes_the_batch_and_exits_130(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    write_jsonl(source, 100_000, invalid_rate=0.05, seed=8)
    run = _hookline(str(source), "--db", "out.db", "--batch-size", "1000", cwd=tmp_path)
    time.sleep(1.5)
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err  # an interrupted run has its own status
    assert b"SIGTERM received" in err
    with sqlite3.connect(tmp_path / "out.db") as connection:
        [(offset,)] = connection.execute("SELECT offset FROM checkpoints").fetchall()
        [(read,)] = connection.execute(
            "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM dead_letters)"
        ).fetchall()
    assert 0 < offset < source.stat().st_size and 0 < read < 100_000
