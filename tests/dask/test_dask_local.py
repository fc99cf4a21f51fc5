"""A LocalCluster of two workers leaves the database an inline run leaves, and the report
says where the events went and what the workers measured."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _dask_support import PLUGINS, RUN_OPTIONS, hookline_run, succeeded

from hookline._executors.dask import LOG_LENGTH
from hookline.testing import database_content, write_installed

#: A plugin that notes, after each commit, how many messages the run process's Dask comms
#: (the client's, and its LocalCluster's scheduler's to each worker) keep for debugging.
LOGS = """
import gc, json, os
import dask, hookline
from distributed.batched import BatchedSend

@hookline.hookimpl
def hookline_batch_committed(run, report, pipeline):
    comms = [o for o in gc.get_objects() if isinstance(o, BatchedSend)]
    with open(os.environ["HOOKLINE_TEST_LOGS"], "a") as out:
        out.write(json.dumps({
            "setting": dask.config.get("distributed.admin.low-level-log-length"),
            "comms": len(comms),
            "kept": max(len(comm.recent_message_log) for comm in comms),
            "bound": max(comm.recent_message_log.maxlen for comm in comms)}) + "\\n")
"""


def _report_of(db: Path) -> dict[str, Any]:
    with sqlite3.connect(db) as connection:
        [(text,)] = connection.execute("SELECT report FROM runs").fetchall()
    report: dict[str, Any] = json.loads(text)
    return report


def test_a_local_cluster_leaves_what_inline_leaves(
    events_100k: Path, inline_100k: dict[str, Any], environment: dict[str, str], work: Path,
    tmp_path: Path
) -> None:
    done = succeeded(hookline_run(
        str(events_100k), "--db", str(tmp_path / "dask.db"), *RUN_OPTIONS, "--executor", "dask",
        "--workers", "2", "--format", "json", "--metrics-file", str(tmp_path / "metrics.prom"),
        env=environment, cwd=work))
    assert database_content(tmp_path / "dask.db") == inline_100k

    report, inline = json.loads(done.stdout), _report_of(work / "inline-100k.db")
    executor = report["executor"]
    assert executor["name"] == "dask" and executor["cluster"] == "LocalCluster"
    assert executor["scheduler"].startswith("tcp://127.0.0.1:") and executor["workers"] == 2
    shares = executor["events_by_worker"]
    assert len(shares) == 2 and sum(shares.values()) == report["read"] == 100_000
    assert min(shares.values()) > 30_000, shares  # one partition of the users each
    assert f"scheduler {executor['scheduler']}" in done.stderr  # said when it started
    if executor["dashboard"]:  # Dask serves one when bokeh is installed
        assert executor["dashboard"] in done.stderr
    # What the workers measured reaches the report: the stage statistics (the same events
    # sampled as inline), timed() of the configured stage, the flag decisions.
    calls = {name: stage["calls"] for name, stage in report["stages"].items()}
    assert calls == {name: stage["calls"] for name, stage in inline["stages"].items()}
    assert report["sections"]["timed"]["tally.count"]["calls"] == (
        inline["sections"]["timed"]["tally.count"]["calls"]) > 90_000
    assert report["flags"] == inline["flags"] and report["flags"]
    metrics = (tmp_path / "metrics.prom").read_text()
    assert 'hookline_stage_latency_seconds_count{stage="tally.count"}' in metrics
    assert 'hookline_timed_calls_total{stage="tally.count"}' in metrics


def test_the_runs_dask_comms_keep_few_messages_so_memory_does_not_grow_with_the_input(
    environment: dict[str, str], work: Path, tmp_path: Path
) -> None:
    """Dask keeps the last 1,000 messages under 1 MB of each comm by default (a log for its
    developers): with the batches' lines in them, the run's process, which holds the
    LocalCluster's scheduler, grew by about the input's size (429 MiB at 1M events, 144 MiB at
    100k). During a run each comm keeps at most LOG_LENGTH."""
    from hookline._generate import write_jsonl

    source, notes = tmp_path / "in.jsonl", tmp_path / "logs.jsonl"
    write_jsonl(source, 6_000, invalid_rate=0.03, seed=9)
    site = write_installed(tmp_path / "site", "logs", LOGS)
    env = {**environment, "HOOKLINE_TEST_LOGS": str(notes),
           "HOOKLINE_PLUGINS": f"{PLUGINS},logs",
           "PYTHONPATH": f"{site}{os.pathsep}{environment['PYTHONPATH']}"}
    succeeded(hookline_run(str(source), "--db", str(tmp_path / "dask.db"), "--batch-size",
                           "200", "--executor", "dask", "--workers", "2", env=env, cwd=work))
    seen = [json.loads(line) for line in notes.read_text().splitlines()]
    assert len(seen) >= 30  # one note per batch committed
    # the client's comm and the scheduler's to each of the two workers (and theirs back)
    assert min(note["comms"] for note in seen) >= 3
    assert {note["setting"] for note in seen} == {note["bound"] for note in seen} == {LOG_LENGTH}
    assert max(note["kept"] for note in seen) == LOG_LENGTH  # full, and no fuller


def test_what_the_workers_log_is_logged_by_the_run_as_inline(
    environment: dict[str, str], work: Path, tmp_path: Path
) -> None:
    """--trace-hooks (and any record a plugin logs in a stage) on the workers reaches the
    run's stderr: the same trace lines as inline, once each."""
    from collections import Counter

    from hookline._generate import write_jsonl

    source = tmp_path / "in.jsonl"
    write_jsonl(source, 300, invalid_rate=0.03, seed=4)
    traced = {}
    for executor in ("inline", "dask"):
        done = succeeded(hookline_run(
            str(source), "--db", str(tmp_path / f"{executor}.db"), "--trace-hooks",
            "--trace-sample", "1", "--executor", executor, "--workers", "2",
            env=environment, cwd=work))
        traced[executor] = Counter(re.sub(r" in [0-9.]+ ms", "", line)
                                   for line in done.stderr.splitlines()
                                   if "hookline.trace" in line)
    assert traced["dask"] == traced["inline"]
    assert traced["inline"]["INFO hookline.trace: tally.count (validate) ok"] > 250


