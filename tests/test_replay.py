"""hookline replay: dead letters get a second chance through the current plugins."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import hookline
from hookline._replay import replay
from hookline.config import Config


class Strict(hookline.Stage, phase="validate", name="strict"):
    class Settings(hookline.Settings):
        limit = hookline.fields.Number(default=10)

    def process(self, event: hookline.Event) -> None:
        if event.amount > self.settings.limit:
            raise hookline.Reject(f"amount over {self.settings.limit}")


def test_replay_moves_what_now_passes_and_keeps_the_rest(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"event_id": f"e{i}", "user_id": "u", "kind": "buy",
                                          "ts": 1, "amount": i * 10}) + "\n"
                              for i in range(6)) + "{broken\n")
    db = tmp_path / "out.db"
    first = hookline.run([str(source)], db=str(db),
                         pipeline=hookline.Pipeline.from_plugins([("shop", Strict)]))
    assert (first.accepted, first.dead_lettered) == (2, 5)
    relaxed = hookline.Pipeline.from_plugins(
        [("shop", Strict)], Config(plugin_settings={"shop": {"limit": 30}}))
    report = replay(str(db), relaxed)
    assert (report.replayed, report.accepted, report.dead_again) == (5, 2, 3)
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM events").fetchone() == (4,)
        rows = connection.execute("SELECT line, reason FROM dead_letters ORDER BY line").fetchall()
        count = connection.execute("SELECT count FROM agg_by_user").fetchone()
    assert [line for line, _ in rows] == [5, 6, 7]
    assert rows[0][1] == "amount over 30" and "malformed JSON" in rows[2][1]
    assert count == (4,)
    assert replay(str(db), relaxed).accepted == 0


class Budget(hookline.Stage, phase="validate", name="budget"):
    """Refuses a user's spending past a budget: a stateful stage (what was spent so far)."""

    class Settings(hookline.Settings):
        budget = hookline.fields.Number(default=100)

    def process(self, event: hookline.Event) -> None:
        spent = self.state.get(event.user_id, 0)
        if spent + event.amount > self.settings.budget:
            raise hookline.Reject(f"{event.user_id} over budget")
        self.state[event.user_id] = spent + event.amount


def test_replay_decides_with_the_committed_state_and_commits_what_it_changes(
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"event_id": f"e{i}", "user_id": "u", "kind": "buy",
                                          "ts": 1, "amount": 40}) + "\n" for i in range(4)))
    db = tmp_path / "out.db"
    first = hookline.run([str(source)], db=str(db),
                         pipeline=hookline.Pipeline.from_plugins([("shop", Budget)]))
    assert (first.accepted, first.dead_lettered) == (2, 2)  # 80 spent; 120 would be over
    raised = hookline.Pipeline.from_plugins(
        [("shop", Budget)], Config(plugin_settings={"shop": {"budget": 130}}))
    report = replay(str(db), raised)
    # 80 already spent (the committed state): one more 40 fits (120), the next does not
    assert (report.accepted, report.dead_again) == (1, 1)
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT key, value FROM stage_state").fetchall() == [
            ("u", "120")]


def test_a_database_from_before_replay_counts_gets_them(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as connection:  # dead_letters as hookline 0.2 wrote them
        connection.execute(
            "CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, run_id TEXT, payload TEXT, "
            "reason TEXT NOT NULL, stage TEXT, error TEXT, line INTEGER, source TEXT, "
            "plugin TEXT, distribution TEXT, version TEXT, created_at REAL)")
        connection.execute("INSERT INTO dead_letters (payload, reason, stage, line, source) "
                            "VALUES (?, 'amount over 10', 'shop.strict', 1, 'in.jsonl')",
                            (json.dumps({"event_id": "e1", "user_id": "u", "kind": "buy",
                                         "ts": 1, "amount": 20}),))
    connection.close()
    relaxed = hookline.Pipeline.from_plugins(
        [("shop", Strict)], Config(plugin_settings={"shop": {"limit": 5}}))
    assert replay(str(db), relaxed).dead_again == 1
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT replays, event_id, line FROM dead_letters"
                                  ).fetchall() == [(1, "e1", 1)]
    connection.close()


class Lenient(hookline.Stage, phase="validate", name="lenient"):
    """Refuses amounts over 10 unless the flag ``shop.lenient`` is on: a flag the stage's own
    code asks about, through ``hookline.flags.is_enabled``."""

    def process(self, event: hookline.Event) -> None:
        if event.amount > 10 and not hookline.flags.is_enabled("shop.lenient", event):
            raise hookline.Reject("amount over 10")


class _ShopFlags:
    """The flag ``Lenient`` asks about, declared by a hook object."""

    @hookline.hookimpl
    def hookline_flags(self) -> list[dict[str, object]]:
        return [{"name": "shop.lenient", "default": False}]


def _lenient_shop() -> list[tuple[str, object]]:
    return [("shop", Lenient), ("shop_flags", _ShopFlags())]


def test_replay_and_process_give_stage_code_the_pipelines_flags(tmp_path: Path) -> None:
    """``hookline.flags.is_enabled`` in a stage reads the flags of the pipeline that runs it:
    in a replay (HOOKLINE_FLAGS, ``[flags]``) and in ``Pipeline.process``, as in a run."""
    source, db = tmp_path / "in.jsonl", tmp_path / "out.db"
    source.write_text("".join(json.dumps({"event_id": f"e{i}", "user_id": "u", "kind": "buy",
                                          "ts": 1, "amount": i * 10}) + "\n"
                              for i in range(6)))
    strict = hookline.Pipeline.from_plugins(_lenient_shop())
    assert hookline.run([str(source)], db=str(db), pipeline=strict).dead_lettered == 4
    lenient = hookline.Pipeline.from_plugins(_lenient_shop(),
                                             Config(cli_flags={"shop.lenient": "on"}))
    report = replay(str(db), lenient)
    assert (report.replayed, report.accepted, report.dead_again) == (4, 4, 0)
    event = {"event_id": "x", "user_id": "u", "kind": "buy", "ts": 1, "amount": 50}
    assert lenient.process(event).amount == 50
    try:
        strict.process(event)
    except hookline.Reject as exc:
        assert str(exc) == "amount over 10"
    else:
        raise AssertionError("the strict pipeline's flag is off: the event is refused")
