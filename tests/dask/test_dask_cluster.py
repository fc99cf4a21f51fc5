"""A cluster of separate processes (``dask scheduler``, two ``dask worker``) started by the
test: the same database as inline, with a worker killed mid-run too; a worker with another
version of a plugin stops the run before it processes anything; a scheduler that is not
there is said within the timeout."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _dask_support import (
    RUN_OPTIONS,
    Cluster,
    committed_lines,
    free_port,
    hookline_run,
    site_with_tally,
    succeeded,
)

from hookline.testing import database_content


def test_separate_processes_then_a_worker_killed_mid_run(
    cluster: Cluster, events_100k: Path, inline_100k: dict[str, Any],
    environment: dict[str, str], work: Path, tmp_path: Path
) -> None:
    address = cluster.scheduler()
    cluster.worker("one")
    victim = cluster.worker("two")
    cluster.wait_for(2)
    dask = ("--executor", "dask", "--scheduler", address)

    succeeded(hookline_run(str(events_100k), "--db", str(tmp_path / "whole.db"), *RUN_OPTIONS,
                           *dask, env=environment, cwd=work))
    assert database_content(tmp_path / "whole.db") == inline_100k

    killed = tmp_path / "killed.db"
    run = subprocess.Popen([sys.executable, "-m", "hookline.cli", "run", str(events_100k),
                            "--db", str(killed), *RUN_OPTIONS, *dask], cwd=work,
                           env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while committed_lines(killed) < 20_000 and run.poll() is None:
        assert time.monotonic() < deadline, "the run committed nothing in two minutes"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    at = committed_lines(killed)
    _, err = run.communicate(timeout=300)
    assert run.returncode == 0, err.decode()
    assert at < 100_000, "the worker must die while the run is under way"
    assert victim.wait(timeout=10) == -signal.SIGKILL
    assert database_content(killed) == inline_100k


def test_a_worker_with_another_plugin_version_stops_the_run_before_it_starts(
    cluster: Cluster, events_100k: Path, environment: dict[str, str], work: Path,
    tmp_path: Path
) -> None:
    cluster.scheduler()
    cluster.worker("same")
    older = site_with_tally(tmp_path / "older", "1.0")
    odd = cluster.worker("odd", env={**environment, "PYTHONPATH": str(older)})
    cluster.wait_for(2)
    db = tmp_path / "never.db"
    started = time.monotonic()
    done = hookline_run(str(events_100k), "--db", str(db), *RUN_OPTIONS, "--executor", "dask",
                        "--scheduler", cluster.address, env=environment, cwd=work)
    assert done.returncode == 1, done.stderr
    assert time.monotonic() - started < 60
    assert "nothing was processed" in done.stderr
    assert "has tally-plugin 1.0, this run has 2.0" in done.stderr
    assert odd.poll() is None  # the worker is named by its address, the one that differs:
    lines = [line for line in done.stderr.splitlines() if "tally-plugin 1.0" in line]
    assert lines and all(" worker tcp://127.0.0.1:" in line for line in lines)
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM events").fetchone() == (0,)
        assert connection.execute("SELECT count(*) FROM checkpoints").fetchone() == (0,)


def test_a_scheduler_that_is_not_there_is_said_within_the_timeout(
    environment: dict[str, str], work: Path, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"event_id": "a", "user_id": "u", "kind": "view", "ts": 1}\n')
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    done = hookline_run(str(source), "--db", str(tmp_path / "x.db"), "--executor", "dask",
                        env={**environment, "DASK_SCHEDULER_ADDRESS": address}, cwd=work,
                        timeout=120)
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert f"cannot reach the Dask scheduler at {address}" in done.stderr
    assert took < 60, f"{took:.0f} s"


@pytest.mark.parametrize(("address", "why"), [
    ("localhost", "missing port number"),
    ("http://127.0.0.1:8786", "unknown address scheme 'http'"),
    ("tcp://127.0.0.1:port", "invalid literal"),
])
def test_a_scheduler_address_dask_cannot_use_is_refused_at_once(
    address: str, why: str, environment: dict[str, str], work: Path, tmp_path: Path
) -> None:
    """A usage error (exit 2) naming the address, the reason and the form to give, before
    the run starts; not a traceback, and no wait at the exit."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"event_id": "a", "user_id": "u", "kind": "view", "ts": 1}\n')
    started = time.monotonic()
    done = hookline_run(str(source), "--db", str(tmp_path / "x.db"), "--executor", "dask",
                        "--scheduler", address, env=environment, cwd=work, timeout=120)
    took = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"hookline run: {address!r} is not the address of a Dask "
                                  "scheduler"), done.stderr
    assert why in done.stderr and "tcp://HOST:PORT" in done.stderr
    assert "Traceback" not in done.stderr
    assert took < 15, f"{took:.0f} s"


def test_without_the_extra_the_run_says_what_to_install(
    environment: dict[str, str], work: Path, tmp_path: Path
) -> None:
    """A Python in which ``distributed`` cannot be found (as without ``hookline[dask]``)."""
    hide = ("import sys, importlib.abc\n"
            "class Hide(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.partition('.')[0] in ('dask', 'distributed'):\n"
            "            raise ModuleNotFoundError(name)\n"
            "sys.meta_path.insert(0, Hide())\n"
            "from hookline.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    source = tmp_path / "in.jsonl"
    source.write_text('{"event_id": "a", "user_id": "u", "kind": "view", "ts": 1}\n')
    done = subprocess.run([sys.executable, "-c", hide, "run", str(source), "--db",
                           str(tmp_path / "x.db"), "--executor", "dask"], cwd=work,
                          env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert 'pip install "hookline[dask]"' in done.stderr
    assert not (tmp_path / "x.db").exists()
