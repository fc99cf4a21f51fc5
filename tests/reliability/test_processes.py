"""The process around the plugins (issue 14, cases 17 and 18): worker processes that outlive
their run or die under it, signals, an unusable database, a slow plugin import.

Real subprocesses (``python -m hookline.cli``), real signals, real plugins on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hookline.testing import database_content

from ._cli import Env, no_traceback, rows

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc to find the worker processes")

SLOW = """
import time
import hookline

class Slow(hookline.Stage, phase="enrich", name="slow"):
    def process(self, event):
        time.sleep({delay})
"""


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(condition: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _committed(db: Path) -> int:
    try:
        return int(rows(db, "SELECT coalesce(sum(line), 0) FROM checkpoints")[0][0])
    except sqlite3.Error:
        return 0


# -- 17: workers end with their parent; a dead worker never hangs the run -----------------------

@linux_only
def test_workers_die_with_a_parent_killed_with_minus_9_and_the_rerun_resumes(
    tmp_path: Path
) -> None:
    env = Env(tmp_path)
    env.install("slow", SLOW.format(delay=0.0005))
    events = env.events(n=6000, invalid_rate=0.02)
    db = env.work / "out.db"
    run = env.start("run", str(events), "--db", str(db), "--executor", "process",
                    "--workers", "2", "--batch-size", "250")
    _wait_for(lambda: _committed(db) > 0 and len(_children(run.pid)) >= 2)
    workers = _children(run.pid)
    run.kill()
    run.wait()
    _wait_for(lambda: not any(_alive(pid) for pid in workers), timeout=10)

    resumed = env.hookline("run", str(events), "--db", str(db), "--executor", "process",
                           "--workers", "2", "--batch-size", "250")
    assert resumed.returncode == 0, resumed.stderr
    whole = env.hookline("run", str(events), "--db", "whole.db", "--batch-size", "250")
    assert whole.returncode == 0
    assert database_content(db) == database_content(env.work / "whole.db")


KILLER = """
import os
import signal
import time
from pathlib import Path
from typing import Any

import hookline

POISON = {poison!r}
ONCE = Path({once!r})

class Killer(hookline.Stage, phase="validate", name="killer"):
    def process(self, event):
        if event.event_id in POISON:
            {kill}
        if event.event_id == {flaky!r} and not ONCE.exists():
            ONCE.touch()  # dies the first time only: a worker killed from outside, say
            os.kill(os.getpid(), signal.SIGKILL)
"""

KILLS = {
    "exit": ("os._exit(3)", "worker died (exit status 3)"),
    "sigkill": ("os.kill(os.getpid(), signal.SIGKILL)", "worker died (killed by SIGKILL)"),
    # what a worker does when a stage ran past the time limit and could not be interrupted
    "stuck": ("os._exit(124)", "timeout in killer.killer"),
    # a stage that swallows the watchdog's interruption: the worker's watchdog ends it
    "swallows": ("while True:\n                try:\n                    time.sleep(60)\n"
                 "                except BaseException:\n                    pass",
                 "timeout in killer.killer"),
}


@pytest.mark.parametrize("how", sorted(KILLS))
def test_an_event_that_kills_its_worker_twice_is_dead_lettered_and_the_run_goes_on(
    tmp_path: Path, how: str
) -> None:
    env = Env(tmp_path)
    lines = env.events(n=3000).read_text().splitlines()
    ids = [line.split('"event_id":"')[1].split('"')[0] for line in lines if '"event_id":"' in line]
    poison, flaky = [ids[100], ids[2500]], ids[1700]
    kill, reason = KILLS[how]
    env.install("killer", KILLER.format(poison=poison, once=str(tmp_path / "once"),
                                        kill=kill, flaky=flaky), version="4.2")
    events = env.work / "events.jsonl"
    run = env.hookline("run", str(events), "--db", "out.db", "--executor", "process",
                       "--workers", "2", "--batch-size", "400",
                       HOOKLINE_STAGE_TIMEOUT="0.5")
    assert run.returncode == 0, run.stderr
    no_traceback(run)
    db = env.work / "out.db"
    dead = rows(db, "SELECT reason, stage, plugin, distribution, version, line FROM "
                "dead_letters ORDER BY line")
    assert dead == [(reason, "killer.killer", "killer", "killer-plugin", "4.2",
                     ids.index(event_id) + 1) for event_id in poison]
    assert rows(db, "SELECT count(*) FROM events") == [(3000 - 2,)]
    stored = {event_id for (event_id,) in rows(db, "SELECT event_id FROM events")}
    assert flaky in stored and not stored & set(poison)
    assert "worker 0 died" in run.stderr or "worker 1 died" in run.stderr


# -- 18: the database, signals, a slow import ------------------------------------------------

def _read_only_prefix() -> tuple[str, ...]:
    """As root, permissions do not stop a write: drop root's capabilities for the run."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("running as root without setpriv (util-linux): a read-only file is "
                    "writable, so this test cannot make one")
    return (setpriv, "--bounding-set=-all")


