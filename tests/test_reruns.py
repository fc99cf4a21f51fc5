"""Running again (issue 18): an input committed before is not read again, a re-delivered
event is counted as a duplicate and not stored again, and ``--reprocess`` replaces an
input's events rather than duplicating them.

The demo test runs ``hookline`` as a user types it, in processes of its own, with a small
installed plugin that refuses some events (so that some duplicates are of dead letters a
stage wrote); the others run in-process through ``hookline.run`` or ``main``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from _cli_site import Site
from _db import rows

import hookline
from hookline.config import Config
from hookline.errors import UsageError

#: Refuses the events in EUR: their letters carry their event id (a re-delivery of one of
#: them is a duplicate too).
_NO_EUR = '''
import hookline

class NoEur(hookline.Stage, phase="validate", name="no_eur"):
    def process(self, event):
        if event.currency == "EUR":
            raise hookline.Reject("no EUR here")
'''


def test_the_demo_twice_and_a_copy_of_it(site: Site, tmp_path: Path) -> None:
    site.install("noeur", _NO_EUR)
    db = tmp_path / "demo.db"

    first = site.process("run", "--demo", "--db", db, "--format", "json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["read"] == 100_000 and report["balanced"]
    refused = report["dead_letters_by_stage"]["noeur.no_eur"]
    invalid = report["dead_letters_by_stage"]["parse"] + report["dead_letters_by_stage"]["schema"]
    assert refused > 1000

    again = site.process("run", "--demo", "--db", db)
    assert again.returncode == 0, again.stderr
    [line] = again.stdout.splitlines()  # one line, and nothing read
    assert line.endswith(": committed up to line 100,000") and "nothing new in " in line

    demo = next((tmp_path / "cache").rglob("demo-*.jsonl"))
    copy = tmp_path / "delivered-again.jsonl"
    shutil.copyfile(demo, copy)
    [(letters_before,)] = rows(db, "SELECT count(*) FROM dead_letters")
    third = site.process("run", copy, "--db", db)
    assert third.returncode == 0, third.stderr
    valid = 100_000 - invalid  # accepted or refused by the stage: every one is stored
    assert re.search(rf"^  duplicates +{valid:,}  \(event_id stored before", third.stdout,
                     re.M), third.stdout  # on screen, a category of its own
    assert re.search(r"^  accepted +0$", third.stdout, re.M)
    [(letters_after,)] = rows(db, "SELECT count(*) FROM dead_letters")
    assert letters_after - letters_before <= invalid  # the invalid lines again, no more
    assert rows(db, "SELECT count(*) FROM events") == [(report["accepted"],)]
    sizes = [length for (length,) in rows(db, "SELECT length(report) FROM runs")]
    assert len(sizes) == 3 and max(sizes) < 10_000, sizes
    stored = json.loads(rows(db, "SELECT report FROM runs ORDER BY started_at DESC")[0][0])
    assert stored["duplicates"] == valid
    assert "duplicate event_id" not in json.dumps(stored["dead_letter_reasons"])


# -- in-process runs --------------------------------------------------------------------------


class Count(hookline.Stage, phase="validate", name="count"):
    """Counts each user's events (a velocity rule's memory) and refuses amounts over 100."""

    def process(self, event: hookline.Event) -> None:
        self.state[event.user_id] = self.state.get(event.user_id, 0) + 1
        if event.amount > 100:
            raise hookline.Reject("amount over 100")


def _events(path: Path, count: int, *, start: int = 0) -> Path:
    path.write_text("".join(
        json.dumps({"event_id": f"evt-{i:06d}", "user_id": f"u{i % 23}", "kind": "buy",
                    "ts": 1_000 + i, "amount": 150.0 if i % 10 == 0 else 5.0}) + "\n"
        for i in range(start, start + count)) + "{not json\n")
    return path


def _run(sources: list[Path], db: Path | str, **options: Any) -> hookline.Report:
    config = Config(batch_size=200)
    plugins = [("team", Count)]
    return hookline.run([str(s) for s in sources], db=str(db), config=config,
                        pipeline=hookline.Pipeline.from_plugins(plugins, config), **options)


def _state_total(db: Path) -> int:
    return sum(json.loads(value) for (value,) in rows(
        db, "SELECT value FROM stage_state WHERE stage = 'team.count'"))


def test_duplicates_dead_letter_keeps_storing_them(tmp_path: Path) -> None:
    first = _events(tmp_path / "a.jsonl", 500)
    db = tmp_path / "out.db"
    _run([first], db)
    copy = tmp_path / "b.jsonl"
    shutil.copyfile(first, copy)
    report = _run([copy], db, duplicates="dead-letter")
    assert (report.duplicates, report.accepted, report.dead_lettered) == (500, 0, 1)
    assert report.duplicates_stored and report.balanced
    assert rows(db, "SELECT count(*) FROM dead_letters WHERE stage = 'dedupe'") == [(500,)]
    assert dict(report.reasons)["duplicate event_id"] == 500
    assert "stored in dead_letters" in report.format()


def test_reprocess_replaces_an_input_and_rebuilds_aggregates_and_state(tmp_path: Path) -> None:
    source = _events(tmp_path / "in.jsonl", 1000)
    db = tmp_path / "out.db"
    first = _run([source], db)
    before = {table: rows(db, f"SELECT * FROM {table} ORDER BY 1") for table in (
        "agg_by_user", "agg_by_kind", "stage_state")}

    again = _run([source], db, reprocess=True)
    assert again.reprocessed == [str(source)]
    assert (again.read, again.accepted, again.duplicates) == (first.read, first.accepted, 0)
    assert rows(db, "SELECT count(*) FROM events") == [(900,)]
    assert rows(db, "SELECT count(*) FROM dead_letters") == [(101,)]  # 100 refused, 1 bad
    after = {table: rows(db, f"SELECT * FROM {table} ORDER BY 1") for table in before}
    assert after == before  # rebuilt from the input alone, not added to
    assert _state_total(db) == 1000
    assert rows(db, "SELECT count(*) FROM runs") == [(2,)]  # the history stays
    assert f"reprocessed {source}" in again.format()


def test_reprocess_refuses_a_database_that_holds_other_inputs(tmp_path: Path) -> None:
    mine, other = _events(tmp_path / "mine.jsonl", 300), _events(tmp_path / "other.jsonl", 300,
                                                                 start=300)
    db = tmp_path / "out.db"
    _run([mine, other], db)
    with pytest.raises(UsageError, match=r"also holds .*other\.jsonl.*Reprocess all of them"):
        _run([mine], db, reprocess=True)
    assert rows(db, "SELECT count(*) FROM events") == [(540,)]  # untouched
    both = _run([mine, other], db, reprocess=True)  # all of them together: allowed
    assert sorted(both.reprocessed) == sorted([str(mine), str(other)])
    assert rows(db, "SELECT count(*) FROM events") == [(540,)]
    assert _state_total(db) == 600


def test_an_input_appended_to_reads_only_its_new_lines(tmp_path: Path) -> None:
    source = _events(tmp_path / "in.jsonl", 200)
    db = tmp_path / "out.db"
    _run([source], db)
    with source.open("a") as handle:
        handle.write(_events(tmp_path / "more.jsonl", 50, start=200).read_text())
    report = _run([source], db)
    assert (report.read, report.duplicates) == (51, 0)
    assert report.inputs == [{"name": str(source), "from_line": 201, "to_line": 252,
                              "read": 51}]
    assert not report.unchanged()


def test_the_command_line_options(site: Site) -> None:
    events = site.events(300)
    assert site.hookline("run", events, "--db", "out.db").code == 0
    again = site.hookline("run", events, "--db", "out.db")
    assert again.out.startswith("hookline run ") and "nothing new in" in again.out
    copy = site.work / "copy.jsonl"
    shutil.copyfile(events, copy)
    stored = site.hookline("run", copy, "--db", "out.db", "--duplicates", "dead-letter",
                           "--format", "json")
    assert json.loads(stored.out)["duplicates"] == 300
    refused = site.hookline("run", events, "--db", "out.db", "--reprocess")
    assert refused.code == 2 and "copy.jsonl" in refused.err and "new --db" in refused.err
    with pytest.raises(SystemExit) as wrong:
        site.hookline("run", events, "--db", "out.db", "--duplicates", "drop")
    assert wrong.value.code == 2


@pytest.mark.integration
def test_reprocess_and_duplicates_in_postgresql(tmp_path: Path, postgres_url: str) -> None:
    source = _events(tmp_path / "in.jsonl", 600)
    first = _run([source], postgres_url)
    copy = tmp_path / "copy.jsonl"
    shutil.copyfile(source, copy)
    duplicated = _run([copy], postgres_url)
    assert (duplicated.duplicates, duplicated.dead_lettered, duplicated.accepted) == (600, 1, 0)
    with pytest.raises(UsageError, match="copy.jsonl"):
        _run([source], postgres_url, reprocess=True)
    both = _run([source, copy], postgres_url, reprocess=True)
    assert sorted(both.reprocessed) == sorted([str(source), str(copy)])
    assert (both.accepted, both.duplicates) == (first.accepted, 600)
    assert both.dead_lettered == first.dead_lettered + 1
