"""Stages at call time (issue 14, cases 6, 7 and 12): whatever a stage does when it is called
(exit, raise any BaseException, hang, await), the run ends by itself, every line has exactly
one outcome, and the dead letters name the stage."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _db import every_line_once, rows

import hookline
from hookline.config import Config
from hookline.contracts import verify
from hookline.errors import Interrupted, StageTimeout
from hookline.testing import write_installed


def _input(path: Path, count: int) -> Path:
    path.write_text("".join(
        json.dumps({"event_id": f"e{i:05d}", "user_id": f"u{i % 7}", "kind": "click",
                    "ts": 1_000 + i}) + "\n" for i in range(count)))
    return path


def _run(tmp_path: Path, plugins: list[Any], count: int = 20, **config: Any
         ) -> tuple[hookline.Report, Path]:
    settings = Config(**config)
    pipeline = hookline.Pipeline.from_plugins(plugins, settings)
    db = tmp_path / "out.db"
    report = hookline.run([str(_input(tmp_path / "in.jsonl", count))], db=str(db),
                          pipeline=pipeline, config=settings)
    return report, db


# -- case 6: nothing a stage raises ends the run ---------------------------------------------

def _raising(kind: type[BaseException]) -> Any:
    def call() -> None:
        raise kind()

    return call


_EXITS = {
    "sys.exit(3)": lambda: sys.exit(3),
    "SystemExit": _raising(SystemExit),
    "KeyboardInterrupt": _raising(KeyboardInterrupt),
    "GeneratorExit": _raising(GeneratorExit),
    "BaseException": _raising(BaseException),
    "CancelledError": _raising(asyncio.CancelledError),
}


@pytest.mark.parametrize("how", list(_EXITS))
def test_a_stage_raising_a_base_exception_fails_only_that_event(tmp_path: Path, how: str) -> None:
    class Exiting(hookline.Stage, phase="enrich", name="call_exiting"):
        def process(self, event: hookline.Event) -> None:
            if event.event_id.endswith("3"):
                _EXITS[how]()

    report, db = _run(tmp_path, [("team", Exiting)], count=20)
    every_line_once(report, db, 20)
    assert (report.accepted, report.dead_lettered) == (18, 2)
    letters = rows(db, "SELECT stage, reason, plugin FROM dead_letters")
    assert {stage for stage, _, _ in letters} == {"team.call_exiting"}
    assert {plugin for _, _, plugin in letters} == {"team"}
    assert all(reason.startswith("team.call_exiting raised ") for _, reason, _ in letters)


def test_hookline_run_exits_0_when_a_stage_calls_sys_exit(tmp_path: Path) -> None:
    """``sys.exit(3)`` in an installed plugin's stage no longer ends ``hookline run`` with
    status 3 (the code for "dead-letter ratio exceeded") and the batch lost."""
    site = write_installed(tmp_path / "site", "exiter", (
        "import sys\nimport hookline\n\n"
        "class Exiter(hookline.Stage, phase='validate', name='exit'):\n"
        "    def process(self, event):\n"
        "        if event.event_id == 'e00002':\n"
        "            sys.exit(3)\n"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOOKLINE_")}
    env.update(PYTHONPATH=str(site), HOOKLINE_PLUGINS="exiter",
               HOOKLINE_CACHE_DIR=str(tmp_path / "cache"))
    db = tmp_path / "o.db"
    done = subprocess.run(
        [sys.executable, "-m", "hookline.cli", "run", str(_input(tmp_path / "in.jsonl", 5)),
         "--db", str(db)], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert rows(db, "SELECT count(*) FROM events") == [(4,)]
    assert rows(db, "SELECT line, stage, reason, plugin, distribution FROM dead_letters") == [
        (3, "exiter.exit", "exiter.exit raised SystemExit: 3", "exiter", "exiter-plugin")]


def test_a_real_ctrl_c_still_stops_the_run(tmp_path: Path, python_sigint: None) -> None:
    """A SIGINT to the process while a stage runs is not that stage's failure: the run stops
    (``Interrupted``, a KeyboardInterrupt), and what was committed stays."""
    class Slow(hookline.Stage, phase="enrich", name="call_slow"):
        def process(self, event: hookline.Event) -> None:
            if event.event_id == "e00030":
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)

    with pytest.raises(KeyboardInterrupt) as raised:
        _run(tmp_path, [("team", Slow)], count=60, batch_size=10)
    assert isinstance(raised.value, Interrupted)
    assert rows(tmp_path / "out.db", "SELECT count(*) FROM events") == [(30,)]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- case 7: a stage that never returns -------------------------------------------------------


def test_a_stuck_stage_is_timed_out_and_the_run_goes_on(tmp_path: Path) -> None:
    class Stuck(hookline.Stage, phase="enrich", name="call_stuck"):
        def process(self, event: hookline.Event) -> None:
            if event.event_id == "e00004":
                time.sleep(3600)  # a blocking C call
            if event.event_id == "e00011":
                while True:  # a pure-Python loop
                    pass

    started = time.monotonic()
    report, db = _run(tmp_path, [("team", Stuck)], count=15, stage_timeout=0.3)
    assert time.monotonic() - started < 10
    every_line_once(report, db, 15)
    letters = rows(db, "SELECT line, stage, reason, error FROM dead_letters ORDER BY line")
    assert [(line, stage) for line, stage, _, _ in letters] == [(5, "team.call_stuck"),
                                                                (12, "team.call_stuck")]
    assert all(reason == "timeout after 0.3 s in team.call_stuck" for _, _, reason, _ in letters)
    assert "StageTimeout" in letters[0][3] and "time.sleep" in letters[0][3]


def test_a_stage_that_swallows_the_timeout_is_interrupted_again(tmp_path: Path) -> None:
    class Stubborn(hookline.Stage, phase="enrich", name="call_stubborn"):
        def process(self, event: hookline.Event) -> None:
            if event.event_id == "e00001":
                try:
                    time.sleep(3600)
                except BaseException:  # a badly written stage
                    pass
                time.sleep(3600)

    report, db = _run(tmp_path, [("team", Stubborn)], count=4, stage_timeout=0.2)
    assert rows(db, "SELECT line, stage FROM dead_letters") == [(2, "team.call_stubborn")]
    every_line_once(report, db, 4)


def test_the_time_limit_is_off_with_zero(tmp_path: Path) -> None:
    class Slowish(hookline.Stage, phase="enrich", name="call_slowish"):
        def process(self, event: hookline.Event) -> None:
            time.sleep(0.05)

    report, _ = _run(tmp_path, [("team", Slowish)], count=4, stage_timeout=0)
    assert report.accepted == 4
    (tmp_path / "again").mkdir()
    report, _ = _run(tmp_path / "again", [("team", Slowish)], count=4, stage_timeout=0.02)
    assert report.dead_lettered == 4


def test_the_limit_is_per_stage_call_not_per_event(tmp_path: Path) -> None:
    class First(hookline.Stage, phase="validate", name="call_first"):
        def process(self, event: hookline.Event) -> None:
            time.sleep(0.25)

    class Second(hookline.Stage, phase="enrich", name="call_second"):
        def process(self, event: hookline.Event) -> None:
            time.sleep(0.25)

    report, _ = _run(tmp_path, [("team", First), ("team2", Second)], count=3,
                     stage_timeout=0.4)
    assert (report.accepted, report.dead_lettered) == (3, 0)  # 0.5 s an event, 0.25 a call


def test_the_time_limit_holds_outside_the_main_thread(tmp_path: Path) -> None:
    class Spinning(hookline.Stage, phase="enrich", name="call_spin"):
        def process(self, event: hookline.Event) -> None:
            if event.event_id == "e00002":
                while True:
                    pass

    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(
        _run(tmp_path, [("team", Spinning)], count=5, stage_timeout=0.2)))
    thread.start()
    thread.join(20)
    assert not thread.is_alive()
    report, db = outcome[0]
    assert rows(db, "SELECT line, stage FROM dead_letters") == [(3, "team.call_spin")]
    every_line_once(report, db, 5)


def test_the_watchdog_leaves_no_thread_and_no_handler_behind(tmp_path: Path) -> None:
    """Between batches no watchdog thread runs (the process executor forks only when no other
    thread does) and the signal handlers are the ones there were."""
    class Quick(hookline.Stage, phase="enrich", name="call_quick"):
        def process(self, event: hookline.Event) -> None:
            pass

    threads, handler = threading.active_count(), signal.getsignal(signal.SIGINT)
    _run(tmp_path, [("team", Quick)], count=30, batch_size=7)
    assert threading.active_count() == threads
    assert signal.getsignal(signal.SIGINT) is handler


def test_the_config_reads_the_time_limit() -> None:
    assert Config().stage_timeout == 30
    assert Config.from_mapping({"stage_timeout": "off"}).stage_timeout == 0
    assert Config.from_mapping({"stage_timeout": 2}).stage_timeout == 2
    with pytest.raises(hookline.errors.ConfigError, match="stage_timeout"):
        Config.from_mapping({"stage_timeout": -1})


# -- case 12: async stages ---------------------------------------------------------------------


def test_async_stages_overlap_their_awaits_and_keep_each_users_order(tmp_path: Path) -> None:
    seen: dict[str, list[str]] = {}

    class Remote(hookline.Stage, phase="enrich", name="call_remote"):
        async def process(self, event: hookline.Event) -> None:
            await asyncio.sleep(0.01)
            seen.setdefault(event.user_id, []).append(event.event_id)
            event.tags = ["looked-up"]

    started = time.monotonic()
    report, db = _run(tmp_path, [("team", Remote)], count=400)
    assert time.monotonic() - started < 2  # 400 x 10 ms one after another is 4 s
    every_line_once(report, db, 400)
    assert report.accepted == 400
    for ids in seen.values():
        assert ids == sorted(ids)  # one user's events in input order
    stored = rows(db, "SELECT event_id FROM events WHERE tags = '[\"looked-up\"]'")
    assert len(stored) == 400


def test_async_stage_failures_and_timeouts_name_the_stage(tmp_path: Path) -> None:
    class Flaky(hookline.Stage, phase="enrich", name="call_flaky"):
        async def process(self, event: hookline.Event) -> None:
            await asyncio.sleep(0)
            if event.event_id == "e00001":
                raise SystemExit(2)
            if event.event_id == "e00002":
                await asyncio.Event().wait()  # never set
            if event.event_id == "e00003":
                raise hookline.Reject("no")
            if event.event_id == "e00005":
                time.sleep(3600)  # blocks the event loop itself: the watchdog's

    report, db = _run(tmp_path, [("team", Flaky)], count=12, stage_timeout=0.3)
    every_line_once(report, db, 12)
    letters = rows(db, "SELECT line, stage, reason FROM dead_letters ORDER BY line")
    timeout = "timeout after 0.3 s in team.call_flaky"
    assert letters == [(2, "team.call_flaky", "team.call_flaky raised SystemExit: 2"),
                       (3, "team.call_flaky", timeout), (4, "team.call_flaky", "no"),
                       (6, "team.call_flaky", timeout)]  # not the others it held up


def test_an_async_stage_that_tampers_is_named(tmp_path: Path) -> None:
    class Sneaky(hookline.Stage, phase="score", name="call_sneaky"):
        async def process(self, event: hookline.Event) -> None:
            await asyncio.sleep(0)
            if event.event_id == "e00004":
                event.__dict__["ts"] = -1

    report, db = _run(tmp_path, [("team", Sneaky)], count=8)
    every_line_once(report, db, 8)
    assert rows(db, "SELECT line, stage FROM dead_letters") == [(5, "team.call_sneaky")]


async def _noted(calls: list[str], what: str) -> None:
    await asyncio.sleep(0)
    calls.append(what)


def test_async_lifecycle_hooks_are_awaited(tmp_path: Path) -> None:
    calls: list[str] = []

    class Hooks:
        @hookline.hookimpl
        async def hookline_run_start(self, run: Any) -> None:
            await _noted(calls, "start")

        @hookline.hookimpl
        async def hookline_run_end(self, run: Any, report: Any) -> None:
            await _noted(calls, f"end {report.accepted}")

    _run(tmp_path, [("hooks", Hooks())], count=3)
    assert calls == ["start", "end 3"]


def test_an_async_stage_under_a_plain_decorator_is_awaited(tmp_path: Path) -> None:
    """``functools.wraps`` on a sync wrapper hides ``async def``: the coroutine it returns is
    awaited, not refused per event with "returned coroutine"."""
    def logged(function: Any) -> Any:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return function(*args, **kwargs)

        return wrapper

    class Hidden(hookline.Stage, phase="enrich", name="call_hidden"):
        @logged
        async def process(self, event: hookline.Event) -> None:
            await asyncio.sleep(0)
            event.tags = ["awaited"]

    assert verify(Hidden) == []
    report, db = _run(tmp_path, [("team", Hidden)], count=5)
    assert report.accepted == 5
    assert rows(db, "SELECT count(*) FROM events WHERE tags = '[\"awaited\"]'") == [(5,)]
    pipeline = hookline.Pipeline.from_plugins([("team", Hidden)])
    assert pipeline.process(pipeline.make_event(
        {"event_id": "x", "user_id": "u", "kind": "k", "ts": 1})).tags == ["awaited"]


def test_stage_timeout_carries_the_stage() -> None:
    error = StageTimeout(0.5, "team.x")
    assert (error.reason, error.stage) == ("timeout after 0.5 s", "team.x")
