"""State, duplicates and the circuit breaker (issue 14, cases 10 and 11).

Each test runs real runs into a temporary SQLite database and checks what a user of a
stateful stage needs: the state agrees with the events stored, whatever was re-delivered,
replayed, changed in place, written by another stage or written by two runs at once; and the
breaker takes out the stage that fails, not the one next to it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
import types
from collections import Counter
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
from _db import rows

import hookline
from hookline._replay import replay
from hookline._sinks.sqlite import SQLiteSink
from hookline.config import Config
from hookline.testing import database_content, write_installed


def _events(path: Path, count: int, *, start: int = 0, users: int = 37,
            amount: Callable[[int], float] = lambda i: 10.0) -> Path:
    path.write_text("".join(
        json.dumps({"event_id": f"evt-{i:06d}", "user_id": f"u{i % users}", "kind": "buy",
                    "ts": 1_000 + i, "amount": amount(i)}) + "\n"
        for i in range(start, start + count)))
    return path


def _state(db: Path, stage: str) -> dict[str, Any]:
    return {key: json.loads(value) for key, value in rows(
        db, f"SELECT key, value FROM stage_state WHERE stage = '{stage}'")}


def _stored_per_user(db: Path) -> dict[str, int]:
    return dict(rows(db, "SELECT user_id, count(*) FROM events GROUP BY user_id"))


def _run(sources: list[Path], db: Path, plugins: list[Any], **config: Any) -> hookline.Report:
    settings = Config(**config)
    return hookline.run([str(s) for s in sources], db=str(db), config=settings,
                        pipeline=hookline.Pipeline.from_plugins(plugins, settings))


class Count(hookline.Stage, phase="validate", name="count"):
    """Counts each user's events: a velocity rule's memory."""

    def process(self, event: hookline.Event) -> None:
        self.state[event.user_id] = self.state.get(event.user_id, 0) + 1


# -- case 10: duplicates are set aside before any stage runs ---------------------------------


def test_a_redelivered_file_changes_no_state(tmp_path: Path) -> None:
    db = tmp_path / "out.db"
    first = _events(tmp_path / "monday.jsonl", 3000)
    _run([first], db, [("team", Count)], batch_size=250)
    # The same file delivered again under another name, with 500 new events, one of them twice.
    again = tmp_path / "monday-redelivered.jsonl"
    shutil.copy(first, again)
    new = _events(tmp_path / "new.jsonl", 500, start=3000).read_text()
    again.write_text(again.read_text() + new + new.splitlines()[7] + "\n")
    report = _run([again], db, [("team", Count)], batch_size=250)

    assert (report.accepted, report.duplicates) == (500, 3001)
    assert _state(db, "team.count") == _stored_per_user(db)
    assert sum(_state(db, "team.count").values()) == 3500


def test_a_state_value_changed_in_place_is_saved(tmp_path: Path) -> None:
    class InPlace(hookline.Stage, phase="validate", name="in_place"):
        def process(self, event: hookline.Event) -> None:
            self.state.setdefault(event.user_id, {"n": 0})["n"] += 1
            self.state.get(event.user_id)["last"] = event.ts  # type: ignore[index]

    db = tmp_path / "out.db"
    _run([_events(tmp_path / "a.jsonl", 1900)], db, [("team", InPlace)], batch_size=100)
    _run([_events(tmp_path / "b.jsonl", 1100, start=1900)], db, [("team", InPlace)],
         batch_size=100)  # the second run goes on from the values the first one saved
    state = _state(db, "team.in_place")
    assert {user: value["n"] for user, value in state.items()} == _stored_per_user(db)
    assert sum(value["n"] for value in state.values()) == 3000
    assert state["u0"]["last"] == 1_000 + 2997  # the last event of u0 (2997 = 81 * 37)


def test_a_state_value_that_is_not_json_fails_its_stage_not_the_run(tmp_path: Path) -> None:
    class Sets(hookline.Stage, phase="validate", name="sets"):
        def process(self, event: hookline.Event) -> None:
            if event.event_id.endswith("7"):
                self.state[event.user_id] = {event.kind}  # a set: not JSON
            else:
                self.state[event.user_id] = [event.kind]

    db = tmp_path / "out.db"
    report = _run([_events(tmp_path / "a.jsonl", 100)], db, [("team", Sets)])
    assert (report.accepted, report.stages["team.sets"]) == (90, 10)
    reasons = {reason for (reason,) in rows(db, "SELECT reason FROM dead_letters")}
    assert reasons == {"team.sets raised StateError: state['u7']: a state value is JSON "
                       "(Object of type set is not JSON serializable)"} or len(reasons) == 10
    assert set(map(tuple, _state(db, "team.sets").values())) == {("buy",)}


# -- case 10: replay applies a letter's state changes once -----------------------------------


class Attempts(hookline.Stage, phase="validate", name="attempts"):
    """Counts every attempt of a user, refused or not (a velocity rule)."""

    def process(self, event: hookline.Event) -> None:
        self.state[event.user_id] = self.state.get(event.user_id, 0) + 1


class Ceiling(hookline.Stage, phase="validate", name="ceiling"):
    class Settings(hookline.Settings):
        limit = hookline.fields.Number(default=50)

    def process(self, event: hookline.Event) -> None:
        if event.amount > self.settings.limit:
            raise hookline.Reject(f"amount over {self.settings.limit}")


def test_replaying_twice_applies_a_letter_once(tmp_path: Path) -> None:
    db = tmp_path / "out.db"
    plugins = [("count", Attempts), ("shop", Ceiling)]
    source = _events(tmp_path / "in.jsonl", 100, users=5, amount=lambda i: 80.0 * (i % 4 == 0))
    first = _run([source], db, plugins)
    assert (first.accepted, first.dead_lettered) == (75, 25)
    assert sum(_state(db, "count.attempts").values()) == 100

    def again(limit: float) -> tuple[Any, dict[str, Any]]:
        config = Config(plugin_settings={"shop": {"limit": limit}})
        report = replay(str(db), hookline.Pipeline.from_plugins(plugins, config))
        return report, _state(db, "count.attempts")

    once, after_once = again(50)  # still refused: the first replay counts the attempt
    assert (once.replayed, once.dead_again, sum(after_once.values())) == (25, 25, 125)
    twice, after_twice = again(50)  # a second replay of the same letters counts nothing
    assert (twice.replayed, twice.dead_again) == (25, 25)
    assert after_twice == after_once
    assert rows(db, "SELECT DISTINCT replays FROM dead_letters") == [(2,)]
    accepted, after_all = again(100)  # now they pass: stored, and still counted once
    assert (accepted.accepted, after_all) == (25, after_once)
    assert rows(db, "SELECT count(*) FROM events") == [(100,)]


# -- case 10: a stage's state is its own -----------------------------------------------------


def test_another_stages_write_is_refused_and_blamed_on_the_writer(tmp_path: Path) -> None:
    others: dict[str, Any] = {}

    class Intruder(hookline.Stage, phase="enrich", name="intruder"):
        """Resets the counter of another stage (plugin "fraud"): not its to change."""

        def process(self, event: hookline.Event) -> None:
            counter = others["counter"].state
            seen = counter.get("scratch")  # another stage's dict value: a copy
            if seen is not None:
                seen["n"] = 999
            if event.event_id.endswith("3"):
                counter[event.user_id] = 0

    class Counter_(hookline.Stage, phase="validate", name="counter"):
        def process(self, event: hookline.Event) -> None:
            self.state[event.user_id] = self.state.get(event.user_id, 0) + 1
            self.state.setdefault("scratch", {"n": 0})["n"] += 1

    settings = Config()
    pipeline = hookline.Pipeline.from_plugins([("fraud", Counter_), ("growth", Intruder)],
                                              settings)
    others["counter"] = pipeline.stages()["fraud.counter"]
    db = tmp_path / "out.db"
    report = hookline.run([str(_events(tmp_path / "in.jsonl", 200))], db=str(db),
                          pipeline=pipeline, config=settings)

    assert (report.accepted, report.stages["growth.intruder"]) == (180, 20)
    letters = rows(db, "SELECT DISTINCT stage, plugin, reason FROM dead_letters")
    assert letters == [("growth.intruder", "growth",
                        "growth.intruder raised StateError: cannot write the state of stage "
                        "fraud.counter: a stage's state is private to it (keep what you need "
                        "in your own stage's state)")]
    state = _state(db, "fraud.counter")
    assert state.pop("scratch") == {"n": 200}
    assert sum(state.values()) == 200  # every event counted once, none reset


# -- case 10: two runs at once lose no update ------------------------------------------------

_SCRIPT = '''
import pathlib, sys, time
import hookline
from hookline.config import Config

class Count(hookline.Stage, phase="validate", name="count"):
    def process(self, event):
        self.state[event.user_id] = self.state.get(event.user_id, 0) + 1
        ready = pathlib.Path(sys.argv[3])
        if not ready.exists():
            ready.write_text("started")
        time.sleep(0.0004)

config = Config(batch_size=200)
report = hookline.run([sys.argv[1]], db=sys.argv[2], config=config,
                      pipeline=hookline.Pipeline.from_plugins([("team", Count)], config))
print(report.accepted)
'''


def test_two_runs_into_one_database_at_once_lose_no_update(tmp_path: Path) -> None:
    script = tmp_path / "count.py"
    script.write_text(textwrap.dedent(_SCRIPT))
    db = tmp_path / "shared.db"
    one = _events(tmp_path / "one.jsonl", 2500)
    two = _events(tmp_path / "two.jsonl", 2500, start=2500)

    def start(source: Path, ready: Path) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, str(script), str(source), str(db), str(ready)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = start(one, tmp_path / "first.ready")
    deadline = time.monotonic() + 30
    while not (tmp_path / "first.ready").exists():  # the first run is processing its input
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.01)
    second = start(two, tmp_path / "second.ready")
    outputs = [process.communicate(timeout=60) for process in (first, second)]

    assert [process.returncode for process in (first, second)] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == ["2500", "2500"]
    assert "another run is writing into" in outputs[1][1]  # the second one said it waits
    assert _state(tmp_path / "shared.db", "team.count") == _stored_per_user(db)
    assert sum(_state(db, "team.count").values()) == 5000


# -- case 11: the breaker counts a stage's own failures only ---------------------------------


def _flaky(share: int) -> type[hookline.Stage]:
    class Flaky(hookline.Stage, phase="validate", name="flaky"):
        """Raises on ``share`` events in 10 (its service times out now and then)."""

        def process(self, event: hookline.Event) -> None:
            if int(event.event_id[-1]) < share:
                raise TimeoutError("scoring service timed out")

    return Flaky


class RejectAll(hookline.Stage, phase="enrich", name="closed"):
    def process(self, event: hookline.Event) -> None:
        raise hookline.Reject("the shop is closed")


def test_a_stage_is_not_quarantined_because_a_later_stage_rejects(tmp_path: Path) -> None:
    report = _run([_events(tmp_path / "in.jsonl", 500)], tmp_path / "out.db",
                  [("risk", _flaky(3)), ("shop", RejectAll)], quarantine_after=5,
                  batch_size=50)
    assert report.quarantined == []
    assert (report.stages["risk.flaky"], report.stages["shop.closed"]) == (150, 350)


def test_a_stage_that_always_fails_is_quarantined_whatever_the_others_do(
    tmp_path: Path,
) -> None:
    class Picky(hookline.Stage, phase="validate", name="a_picky", tryfirst=True):
        def process(self, event: hookline.Event) -> None:
            if int(event.event_id[-1]) % 2:
                raise hookline.Reject("odd")  # these never reach the failing stage

    report = _run([_events(tmp_path / "in.jsonl", 500)], tmp_path / "out.db",
                  [("a", Picky), ("risk", _flaky(10)), ("shop", RejectAll)],
                  quarantine_after=20, batch_size=50)
    assert report.quarantined == ["risk.flaky"]
    assert report.stages["risk.flaky"] == 25  # the first batch's 25 even events, then out


class Guard(hookline.Stage, phase="validate", name="guard"):
    """Refuses amounts over 100; its lookup fails on one event in ten."""

    def process(self, event: hookline.Event) -> None:
        if event.event_id.endswith("5"):
            raise ConnectionError("limits service unreachable")
        if event.amount > 100:
            raise hookline.Reject("amount over 100")


@pytest.mark.parametrize("hold", [100_000, 10])
def test_duplicates_never_switch_off_a_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             hold: int) -> None:
    # the event ids of past dead letters held in memory, or (too many) asked of the database
    monkeypatch.setattr(SQLiteSink, "_HOLD", hold)
    db = tmp_path / "out.db"
    first = _events(tmp_path / "monday.jsonl", 2000)
    _run([first], db, [("fraud", Guard)], quarantine_after=10, batch_size=100)
    again = tmp_path / "monday-again.jsonl"  # re-delivered, then new events, many refused
    new = _events(tmp_path / "new.jsonl", 1000, start=2000, amount=lambda i: 500.0 * (i % 2))
    again.write_text(first.read_text() + new.read_text())
    report = _run([again], db, [("fraud", Guard)], quarantine_after=10, batch_size=100)

    assert report.quarantined == []
    assert report.duplicates == 2000
    assert rows(db, "SELECT count(*) FROM events WHERE amount > 100") == [(0,)]


def _raising_wrapper() -> Any:
    @hookline.hookimpl(wrapper=True)
    def hookline_validate(event: Any) -> Generator[None, Any, Any]:
        raise RuntimeError("tracing backend down")
        return (yield)  # a wrapper

    return types.SimpleNamespace(hookline_validate=hookline_validate)


class Tag(hookline.Stage, phase="validate", name="tag"):
    def process(self, event: hookline.Event) -> None:
        event.tags = [*event.tags, "tagged"]


def test_a_raising_wrapper_is_its_plugins_failure_and_can_be_quarantined(
    tmp_path: Path,
) -> None:
    db = tmp_path / "out.db"
    report = _run([_events(tmp_path / "in.jsonl", 400)], db,
                  [("tracing", _raising_wrapper()), ("shop", Tag)], quarantine_after=30,
                  batch_size=100)
    # every event fails in the wrapper until the breaker takes it out after the first batch;
    # the phase then runs without it, the other plugin's stage still in place
    assert report.quarantined == ["tracing"]
    assert report.stage_stats["tracing"]["quarantined"] is True
    assert rows(db, "SELECT DISTINCT stage, plugin FROM dead_letters") == [
        ("tracing", "tracing")]
    assert (report.dead_lettered, report.accepted) == (100, 300)
    assert rows(db, "SELECT DISTINCT tags FROM events") == [('["tagged"]',)]


def test_the_breaker_ignores_lines_no_stage_saw(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    good = _events(tmp_path / "good.jsonl", 300).read_text().splitlines()
    # a malformed line after each event: not a success of the stage, nor a failure
    source.write_text("".join(line + "\n{broken\n" for line in good))
    report = _run([source], tmp_path / "out.db", [("risk", _flaky(10))], quarantine_after=15,
                  batch_size=40)
    assert report.quarantined == ["risk.flaky"]
    assert Counter(report.stages) == Counter({"parse": 300, "risk.flaky": 20})


_COUNTING_PLUGIN = '''
import hookline

class Count(hookline.Stage, phase="validate", name="count"):
    def process(self, event):
        self.state.setdefault(event.user_id, {"n": 0})["n"] += 1
        if event.amount > 100:
            raise hookline.Reject("too much")
'''


def test_the_process_executor_sets_duplicates_aside_as_inline_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = write_installed(tmp_path / "site", "counting", _COUNTING_PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "counting_plugin", raising=False)
    monkeypatch.setenv("HOOKLINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HOOKLINE_PLUGINS", "counting")
    first = _events(tmp_path / "first.jsonl", 2000, amount=lambda i: 200.0 * (i % 9 == 0))
    again = tmp_path / "again.jsonl"  # re-delivered (refused ones too), plus new events
    again.write_text(first.read_text() + _events(tmp_path / "new.jsonl", 1000,
                                                 start=2000).read_text())
    config = Config(batch_size=150)

    def run(db: str, source: Path, **options: Any) -> hookline.Report:
        return hookline.run([str(source)], db=str(tmp_path / db), config=config,
                            pipeline=hookline.Pipeline.from_entry_points(config), **options)

    for db, options in (("inline.db", {}), ("process.db", {"executor": "process",
                                                           "workers": 2})):
        run(db, first, **options)
        report = run(db, again, **options)
        assert (report.accepted, report.duplicates) == (1000, 2000)
        counts = {user: value["n"] for user, value in _state(tmp_path / db,
                                                              "counting.count").items()}
        assert sum(counts.values()) == 3000  # each event counted once: refused ones too
    assert database_content(tmp_path / "process.db") == database_content(tmp_path / "inline.db")


def test_state_records_what_changed_as_json_text() -> None:
    from hookline._state import State

    state = State()
    state.load({"kept": {"n": 1}, "gone": 3, "read": [1, 2]})
    state["new"] = 5
    state["kept"]["n"] += 1
    assert state["read"] == [1, 2]  # handed out, not changed: not written
    del state["gone"]
    assert state.changes() == [("gone", None), ("kept", '{"n": 2}'), ("new", "5")]
    assert state.changes() == []
    state["kept"]["n"] += 1
    state.discard({"kept": {"n": 2}})  # a replayed letter's changes are thrown away
    assert (state["kept"], state.changes()) == ({"n": 2}, [])
    for key, value in ((1, "x"), ("k", {1, 2}), ("k", object())):
        with pytest.raises(hookline.errors.StateError):
            state[key] = value  # type: ignore[index]
    assert "k" not in state
