"""The compass run of issue 14: every fault at once, in one ordinary ``hookline run``.

100,000 generated events (5 % invalid) through installed plugins that raise on 1 % of the
events, tamper with 1 % in each of eight ways, call ``sys.exit`` on 0.1 % and get stuck for
good on one: the run ends by itself, every line has exactly one outcome, nothing invalid is
stored, and every dead letter names its stage.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import hookline
from hookline.errors import ValidationError

from ._cli import Env, no_traceback, rows

EVENTS = 100_000

#: ``pick(event_id)``: the same small share of events for every plugin, spread over the file.
PICK = '''
import zlib

def pick(event_id, per):
    """The event's place in ``per`` equal slices (crc32 of its id: stable across runs)."""
    return zlib.crc32(event_id.encode()) % per
'''

RAISER = PICK + '''
import hookline

class Raiser(hookline.Stage, phase="validate", name="raiser"):
    def process(self, event):
        if pick(event.event_id, 100) == 0:
            raise RuntimeError("raiser broke on " + event.event_id)
'''

EXITER = PICK + '''
import sys
import hookline

class Exiter(hookline.Stage, phase="score", name="exiter"):
    def process(self, event):
        if pick(event.event_id, 1000) == 7:
            sys.exit(3)
'''

STUCK = '''
import threading
import hookline

class Stuck(hookline.Stage, phase="enrich", name="stuck"):
    """Never returns for the first event it sees."""

    done = False

    def process(self, event):
        if not Stuck.done:
            Stuck.done = True
            threading.Event().wait()
'''

#: Eight ways to get past the fields' checks (issue 14, cases 8 and 9), each on 1/800th of
#: the events: 1 % in all.
TAMPERER = PICK + '''
import hookline

class Loose(hookline.DefaultEvent):
    amount = hookline.fields.Number()
    kind = hookline.fields.Integer()

def bare(cls, values):
    event = object.__new__(cls)
    event.__dict__.update(values)
    return event

def rename(event):
    event.__dict__["event_id"] = event.event_id + "-renamed"

WAYS = [
    lambda e: e.__dict__.__setitem__("amount", -7),
    lambda e: e.__dict__.__setitem__("amount", "lots"),
    lambda e: object.__setattr__(e, "ts", "soon"),
    lambda e: e.tags.append(1),
    lambda e: e.__dict__.__delitem__("kind"),
    lambda e: Loose.from_dict({**e.to_dict(), "amount": -1, "kind": 3}),
    lambda e: bare(type(e), {**e.__dict__, "user_id": ""}),
    rename,
]

class Tamperer(hookline.Stage, phase="enrich", name="tamperer"):
    def process(self, event):
        slot = pick(event.event_id, 800)
        if slot >= 792:
            return WAYS[slot - 792](event)
        return None
'''


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the event it was (JSON columns decoded, NULLs left out)."""
    values = {}
    for name, value in row.items():
        if value is None:
            continue
        if name in ("tags", "properties"):
            value = json.loads(value)
        values[name] = value
    return values


def test_every_fault_at_once(tmp_path: Path) -> None:
    env = Env(tmp_path)
    for name, source in (("raiser", RAISER), ("tamperer", TAMPERER), ("exiter", EXITER),
                         ("stuck", STUCK)):
        env.install(name, source)
    data = env.events(n=EVENTS, seed=14, invalid_rate=0.05)
    db = env.work / "out.db"
    result = env.hookline("run", str(data), "--db", str(db), "--format", "json", timeout=240,
                          HOOKLINE_STAGE_TIMEOUT="2")
    no_traceback(result)
    assert result.returncode == 0, result.stderr  # the run ends by itself, normally
    report = json.loads(result.stdout)

    # Each line exactly once: counted, and found once in the database.
    assert report["read"] == EVENTS
    assert report["accepted"] + report["dropped"] + report["dead_lettered"] == EVENTS
    stored = rows(db, "SELECT count(*), count(DISTINCT event_id) FROM events")[0]
    assert stored == (report["accepted"], report["accepted"])
    letters = rows(db, "SELECT line, stage, reason FROM dead_letters")
    assert len(letters) == report["dead_lettered"]
    assert len({line for line, _, _ in letters}) == len(letters)  # no line twice
    assert report["dropped"] == 0  # no plugin here drops
    line_of = {}
    with data.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            try:
                line_of[json.loads(raw)["event_id"]] = number
            except (ValueError, KeyError, TypeError):
                pass  # an invalid line: it is on a dead letter
    stored_lines = {line_of[i] for (i,) in rows(db, "SELECT event_id FROM events")}
    letter_lines = {line for line, _, _ in letters}
    assert not stored_lines & letter_lines
    assert stored_lines | letter_lines == set(range(1, EVENTS + 1))

    # Every dead letter names its stage, and each fault landed where it belongs.
    assert all(stage for _, stage, _ in letters), [x for x in letters if not x[1]]
    by_stage: dict[str, int] = {}
    for _, stage, _ in letters:
        by_stage[stage] = by_stage.get(stage, 0) + 1
    valid = EVENTS - by_stage.get("parse", 0) - by_stage.get("schema", 0)
    assert 0.04 * EVENTS < EVENTS - valid < 0.06 * EVENTS  # the 5 % invalid lines
    assert 0.008 * valid < by_stage["raiser.raiser"] < 0.012 * valid
    assert 0.008 * valid < by_stage["tamperer.tamperer"] < 0.012 * valid
    assert 0.0005 * valid < by_stage["exiter.exiter"] < 0.0015 * valid
    assert by_stage["stuck.stuck"] == 1
    [(reason,)] = rows(db, "SELECT reason FROM dead_letters WHERE stage = 'stuck.stuck'")
    assert "timeout" in reason
    tampered = rows(db, "SELECT reason FROM dead_letters WHERE stage = 'tamperer.tamperer'")
    assert all(r.startswith("tamperer.tamperer tampered with the event") for (r,) in tampered)

    # Nothing invalid stored: every row passes the schema's own checks again.
    schema = hookline.Pipeline.from_plugins([]).event_class
    with closing(sqlite3.connect(db)) as connection:
        connection.row_factory = sqlite3.Row
        bad = []
        for row in connection.execute("SELECT * FROM events"):
            try:
                schema.from_dict(_decoded(dict(row)))
            except ValidationError as exc:
                bad.append((row["event_id"], str(exc)))
    assert bad == []
    renamed = rows(db, "SELECT count(*) FROM events WHERE event_id LIKE '%-renamed'")
    assert renamed == [(0,)]