def test_a_read_only_database_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    env = Env(tmp_path)
    env.install("slow", SLOW.format(delay=0))
    events = env.events(n=100)
    assert env.hookline("run", str(events), "--db", "ro.db").returncode == 0
    before = rows(env.work / "ro.db", "SELECT count(*) FROM events")
    more = env.events("more.jsonl", n=100, seed=2)
    (env.work / "ro.db").chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    result = env.hookline("run", str(more), "--db", "ro.db", prefix=_read_only_prefix())
    assert result.returncode == 6, result.stderr
    no_traceback(result)
    assert "ro.db" in result.stderr and "writable" in result.stderr
    assert rows(env.work / "ro.db", "SELECT count(*) FROM events") == before


@pytest.mark.parametrize("damage", ["not a database", "damaged pages"])
def test_a_corrupt_database_is_a_clear_error_naming_the_file(tmp_path: Path, damage: str) -> None:
    env = Env(tmp_path)
    env.install("slow", SLOW.format(delay=0))
    db = env.work / "bad.db"
    if damage == "not a database":
        db.write_bytes(b"these are not the bytes of a SQLite database\n" * 200)
    else:
        assert env.hookline("run", str(env.events(n=3000)), "--db", str(db)).returncode == 0
        data = bytearray(db.read_bytes())
        data[4096:] = b"\xa5" * (len(data) - 4096)  # every page but the header's
        db.write_bytes(bytes(data))
        for extra in (db.with_name("bad.db-wal"), db.with_name("bad.db-shm")):
            extra.unlink(missing_ok=True)
    result = env.hookline("run", str(env.events("more.jsonl", n=100, seed=3)), "--db", str(db))
    assert result.returncode == 6, result.stderr
    no_traceback(result)
    assert "bad.db" in result.stderr and "move it aside" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_run_has_its_own_exit_code_and_resumes(
    tmp_path: Path, sig: signal.Signals
) -> None:
    env = Env(tmp_path)
    env.install("slow", SLOW.format(delay=0.0003))
    events = env.events(n=6000, invalid_rate=0.03)
    db = env.work / "out.db"
    run = env.start("run", str(events), "--db", str(db), "--batch-size", "500")
    _wait_for(lambda: _committed(db) > 0)
    run.send_signal(sig)
    out, err = run.communicate(timeout=40)
    assert run.returncode == 130, err
    assert "[interrupted: resumable]" in out and "Traceback" not in err
    assert sig.name in err and "run the same command again to resume" in err
    # what was committed is consistent: every line up to the checkpoint has one outcome
    [(line,)] = rows(db, "SELECT line FROM checkpoints")
    assert 0 < line < 6000
    outcomes = rows(db, "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM "
                    "dead_letters)")[0][0]
    assert outcomes == line  # no blank lines in the input, nothing dropped
    resumed = env.hookline("run", str(events), "--db", str(db), "--batch-size", "500")
    assert resumed.returncode == 0, resumed.stderr
    whole = env.hookline("run", str(events), "--db", "whole.db", "--batch-size", "500")
    assert whole.returncode == 0
    assert database_content(db) == database_content(env.work / "whole.db")


def test_a_slow_plugin_import_is_named_while_it_runs(tmp_path: Path) -> None:
    env = Env(tmp_path)
    env.install("quick", SLOW.format(delay=0))
    quick = env.hookline("plugins")
    assert quick.returncode == 0 and "loading plugin" not in quick.stderr
    env.install("glacial", "import time\ntime.sleep(5.5)\n", version="0.1")
    slow = env.hookline("plugins")
    assert slow.returncode == 0
    assert "still loading plugin glacial (glacial-plugin 0.1) after 5 s" in slow.stderr
    assert "plugin glacial (glacial-plugin 0.1) took 5." in slow.stderr


def test_hookline_main_gives_the_signal_handlers_back(site: Any) -> None:
    """``hookline.cli.main(["run", …])`` from a program handles SIGINT/SIGTERM only while the
    run lasts: afterwards the program's own handlers are in place again (a later Ctrl-C is
    the program's, not a stop request for a run that has ended)."""
    def mine(signum: int, frame: Any) -> None:
        raise AssertionError("not called")

    data = site.work / "in.jsonl"
    data.write_text('{"event_id": "e1", "user_id": "u1", "kind": "view", "ts": 1}\n')
    before = {sig: signal.signal(sig, mine) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert site.hookline("run", str(data), "--db", str(site.work / "out.db")).code == 0
        assert signal.getsignal(signal.SIGINT) is mine
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
