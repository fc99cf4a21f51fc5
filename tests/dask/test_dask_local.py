"""A LocalCluster of two workers leaves the database an inline run leaves, and the report
says where the events went and what the workers measured."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from _dask_support import RUN_OPTIONS, hookline_run, succeeded

from hookline.testing import database_content


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
