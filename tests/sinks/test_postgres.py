"""The PostgreSQL sink against a real server (``postgres_server``, started by the tests): the
conformance kit, what a user sees when the database cannot be used, passwords, values
PostgreSQL refuses, the process executor, and a second run waiting for the first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from _postgres import Server, normalized

from hookline._generate import write_jsonl
from hookline.testing import SinkConformance, write_installed

pytestmark = pytest.mark.integration


class TestPostgresSink(SinkConformance):
    """The kit's tests, each against new databases on the test server."""

    kills = 5  # kill -9 at five random moments, each followed by a run again

    @pytest.fixture
    def new_sink_url(self, postgres_server: Server) -> Callable[[], str]:
        return postgres_server.create_database


def _hookline(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
              ) -> subprocess.CompletedProcess[str]:
    """``hookline ARGS`` in a process of its own, as a user types it."""
    return subprocess.run([sys.executable, "-m", "hookline.cli", *args], cwd=cwd,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=300, check=False)


def _events(folder: Path, count: int = 2_000, seed: int = 5) -> Path:
    path = folder / f"events-{count}-{seed}.jsonl"
    write_jsonl(path, count, invalid_rate=0.05, seed=seed)
    return path


def test_the_password_comes_from_pgpassword_and_is_never_shown(
    postgres_server: Server, postgres_url: str, tmp_path: Path,
) -> None:
    source = _events(tmp_path)
    secret = postgres_server.password
    bare = postgres_url.replace(f":{secret}@", "@")
    assert secret not in bare
    refused = _hookline("run", str(source), "--db", bare, env={"PGPASSWORD": "wrong"})
    assert refused.returncode == 6, refused.stderr
    done = _hookline("run", str(source), "--db", bare, "-v", env={"PGPASSWORD": secret})
    assert done.returncode == 0, done.stderr
    assert "accepted" in done.stdout
    # with the password in the URL: the report, the logs and the runs table never show it
    shown = _hookline("run", str(_events(tmp_path, seed=6)), "--db", postgres_url, "-v",
                      "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert "127.0.0.1" in shown.stdout + shown.stderr  # the database is named...
    assert secret not in shown.stdout + shown.stderr  # ...its password is not
    [(report,)] = _query(postgres_url, "SELECT report::text FROM runs ORDER BY finished_at "
                                       "DESC LIMIT 1")
    assert secret not in report


def _query(url: str, statement: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url) as connection:
        return connection.execute(statement).fetchall()  # type: ignore[arg-type]


@pytest.mark.parametrize(("database", "said", "advice"), [
    ("nosuchdb", 'database "nosuchdb" does not exist', "createdb nosuchdb"),
    ("wrong password", "password authentication failed", "PGPASSWORD"),
])
def test_a_database_that_cannot_be_used_exits_6_with_the_fix(
    postgres_server: Server, tmp_path: Path, database: str, said: str, advice: str,
) -> None:
    url = (postgres_server.url("nosuchdb") if database == "nosuchdb"
           else postgres_server.url().replace(postgres_server.password, "not-the-password"))
    done = _hookline("run", str(_events(tmp_path, 50)), "--db", url)
    assert done.returncode == 6, done.stderr
    assert said in done.stderr and advice in done.stderr
    assert "Traceback" not in done.stderr
    assert postgres_server.password not in done.stderr
    assert "not-the-password" not in done.stderr  # a wrong password is a secret too


def test_an_event_postgresql_cannot_store_is_dead_lettered_and_the_batch_kept(
    postgres_url: str, tmp_path: Path,
) -> None:
    """JSON allows the NUL character in a string; PostgreSQL's text and jsonb do not. The
    event is dead-lettered by the sink, the rest of its batch is stored, and a second run
    does not trip on it again."""
    source = tmp_path / "nul.jsonl"
    lines = [{"event_id": f"e{i}", "user_id": "u1", "kind": "view", "ts": 1_000 + i,
              "properties": {"note": "a\u0000b" if i == 3 else "fine"}} for i in range(6)]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    done = _hookline("run", str(source), "--db", postgres_url, "--format", "json",
                     env={"HOOKLINE_PLUGINS": ""})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["accepted"], report["dead_lettered"]) == (5, 1)
    [(stage, reason, event_id)] = _query(postgres_url,
                                         "SELECT stage, reason, event_id FROM dead_letters")
    assert (stage, event_id) == ("sink", "e3") and reason.startswith("cannot be stored")
    assert sorted(_query(postgres_url, "SELECT event_id FROM events")) == [
        (f"e{i}",) for i in (0, 1, 2, 4, 5)]
    assert _query(postgres_url, "SELECT count FROM agg_by_kind") == [(5,)]
    again = _hookline("run", str(source), "--db", postgres_url, "--format", "json",
                      env={"HOOKLINE_PLUGINS": ""})
    assert json.loads(again.stdout)["read"] == 0, again.stderr


@pytest.mark.parametrize("executor", ["process", "dask"])
def test_every_executor_writes_what_inline_writes(
    postgres_server: Server, tmp_path: Path, executor: str,
) -> None:
    """The process executor's workers read the committed state and ids through the sink's
    reader; the Dask executor's get them from the run. Two runs of one input, in two halves
    into two databases, inline and with two workers, leave the same rows (the contrib
    plugins' stateful fraud and ranking stages included)."""
    lines = _events(tmp_path, 20_000, seed=9).read_text().splitlines(keepends=True)
    halves = [tmp_path / "first.jsonl", tmp_path / "second.jsonl"]
    halves[0].write_text("".join(lines[:10_000]))
    halves[1].write_text("".join(lines[10_000:]))
    inline, spread = postgres_server.create_database(), postgres_server.create_database()
    for url, options in ((inline, ()), (spread, ("--executor", executor, "--workers", "2"))):
        for half in halves:  # the second run starts from the first's committed state
            done = _hookline("run", str(half), "--db", url, "--batch-size", "1000", *options)
            assert done.returncode == 0, done.stderr
    expected = normalized(inline)
    assert expected["stage_state"]  # the state was exercised
    assert normalized(spread) == expected


def test_a_second_run_waits_for_the_first_and_says_so(
    postgres_url: str, tmp_path: Path,
) -> None:
    site = write_installed(tmp_path / "site", "slow", _SLOW_PLUGIN)
    env = {"PYTHONPATH": str(site), "HOOKLINE_PLUGINS": "slow"}
    first_input, second_input = _events(tmp_path, 3_000, seed=1), _events(tmp_path, 300, seed=2)
    command = [sys.executable, "-m", "hookline.cli", "run", "--db", postgres_url,
               "--batch-size", "500"]
    first = subprocess.Popen([*command, str(first_input)], env={**os.environ, **env},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not _query(postgres_url, "SELECT 1 FROM pg_stat_activity WHERE application_name "
                                   "LIKE 'hookline run%reading%'"):
        assert first.poll() is None and time.monotonic() < deadline, "the first run never read"
        time.sleep(0.05)
    second = _hookline("run", str(second_input), "--db", postgres_url, env=env)
    assert first.wait(timeout=120) == 0, first.stderr.read() if first.stderr else ""
    assert second.returncode == 0, second.stderr
    assert "another run is writing into postgresql://hookline:***@127.0.0.1" in second.stderr
    assert first_input.name in second.stderr  # it names what the other run is reading
    assert "waiting for it to finish" in second.stderr


#: A stage slow enough that a second run starts while the first still writes.
_SLOW_PLUGIN = '''
import time

import hookline


class Slow(hookline.Stage, phase="enrich", name="slow"):
    def process(self, event):
        time.sleep(0.001)
'''
