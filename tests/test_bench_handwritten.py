"""The end-to-end benchmark's hand-written script does the work ``hookline run`` does.

``benchmarks/bench_end_to_end.py`` times ``hookline run`` with the three contrib plugins
against ``benchmarks/handwritten.py``: the ratio means something only while the script does
the same work. Here both run on the same generated events (attacks injected, so that every
fraud rule refuses some), in two runs each, the second after more lines were appended (it
resumes after the first run's checkpoint, from the state the first committed). Their
databases must then hold the same ``events`` (every column; floats equal to 9 significant
digits), the same ``dead_letters`` (line, stage, reason category, payload, event id), the
same aggregates row by row, the same per-user state in ``stage_state`` and the same
checkpoint.

The plugins are run from this checkout's ``contrib/`` (their sources and their entry points on
``PYTHONPATH``), so the test runs wherever hookline is installed, with or without them.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
HANDWRITTEN = ROOT / "benchmarks" / "handwritten.py"
PLUGINS = ("fraud", "monitoring", "ranking")
EVENTS, FIRST_RUN = 3000, 1800


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The variables of a process that has the checkout's three contrib plugins installed:
    their source folders, and a folder with each distribution's metadata and entry point (as
    pip leaves them), on ``PYTHONPATH``; no ``HOOKLINE_*`` variable of the developer's."""
    site = tmp_path_factory.mktemp("site")
    paths = [str(site)]
    for name in PLUGINS:
        folder = ROOT / "contrib" / name
        project = tomllib.loads((folder / "pyproject.toml").read_text("utf-8"))["project"]
        info = site / f"hookline_{name}-{project['version']}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                       f"Version: {project['version']}\n", encoding="utf-8")
        entry_points = "".join(f"[{group}]\n" + "".join(f"{key} = {value}\n"
                                                         for key, value in points.items())
                               for group, points in project["entry-points"].items())
        (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")
        paths.append(str(folder / "src"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOOKLINE_")}
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["HOOKLINE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    env["HOOKLINE_PLUGINS"] = ",".join(PLUGINS)
    return env


def _run(command: list[str], work: Path, env: dict[str, str]) -> None:
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n" \
                                 f"{done.stdout}\n{done.stderr}"


def _category(stage: str, reason: str) -> str:
    """How a reason is compared: the bad fields of a schema error, the kind of a parse error,
    a fraud rule's reason whole (its wording and figures are the rule's)."""
    if stage == "schema":
        bad = reason.partition("bad field")[2].partition(": ")[2]
        return "invalid: " + ", ".join(part.partition(":")[0] for part in bad.split("; "))
    if stage == "parse":
        return reason.partition(":")[0]
    return reason


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (isinstance(a, (int, float)) and isinstance(b, (int, float))
                and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    return bool(a == b)


class Database:
    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path)

    def columns(self, table: str) -> list[tuple[str, str]]:
        return [(row[1], row[2]) for row in self.connection.execute(
            f"PRAGMA table_xinfo({table})")]

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        return self.connection.execute(query).fetchall()

    def letters(self) -> list[tuple[Any, ...]]:
        return [(line, stage, _category(stage, reason), payload, event_id, plugin)
                for line, stage, reason, payload, event_id, plugin in self.rows(
                    "SELECT line, stage, reason, payload, event_id, plugin FROM dead_letters "
                    "ORDER BY line")]

    def state(self) -> dict[tuple[str, str], Any]:
        return {(stage, key): json.loads(value)
                for stage, key, value in self.rows("SELECT stage, key, value FROM stage_state")}


def _differences(ours: list[tuple[Any, ...]], theirs: list[tuple[Any, ...]]
                 ) -> list[tuple[Any, Any]]:
    return [(a, b) for a, b in zip(ours, theirs) if not _same(a, b)][:5]


def test_the_hand_written_script_stores_what_hookline_run_stores(
        tmp_path: Path, environment: dict[str, str]) -> None:
    _run([sys.executable, "-m", "hookline.cli", "generate", "-n", str(EVENTS), "--attacks",
          "0.02", "--seed", "1", "-o", "all.jsonl"], tmp_path, environment)
    lines = (tmp_path / "all.jsonl").read_bytes().splitlines(keepends=True)
    commands = ([sys.executable, "-m", "hookline.cli", "run", "in.jsonl", "--db", "hookline.db"],
                [sys.executable, str(HANDWRITTEN), "in.jsonl", "hand.db"])
    with open(tmp_path / "in.jsonl", "wb") as growing:
        for part in (lines[:FIRST_RUN], lines[FIRST_RUN:]):  # the second run resumes
            growing.write(b"".join(part))
            growing.flush()
            for command in commands:
                _run(command, tmp_path, environment)
    hookline, hand = Database(tmp_path / "hookline.db"), Database(tmp_path / "hand.db")

    for table in ("events", "dead_letters", "agg_by_user", "agg_by_kind", "stage_state",
                  "checkpoints"):
        assert hand.columns(table) == hookline.columns(table), table
    events = "SELECT * FROM events ORDER BY event_id"
    assert len(hand.rows(events)) == len(hookline.rows(events))
    assert _differences(hand.rows(events), hookline.rows(events)) == []
    letters = hookline.letters()
    assert len(hand.letters()) == len(letters)
    assert [a for a, b in zip(hand.letters(), letters) if a != b][:5] == []
    for table in ("agg_by_user", "agg_by_kind"):
        query = f"SELECT * FROM {table} ORDER BY 1"
        assert len(hand.rows(query)) == len(hookline.rows(query)), table
        assert _differences(hand.rows(query), hookline.rows(query)) == [], table
    state = hookline.state()
    assert sorted(hand.state()) == sorted(state)
    assert [key for key, value in hand.state().items() if not _same(value, state[key])] == []
    checkpoint = "SELECT offset, line FROM checkpoints"
    assert hand.rows(checkpoint) == hookline.rows(checkpoint) == [
        (sum(map(len, lines)), EVENTS)]

    # The comparison covered every path: each rule refused some events and raised the risk
    # of others, and each stateful stage kept state.
    refused = Counter(stage for _, stage, *_ in letters)
    assert {"parse", "schema", "fraud.blocked_currency", "fraud.amount_limit",
            "fraud.velocity", "fraud.sequence"} <= refused.keys(), refused
    assert hookline.rows("SELECT count(*) FROM events WHERE risk > 0")[0][0] > 0
    assert {stage for stage, _ in state} == {"fraud.velocity", "fraud.sequence",
                                             "ranking.score"}