SCRIPT = """
import hookline
{guard}report = hookline.run([{source!r}], db={db!r}, executor="dask", workers=2)
{indent}print("read", report.read)
"""


def test_a_script_without_the_main_guard_is_told_to_add_it_not_left_hanging(
    environment: dict[str, str], work: Path, tmp_path: Path
) -> None:
    """Dask starts its workers with multiprocessing's spawn method, which imports the main
    module again in each: an unguarded hookline.run() there started a second run, which
    waited for the first's lock while the first waited for its workers. Now the worker
    refuses, saying what to write, and the run ends with an error; with the guard it runs."""
    from hookline._generate import write_jsonl

    source = tmp_path / "in.jsonl"
    write_jsonl(source, 200, seed=3)
    for guarded in (False, True):
        script = tmp_path / f"script_{guarded}.py"
        script.write_text(SCRIPT.format(
            guard='if __name__ == "__main__":\n    ' if guarded else "",
            indent="    " if guarded else "", source=str(source),
            db=str(tmp_path / f"{guarded}.db")))
        started = time.monotonic()
        done = subprocess.run([sys.executable, str(script)], cwd=work, env=environment,
                              capture_output=True, text=True, timeout=240)
        took = time.monotonic() - started
        if guarded:
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == "read 200"
        else:
            assert done.returncode == 1, done.stderr
            assert 'Put the call under `if __name__ == "__main__":`' in done.stderr
            assert done.stderr.rstrip().splitlines()[-1].startswith(
                "hookline.errors.ExecutorError: the local Dask cluster could not start its 2 "
                "worker processes")
            assert took < 60, f"{took:.0f} s"


def test_an_input_delivered_again_is_set_aside_before_the_stages_as_inline_does(
    environment: dict[str, str], work: Path, tmp_path: Path
) -> None:
    """The same events again (a copy of the input: a new file) are duplicates: set aside
    before any stage changes its state for them, whichever executor runs them."""
    from hookline._generate import write_jsonl

    first, again = tmp_path / "first.jsonl", tmp_path / "again.jsonl"
    write_jsonl(first, 6_000, invalid_rate=0.03, seed=8)
    again.write_bytes(first.read_bytes())
    duplicates = {}
    for executor in ("inline", "dask"):
        for source in (first, again):
            done = succeeded(hookline_run(
                str(source), "--db", str(tmp_path / f"{executor}.db"), *RUN_OPTIONS,
                "--executor", executor, "--workers", "2", "--format", "json",
                env=environment, cwd=work))
        duplicates[executor] = json.loads(done.stdout)["duplicates"]
    inline, dask = (database_content(tmp_path / f"{name}.db") for name in ("inline", "dask"))
    assert dask == inline
    assert duplicates["dask"] == duplicates["inline"] > 5_000
