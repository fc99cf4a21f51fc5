"""Looking back (issue 18): ``hookline runs`` lists past runs and shows one's report,
``hookline dead-letters`` lists dead letters by stage, reason and run, and ``hookline replay``
takes the same filters; a replayed letter is never applied twice. SQLite in-process; the
same commands against a real PostgreSQL server in the integration suite."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from _cli_site import Site
from _db import rows

#: A plugin that refuses some events, with a stateful stage counting every event it sees.
_SHOP = '''
import hookline

class Limits(hookline.Stage, phase="validate", name="limits"):
    class Settings(hookline.Settings):
        ceiling = hookline.fields.Number(default=50)

    def process(self, event):
        self.state[event.user_id] = self.state.get(event.user_id, 0) + 1
        if event.amount > self.settings.ceiling:
            raise hookline.Reject(f"amount over {self.settings.ceiling}")

class Kinds(hookline.Stage, phase="enrich", name="kinds"):
    def process(self, event):
        if event.kind == "refund":
            raise hookline.Reject("refunds go elsewhere")
'''


@pytest.fixture
def site(site: Site) -> Site:
    """The shop plugin installed."""
    site.install("shop", _SHOP)
    return site


def _events(site: Site, name: str, count: int, start: int = 0) -> Path:
    kinds = ("buy", "view", "refund", "click")
    path = site.work / name
    path.write_text("".join(
        json.dumps({"event_id": f"e{i:05d}", "user_id": f"u{i % 17}", "kind": kinds[i % 4],
                    "ts": 1_000 + i, "amount": 80.0 if i % 5 == 0 else 10.0}) + "\n"
        for i in range(start, start + count)) + "{broken\n")
    return path


def _runs(site: Site, db: str) -> list[dict[str, Any]]:
    result = site.hookline("runs", "--db", db, "--format", "json")
    assert result.code == 0, result.err
    runs: list[dict[str, Any]] = json.loads(result.out)
    return runs


def test_runs_lists_past_runs_and_shows_one(site: Site) -> None:
    first = _events(site, "monday.jsonl", 200)
    second = _events(site, "tuesday.jsonl", 100, start=200)
    assert site.hookline("run", first, "--db", "out.db").code == 0
    assert site.hookline("run", second, "--db", "out.db", "--max-dead-letter-ratio",
                         "0.1").code == 3

    listed = site.hookline("runs", "--db", "out.db")
    assert listed.code == 0
    head, newest, oldest = listed.out.splitlines()
    assert head.split()[:6] == ["run", "started", "status", "exit", "read", "accepted"]
    stored = _runs(site, "out.db")
    assert [run["report"]["inputs"][0]["name"] for run in stored] == [str(second), str(first)]
    assert newest.startswith(stored[0]["run_id"]) and oldest.startswith(stored[1]["run_id"])
    assert re.search(r" over the de… +3 +101 +60 +0 +41 +0 .*tuesday\.jsonl$", newest), newest
    assert re.search(r" completed +0 +201 +120 +0 +81 +0 .*monday\.jsonl$", oldest), oldest

    run_id = stored[1]["run_id"]
    shown = site.hookline("runs", "--db", "out.db", run_id[:5])
    assert shown.code == 0
    assert shown.out.startswith(f"run {run_id}: started ")
    assert "completed (exit status 0)" in shown.out
    assert f"input {first}: lines 0 to 201 (201 events read)" in shown.out
    assert f"hookline run {run_id}: 201 events read" in shown.out  # the report, as printed
    assert "shop.limits" in shown.out and "top dead-letter reasons:" in shown.out
    assert json.loads(site.hookline("runs", "--db", "out.db", run_id,
                                    "--format", "json").out)["report"]["read"] == 201

    missing = site.hookline("runs", "--db", "out.db", "ffff")
    assert missing.code == 1 and "no run whose id starts with 'ffff'" in missing.err
    assert site.hookline("runs", "--db", "out.db", "--limit", "1").out.count("\n") == 2


def test_dead_letters_by_stage_reason_and_run(site: Site) -> None:
    first = _events(site, "monday.jsonl", 200)
    assert site.hookline("run", first, "--db", "out.db").code == 0
    assert site.hookline("run", _events(site, "tuesday.jsonl", 100, start=200),
                         "--db", "out.db").code == 0
    tuesday = _runs(site, "out.db")[0]["run_id"]

    def letters(*options: str) -> list[dict[str, Any]]:
        result = site.hookline("dead-letters", "--db", "out.db", "--limit", "0",
                               "--format", "json", *options)
        assert result.code == 0, result.err
        found: list[dict[str, Any]] = json.loads(result.out)
        return found

    every = letters()
    assert len(every) == 2 + 60 + 60  # broken lines, over 50 (1 in 5), refunds of the rest
    assert [letter["id"] for letter in every] == sorted(letter["id"] for letter in every)
    assert len(letters("--stage", "shop")) == 120  # a plugin's name: all its stages
    over = letters("--stage", "shop.limits")
    assert len(over) == 60 and {letter["reason"] for letter in over} == {"amount over 50"}
    assert len(letters("--reason", "REFUNDS")) == 60
    assert len(letters("--run", tuesday[:6])) == 1 + 20 + 20
    assert len(letters("--run", tuesday, "--stage", "parse")) == 1
    assert letters("--reason", "no such reason") == []
    assert {"payload", "error", "line", "source", "plugin", "created_at", "replays",
            "event_id"} <= set(every[0])

    text = site.hookline("dead-letters", "--db", "out.db", "--stage", "shop.kinds",
                         "--limit", "2").out
    assert text.splitlines()[-1] == (
        "2 of 60 dead letters (--limit 2; --format json gives every column)")
    assert "reason:  refunds go elsewhere" in text and 'payload: {"event_id": "e' in text
    assert "monday.jsonl:3" in text  # file and line of the first refund (e00002)


def test_replay_takes_the_same_filters_and_applies_a_letter_once(site: Site) -> None:
    source = _events(site, "monday.jsonl", 200)
    assert site.hookline("run", source, "--db", "out.db").code == 0
    db = site.work / "out.db"

    def counted() -> int:  # what the stateful stage counted, over every user
        return sum(json.loads(value) for (value,) in rows(
            db, "SELECT value FROM stage_state WHERE stage = 'shop.limits'"))

    def replay(*options: str) -> str:
        result = site.hookline("replay", "--db", "out.db", *options)
        assert result.code == 0, result.err
        return result.out.strip()

    assert counted() == 200
    site.config("[settings.shop]\nceiling = 100\n")  # the rule relaxed: 80 passes now
    # the 25 oldest of the 40 over 50; the refunds among them are refused by the next stage
    assert replay("--stage", "shop.limits", "--limit", "25") == (
        "replayed 25 dead letters: 19 accepted, 0 dropped, 6 dead again")
    assert rows(db, "SELECT count(*) FROM dead_letters WHERE stage = 'shop.limits'") == [(15,)]
    assert counted() == 225  # a letter's first replay: its state changes kept
    assert replay("--stage", "shop.limits") == (
        "replayed 15 dead letters: 11 accepted, 0 dropped, 4 dead again")
    assert counted() == 240
    # 40 refunds never replayed, and 10 replayed once already
    assert replay("--reason", "refunds") == (
        "replayed 50 dead letters: 0 accepted, 0 dropped, 50 dead again")
    assert counted() == 280  # the 40 once; the 10 replayed before: not again
    assert replay("--reason", "refunds") == (
        "replayed 50 dead letters: 0 accepted, 0 dropped, 50 dead again")
    assert counted() == 280  # replaying twice never applies a letter twice
    assert rows(db, "SELECT count(*), count(DISTINCT event_id) FROM events") == [(150, 150)]
    assert rows(db, "SELECT max(replays) FROM dead_letters WHERE stage = 'shop.kinds'") == [
        (3,)]
    assert replay("--run", "nosuchrun") == (
        "replayed 0 dead letters: 0 accepted, 0 dropped, 0 dead again")


def test_replay_clears_stored_duplicates(site: Site) -> None:
    source = _events(site, "monday.jsonl", 100)
    assert site.hookline("run", source, "--db", "out.db").code == 0
    copy = site.work / "copy.jsonl"
    copy.write_text(source.read_text())
    assert site.hookline("run", copy, "--db", "out.db", "--duplicates",
                         "dead-letter").code == 0
    db = site.work / "out.db"
    assert rows(db, "SELECT count(*) FROM dead_letters WHERE stage = 'dedupe'") == [(100,)]
    letters = rows(db, "SELECT count(*) FROM dead_letters")
    state = rows(db, "SELECT * FROM stage_state ORDER BY 1, 2")
    result = site.hookline("replay", "--db", "out.db", "--stage", "dedupe")
    assert result.out.strip() == ("replayed 100 dead letters: 0 accepted, 0 dropped, "
                                  "0 dead again, 100 duplicates (stored already: deleted)")
    assert rows(db, "SELECT count(*) FROM dead_letters WHERE stage = 'dedupe'") == [(0,)]
    assert rows(db, "SELECT count(*) FROM dead_letters") == [(letters[0][0] - 100,)]
    assert rows(db, "SELECT * FROM stage_state ORDER BY 1, 2") == state  # no stage ran


def test_looking_back_never_makes_a_database(site: Site) -> None:
    for command in (["runs"], ["dead-letters"], ["runs", "abc"]):
        result = site.hookline(*command, "--db", "missing.db")
        assert result.code == 1 and "no database at missing.db" in result.err
    assert not (site.work / "missing.db").exists()
    assert site.hookline("run", _events(site, "a.jsonl", 5), "--db", "out.db").code == 0
    assert site.hookline("dead-letters", "--db", "out.db", "--stage", "x").out.strip() == (
        "no dead letters match")


@pytest.mark.integration
def test_runs_and_dead_letters_in_postgresql(site: Site, postgres_url: str) -> None:
    source = _events(site, "monday.jsonl", 200)
    assert site.hookline("run", source, "--db", postgres_url).code == 0, "run"
    [run] = _runs(site, postgres_url)
    assert (run["report"]["read"], run["report"]["exit_status"]) == (201, 0)
    assert run["finished_at"] >= run["started_at"] > 1_700_000_000
    shown = site.hookline("runs", "--db", postgres_url, run["run_id"][:4])
    assert f"hookline run {run['run_id']}: 201 events read" in shown.out
    found = json.loads(site.hookline("dead-letters", "--db", postgres_url, "--stage", "shop",
                                     "--reason", "REFUND", "--run", run["run_id"][:3],
                                     "--limit", "0", "--format", "json").out)
    assert len(found) == 40 and {letter["stage"] for letter in found} == {"shop.kinds"}
    assert found[0]["created_at"] > 1_700_000_000
    site.config("[settings.shop]\nceiling = 100\n")
    result = site.hookline("replay", "--db", postgres_url, "--stage", "shop.limits")
    assert result.out.strip() == ("replayed 40 dead letters: 30 accepted, 0 dropped, "
                                  "10 dead again")
