"""Issue 17's acceptance, as a user runs it: ``hookline generate --attacks``, then
``hookline run`` with hookline-fraud installed (inline, shadowed, ``--executor process``, and
killed with -9 then resumed).

Every injected attack is refused by the rule meant for it, with the figures in its reason; no
clean event is refused; in shadow mode nothing is refused and each attack lists its rule in
``fraud_shadow``; the three ways of running decide alike, the rules' state included.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hookline.testing import database_content

pytestmark = pytest.mark.integration

N = 100_000
#: The rule of hookline-fraud's defaults meant to refuse each attack label of the generator.
RULE_OF = {"burst": "velocity", "spend": "velocity", "amount": "amount_limit",
           "blocked_user": "blocked_user", "refund": "sequence",
           "blocked_currency": "blocked_currency"}
#: Attack events the limits let through: the first ten purchases of a burst, and so on.
LEADS = {"burst_lead", "spend_lead"}
#: The users the generator's blocked_user attacks send events as.
BANNED = [f"banned-{k:02d}" for k in range(10)]
#: Aggregates sum floats per batch: every run uses the same batches.
BATCH = ("--batch-size", "1000")


def hookline(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "hookline.cli", *args], cwd=cwd, env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"hookline {' '.join(args)}: {result.stderr}"
    return result


#: Only hookline-fraud decides (other installed plugins are not loaded).
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")},
       "HOOKLINE_PLUGINS": "fraud"}


@dataclass
class Generated:
    """The generated file and, from its lines, what each event is expected to meet."""

    folder: Path
    events: Path
    #: event_id -> the attack label in properties.injected (None: clean).
    labels: dict[str, str | None] = field(default_factory=dict)
    #: event_id -> the figures its reason must give ("11 purchases", "10,450.00 USD").
    figures: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    folder = tmp_path_factory.mktemp("fraud-acceptance")
    out = hookline("generate", "-n", str(N), "--attacks", "0.02", "--seed", "17", "-o",
                   "events.jsonl", cwd=folder)
    assert re.search(r"wrote 100,000 events \(5,000 invalid, [\d,]+ in attacks\)", out.stderr)
    (folder / "banned.txt").write_text("# the generator's banned users\n" + "\n".join(BANNED),
                                       encoding="utf-8")
    (folder / "hookline.toml").write_text('[settings.fraud]\nblocked_users_file = "banned.txt"\n',
                                          encoding="utf-8")
    found = Generated(folder, folder / "events.jsonl")
    seen: Counter[str] = Counter()
    spent: Counter[str] = Counter()
    for line in found.events.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
            event_id, properties = event["event_id"], event["properties"]
            label = properties.get("injected")
        except (ValueError, TypeError, KeyError, AttributeError):
            continue  # a line broken on purpose: the schema refuses it
        found.labels[event_id] = label
        if label in ("burst", "burst_lead", "spend", "spend_lead"):
            user = event["user_id"]
            seen[user] += 1
            spent[user] += event["amount"]
            found.figures[event_id] = (f"{seen[user]} purchases" if label == "burst"
                                       else f"{spent[user]:,.2f} USD")
    return found


@dataclass
class Decisions:
    accepted: dict[str, tuple[float, str | None]]  # event_id -> (risk, fraud_shadow)
    refused: dict[str, tuple[str, str]]  # event_id -> (stage, reason), refused by a fraud rule


def decisions(db: Path) -> Decisions:
    with sqlite3.connect(db) as connection:
        accepted = {row[0]: (row[1], row[2]) for row in connection.execute(
            "SELECT event_id, risk, fraud_shadow FROM events")}
        refused = {row[0]: (row[1], row[2]) for row in connection.execute(
            "SELECT event_id, stage, reason FROM dead_letters WHERE plugin = 'fraud'")}
    return Decisions(accepted, refused)


@pytest.fixture(scope="module")
def inline(generated: Generated) -> Path:
    hookline("run", "events.jsonl", "--db", "inline.db", *BATCH, cwd=generated.folder)
    return generated.folder / "inline.db"


REASONS = {
    "velocity": r"velocity: (\d+ purchases in 60 s|[\d,]+\.\d\d USD in purchases in 3600 s) for "
                r"user attacker-\d{6}, limit (10|10,000\.00 USD)",
    "amount_limit": r"amount_limit: purchase of [\d,]+\.\d\d [A-Z]{3}( \([\d,]+\.\d\d USD\))? "
                    r"for user attacker-\d{6}, limit 5,000\.00 USD",
    "blocked_user": r"blocked_user: user banned-\d\d is blocked",
    "sequence": r"sequence: refund of [\d,]+\.\d\d USD for user attacker-\d{6} is larger than the "
                r"user's purchases so far, 0\.00 USD",
    "blocked_currency": r"blocked_currency: currency '(XTS|XXX)' is blocked",
}


def test_every_attack_is_refused_by_its_rule_and_no_clean_event_is(
    generated: Generated, inline: Path
) -> None:
    found = decisions(inline)
    valid = set(found.accepted) | set(found.refused)
    assert len(valid) == N - 5_000  # every valid line was decided by the rules
    refused_by: Counter[str] = Counter()
    for event_id in valid:
        label = generated.labels[event_id]
        if label in RULE_OF:
            assert event_id in found.refused, f"attack {label} {event_id} was let through"
            stage, reason = found.refused[event_id]
            rule = RULE_OF[label]
            assert stage == f"fraud.{rule}", (label, event_id, reason)
            assert re.fullmatch(REASONS[rule], reason), reason
            if event_id in generated.figures:
                assert f": {generated.figures[event_id]} in " in reason, reason
            refused_by[label] += 1
        else:
            assert event_id in found.accepted, (
                f"{label or 'clean'} event {event_id} refused: {found.refused.get(event_id)}")
    assert all(refused_by[label] >= 50 for label in RULE_OF), refused_by
    risks = [found.accepted[event_id][0] for event_id in found.accepted
             if generated.labels[event_id] == "burst_lead"]
    assert max(risks) == 1.0 and min(risks) == 0.0  # the tenth purchase is at the limit


def test_in_shadow_mode_nothing_is_refused_and_each_attack_is_listed(
    generated: Generated,
) -> None:
    hookline("run", "events.jsonl", "--db", "shadow.db", "--flag", "fraud.shadow", *BATCH,
             cwd=generated.folder)
    found = decisions(generated.folder / "shadow.db")
    assert found.refused == {}
    assert len(found.accepted) == N - 5_000
    listed: Counter[str] = Counter()
    for event_id, (risk, shadow) in found.accepted.items():
        label = generated.labels[event_id]
        if label in RULE_OF:
            # Its rule first, as it refuses it first when enforcing (an amount over 10,000
            # is over the hourly velocity limit too: both are listed).
            assert shadow is not None and json.loads(shadow)[0] == RULE_OF[label], (
                label, event_id, shadow)
            assert risk == 1.0
            listed[label] += 1
        else:
            assert shadow is None, (label, event_id, shadow)
    assert set(listed) == set(RULE_OF)


def test_the_process_executor_decides_as_inline(generated: Generated, inline: Path) -> None:
    hookline("run", "events.jsonl", "--db", "process.db", "--executor", "process",
             "--workers", "2", *BATCH, cwd=generated.folder)
    assert_same(generated.folder / "process.db", inline)


def test_a_run_killed_with_9_then_resumed_decides_as_inline(
    generated: Generated, inline: Path
) -> None:
    db = generated.folder / "killed.db"
    size = generated.events.stat().st_size
    run = subprocess.Popen([sys.executable, "-m", "hookline.cli", "run", "events.jsonl", "--db",
                            str(db), *BATCH], cwd=generated.folder, env=ENV,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while _committed(db) < size // 3 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run.poll() is None, "the run ended before it could be killed: kill sooner"
        os.kill(run.pid, signal.SIGKILL)
        assert run.wait(timeout=60) == -signal.SIGKILL
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(timeout=60)
    assert 0 < _committed(db) < size  # killed in the middle, with batches committed
    hookline("run", "events.jsonl", "--db", str(db), *BATCH, cwd=generated.folder)
    assert_same(db, inline)


def assert_same(db: Path, reference: Path) -> None:
    """The same events, dead letters, aggregates and stage state (the rules' windows and
    balances) as ``reference``."""
    content, expected = database_content(db), database_content(reference)
    assert content["stage_state"] and content["stage_state"] == expected["stage_state"]
    assert content == expected


def _committed(db: Path) -> int:
    """How far the run has committed the input (0 before its first commit)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as connection:
            rows = connection.execute("SELECT offset FROM checkpoints").fetchall()
    except sqlite3.OperationalError:  # no database or table yet, or a commit in progress
        return 0
    return int(rows[0][0]) if rows else 0
