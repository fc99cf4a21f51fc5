"""Tampering (issue 14, cases 8 and 9): a stage that writes an event behind its fields' backs,
or renames it, has that event dead-lettered in its name; nothing invalid is stored, and the
run ends normally."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
from _db import every_line_once, rows

import hookline
from hookline.config import Config

COUNT = 40


def _input(path: Path, count: int = COUNT) -> Path:
    path.write_text("".join(
        json.dumps({"event_id": f"e{i:05d}", "user_id": f"u{i % 5}", "kind": "click",
                    "ts": 1_000 + i, "amount": 2.5, "tags": ["a"]}) + "\n"
        for i in range(count)))
    return path


def _run(tmp_path: Path, plugins: list[Any], **config: Any) -> tuple[hookline.Report, Path]:
    settings = Config(**config)
    pipeline = hookline.Pipeline.from_plugins(plugins, settings)
    db = tmp_path / "out.db"
    report = hookline.run([str(_input(tmp_path / "in.jsonl"))], db=str(db), pipeline=pipeline,
                          config=settings)
    return report, db


def _stored_events(db: Path) -> list[dict[str, Any]]:
    connection = sqlite3.connect(db)
    connection.row_factory = sqlite3.Row
    try:
        rows = [dict(row) for row in connection.execute("SELECT * FROM events")]
    finally:
        connection.close()
    fields = hookline.DefaultEvent.__fields__
    events = []
    for row in rows:
        event = {name: row[name] for name in fields}
        for name in ("tags", "properties"):
            event[name] = json.loads(event[name])
        events.append(event)
    return events


def _outcomes_are_sound(report: hookline.Report, db: Path) -> None:
    """Each line once, and every stored event valid."""
    every_line_once(report, db, COUNT)
    for event in _stored_events(db):
        assert hookline.DefaultEvent.find_problems(event) == [], event


def _on(number: int, change: Callable[[hookline.Event], Any]) -> type[hookline.Stage]:
    class Tamper(hookline.Stage, phase="enrich", name="tamperer"):
        def process(self, event: hookline.Event) -> Any:
            if event.event_id == f"e{number:05d}":
                return change(event)
            return None

    return Tamper


class _Loose(hookline.DefaultEvent):
    """Another schema class, a subclass of the pipeline's, with laxer fields."""

    amount = hookline.fields.Number()  # no minimum
    kind = hookline.fields.Integer()


def _set_dict(name: str, value: Any) -> Callable[[hookline.Event], None]:
    def change(event: hookline.Event) -> None:
        event.__dict__[name] = value

    return change


_WAYS: dict[str, tuple[Callable[[hookline.Event], Any], str]] = {
    "__dict__ write": (_set_dict("amount", -7), "amount: must be ≥ 0"),
    "a string amount (crashed the aggregates)": (_set_dict("amount", "lots"), "amount:"),
    "object.__setattr__": (lambda e: object.__setattr__(e, "ts", "soon"), "ts:"),
    "list changed in place": (lambda e: e.tags.append(1), "tags[1]:"),
    "a field deleted": (lambda e: e.__dict__.__delitem__("kind"), "kind: is required"),
    "an unknown attribute": (_set_dict("sneaky", 1), "sneaky: is not a field"),
    "another schema class": (
        lambda e: _Loose.from_dict({**e.to_dict(), "amount": -1, "kind": 3}), "is a _Loose"),
    "the same class, built bare": (
        lambda e: _bare(type(e), {**e.__dict__, "user_id": ""}), "user_id:"),
}


def _bare(cls: type[Any], values: dict[str, Any]) -> Any:
    event = object.__new__(cls)
    event.__dict__.update(values)
    return event


@pytest.mark.parametrize("way", list(_WAYS))
def test_a_tampered_event_is_dead_lettered_in_the_stages_name(tmp_path: Path, way: str) -> None:
    change, problem = _WAYS[way]
    report, db = _run(tmp_path, [("team", _on(7, change))])
    _outcomes_are_sound(report, db)
    letters = rows(db, "SELECT line, stage, plugin, reason FROM dead_letters")
    assert len(letters) == 1, letters
    line, stage, plugin, reason = letters[0]
    assert (line, stage, plugin) == (8, "team.tamperer", "team")
    assert reason.startswith("team.tamperer tampered with the event: ") and problem in reason
    assert report.accepted == COUNT - 1


def test_a_renamed_event_is_dead_lettered_and_the_real_one_stored(tmp_path: Path) -> None:
    """Case 9: e00003 renamed to a later id is the renamer's failure; e00030, whose id it
    took, is stored as itself (not dead-lettered as a duplicate)."""
    def rename(event: hookline.Event) -> None:
        event.event_id = "e00030"  # a valid assignment: the fields cannot know

    report, db = _run(tmp_path, [("team", _on(3, rename))])
    _outcomes_are_sound(report, db)
    assert rows(db, "SELECT line, stage, reason FROM dead_letters") == [
        (4, "team.tamperer", "team.tamperer tampered with the event: event_id: was changed from "
                           "'e00003' (got 'e00030')")]
    assert rows(db, "SELECT ts FROM events WHERE event_id = 'e00030'") == [(1030,)]
    assert rows(db, "SELECT count(*) FROM events WHERE event_id = 'e00003'") == [(0,)]


def test_the_culprit_is_found_among_several_stages_and_its_state_kept_once(
        tmp_path: Path) -> None:
    class Count(hookline.Stage, phase="validate", name="tampering_count"):
        def process(self, event: hookline.Event) -> None:
            self.state[event.user_id] = self.state.get(event.user_id, 0) + 1

    class Fine(hookline.Stage, phase="enrich", name="tampering_fine"):
        def process(self, event: hookline.Event) -> None:
            event.tags = [*event.tags, "fine"]

    class Breaks(hookline.Stage, phase="score", name="tampering_breaks"):
        def process(self, event: hookline.Event) -> None:
            if event.ts % 10 == 0:
                event.tags.append(None)

    report, db = _run(tmp_path, [("a", Count), ("b", Fine), ("c", Breaks)])
    _outcomes_are_sound(report, db)
    stages = {row[0] for row in rows(db, "SELECT stage FROM dead_letters")}
    assert stages == {"c.tampering_breaks"}
    assert report.dead_lettered == 4
    state = rows(db, "SELECT key, value FROM stage_state WHERE stage = 'a.tampering_count'")
    assert sum(json.loads(value) for _, value in state) == COUNT  # not counted again


def test_a_wrapper_that_tampers_is_named(tmp_path: Path) -> None:
    class Wrap:
        @hookline.hookimpl(wrapper=True)
        def hookline_enrich(self, event: hookline.Event) -> Generator[Any, Any, Any]:
            result = yield
            if result.event_id == "e00002":
                result.__dict__["currency"] = "dollars"
            return result

    class Plain(hookline.Stage, phase="enrich", name="tampering_plain"):
        def process(self, event: hookline.Event) -> None:
            pass

    report, db = _run(tmp_path, [("wrap", Wrap()), ("team", Plain)])
    _outcomes_are_sound(report, db)
    assert rows(db, "SELECT line, stage FROM dead_letters") == [(3, "wrap")]

