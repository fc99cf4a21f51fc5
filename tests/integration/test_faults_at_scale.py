"""Issue 5's first acceptance run: 100,000 events, 5 % of them invalid, one plugin raising on
1 % of them, one exceeding its timeout on 0.1 %: every line ends exactly once, exit 0.

The plugin is discovered through a real entry point (a ``.dist-info`` on ``PYTHONPATH``), its
timeout injected by ``hookline.toml``, and ``hookline run`` is a process of its own.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from hookline._generate import write_jsonl
from hookline.testing import write_installed

PLUGIN = '''
import time

import hookline


def _number(event):
    return int(event.event_id.rpartition("-")[2], 16)


class Noise(hookline.Stage, phase="validate", name="noise"):
    """Filters out, on purpose, every event whose number ends in 55."""

    def process(self, event):
        if _number(event) % 100 == 55:
            raise hookline.Drop()


class Flaky(hookline.Stage, phase="enrich", name="flaky"):
    """A lookup that fails for 1 % of the events."""

    def process(self, event):
        if _number(event) % 100 == 7:
            raise ConnectionError(f"lookup failed for {event.event_id}")


class Slow(hookline.Stage, phase="score", name="slow"):
    """A model that hangs for 0.1 % of the events, far past its 0.2 s timeout (a busy
    machine can hold an ordinary call up for tens of milliseconds)."""

    def process(self, event):
        if _number(event) % 1000 == 3:
            time.sleep(2)
'''

EVENTS = 100_000


def test_invalid_raising_and_timed_out_events_all_end_exactly_once(tmp_path: Path) -> None:
    site = write_installed(tmp_path / "site", "faulty", textwrap.dedent(PLUGIN))
    (tmp_path / "hookline.toml").write_text('[behaviors]\n"faulty.slow" = ["timeout(0.2)"]\n')
    source = tmp_path / "events.jsonl"
    stats = write_jsonl(source, EVENTS, invalid_rate=0.05, seed=11)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")},
           "PYTHONPATH": str(site), "HOOKLINE_PLUGINS": "faulty",
           "HOOKLINE_CACHE_DIR": str(tmp_path / "cache")}

    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "hookline.cli", "run", str(source), "--db",
                          "out.db"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    took = time.monotonic() - started
    assert run.returncode == 0, run.stderr

    with sqlite3.connect(tmp_path / "out.db") as db:
        report = json.loads(db.execute("SELECT report FROM runs").fetchone()[0])
        stored = {event_id for (event_id,) in db.execute("SELECT event_id FROM events")}
        dead = db.execute("SELECT line, stage, reason FROM dead_letters").fetchall()
    assert report["read"] == EVENTS
    assert report["accepted"] + report["dropped"] + report["dead_lettered"] == EVENTS

    # Each input line ends in exactly one place: stored, dropped on purpose, or dead-lettered.
    ids: dict[int, str] = {}  # line -> event_id, for the lines that parse and have one
    for line, text in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        try:
            ids[line] = str(json.loads(text)["event_id"])
        except (ValueError, KeyError, TypeError):
            pass
    dead_lines = [line for line, _, _ in dead]
    assert len(dead_lines) == len(set(dead_lines)) == report["dead_lettered"]
    by_stage: dict[str, list[int]] = {}
    for line, stage, _ in dead:
        by_stage.setdefault(stage, []).append(line)
    assert len(by_stage.get("schema", [])) + len(by_stage.get("parse", [])) == stats.invalid
    invalid = set(by_stage.get("schema", []) + by_stage.get("parse", []))
    valid = [line for line in range(1, EVENTS + 1) if line not in invalid]
    numbers = {line: int(ids[line].rpartition("-")[2], 16) for line in valid}
    dropped = {line for line in valid if numbers[line] % 100 == 55}
    failed = {line for line in valid if numbers[line] % 100 == 7}
    timed_out = {line for line in valid if numbers[line] % 1000 == 3}
    assert set(by_stage["faulty.flaky"]) == failed
    assert set(by_stage["faulty.slow"]) == timed_out
    assert report["dropped"] == len(dropped) > 0
    accepted = set(valid) - dropped - failed - timed_out
    assert stored == {ids[line] for line in accepted}
    assert len(stored) == report["accepted"]
    assert dropped.isdisjoint(failed | timed_out) and failed.isdisjoint(timed_out)
    assert len(timed_out) >= 80 and len(failed) >= 800  # 0.1 % and 1 % of the valid events

    reasons = {reason for _, stage, reason in dead if stage == "faulty.slow"}
    assert reasons == {"timeout after 0.2 s in faulty.slow"}
    # The run did not wait for the sleepers: each would have cost 2 s.
    assert took < len(timed_out) * 2
