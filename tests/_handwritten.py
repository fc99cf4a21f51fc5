"""What the tests of ``benchmarks/handwritten.py`` share, whichever database the two programs
write (SQLite or PostgreSQL): the process environment with the checkout's contrib plugins,
the two runs of each program over a growing input, and the table-by-table comparison.

The end-to-end benchmarks time ``hookline run`` with the three contrib plugins against that
script: their ratios mean something only while the script stores what hookline stores. Both
run on the same generated events (attacks injected, so that every fraud rule refuses some),
in two runs each, the second after more lines were appended (it resumes after the first
run's checkpoint, from the state the first committed). Their databases must then hold the
same column names and types, the same ``events`` (every column; floats equal to 9
significant digits), the same ``dead_letters`` (line, stage, reason category, payload, event
id, plugin), the same aggregates row by row, the same per-user state in ``stage_state`` and
the same checkpoint.

The plugins are run from this checkout's ``contrib/`` (their sources and their entry points on
``PYTHONPATH``), so the tests run wherever hookline is installed, with or without them.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from abc import ABC, abstractmethod
from collections import Counter
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
HANDWRITTEN = ROOT / "benchmarks" / "handwritten.py"
PLUGINS = ("fraud", "monitoring", "ranking")
EVENTS, FIRST_RUN = 3000, 1800
#: The tables both programs write, compared one by one.
TABLES = ("events", "dead_letters", "agg_by_user", "agg_by_kind", "stage_state", "checkpoints")


def plugin_environment(site: Path, cache: Path) -> dict[str, str]:
    """The variables of a process that has the checkout's three contrib plugins installed:
    their source folders, and ``site`` with each distribution's metadata and entry point (as
    pip leaves them), on ``PYTHONPATH``; no ``HOOKLINE_*`` variable of the developer's."""
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
    env["HOOKLINE_CACHE_DIR"] = str(cache)
    env["HOOKLINE_PLUGINS"] = ",".join(PLUGINS)
    return env


def _run(command: list[str], work: Path, env: dict[str, str]) -> None:
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n" \
                                 f"{done.stdout}\n{done.stderr}"


def run_both(work: Path, env: dict[str, str], hookline_db: str, hand_db: str) -> int:
    """Generate the input in ``work``, then run ``hookline run --db hookline_db`` and the
    script into ``hand_db`` on its first lines, and both again once the rest is appended;
    the input's size in bytes."""
    _run([sys.executable, "-m", "hookline.cli", "generate", "-n", str(EVENTS), "--attacks",
          "0.02", "--seed", "1", "-o", "all.jsonl"], work, env)
    lines = (work / "all.jsonl").read_bytes().splitlines(keepends=True)
    commands = ([sys.executable, "-m", "hookline.cli", "run", "in.jsonl", "--db", hookline_db],
                [sys.executable, str(HANDWRITTEN), "in.jsonl", hand_db])
    with open(work / "in.jsonl", "wb") as growing:
        for part in (lines[:FIRST_RUN], lines[FIRST_RUN:]):  # the second run resumes
            growing.write(b"".join(part))
            growing.flush()
            for command in commands:
                _run(command, work, env)
    return sum(map(len, lines))


def _category(stage: str, reason: str) -> str:
    """How a reason is compared: the bad fields of a schema error, the kind of a parse error,
    a fraud rule's reason whole (its wording and figures are the rule's)."""
    if stage == "schema":
        bad = reason.partition("bad field")[2].partition(": ")[2]
        return "invalid: " + ", ".join(part.partition(":")[0] for part in bad.split("; "))
    if stage == "parse":
        return reason.partition(":")[0]
    return reason


def same(a: Any, b: Any) -> bool:
    """Equal values, floats to 9 significant digits (sums may be added in another order)."""
    if isinstance(a, float) or isinstance(b, float):
        return (isinstance(a, (int, float)) and isinstance(b, (int, float))
                and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    return bool(a == b)


class Database(ABC):
    """One program's database, read as the comparison reads it; a subclass per database
    says how its columns and rows are read, and its stored state decoded."""

    @abstractmethod
    def columns(self, table: str) -> list[tuple[str, str]]:
        """``(name, declared type)`` of each of ``table``'s columns, in order."""

    @abstractmethod
    def rows(self, query: str) -> list[tuple[Any, ...]]:
        """The rows ``query`` selects."""

    @abstractmethod
    def decoded(self, value: Any) -> Any:
        """A ``stage_state`` value as the data it stands for."""

    def letters(self) -> list[tuple[Any, ...]]:
        return [(line, stage, _category(stage, reason), payload, event_id, plugin)
                for line, stage, reason, payload, event_id, plugin in self.rows(
                    "SELECT line, stage, reason, payload, event_id, plugin FROM dead_letters "
                    "ORDER BY line")]

    def state(self) -> dict[tuple[str, str], Any]:
        return {(stage, key): self.decoded(value)
                for stage, key, value in self.rows("SELECT stage, key, value FROM stage_state")}


def _differences(ours: list[tuple[Any, ...]], theirs: list[tuple[Any, ...]]
                 ) -> list[tuple[Any, Any]]:
    return [(a, b) for a, b in zip(ours, theirs) if not same(a, b)][:5]


def assert_same(hand: Database, hookline: Database, size: int) -> None:
    """The script's database holds what hookline's does (see the module docs), and the
    input exercised every path: each rule refused some events and raised the risk of others,
    and each stateful stage kept state."""
    for table in TABLES:
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
    assert [key for key, value in hand.state().items() if not same(value, state[key])] == []
    checkpoint = 'SELECT "offset", line FROM checkpoints'
    assert hand.rows(checkpoint) == hookline.rows(checkpoint) == [(size, EVENTS)]

    refused = Counter(stage for _, stage, *_ in letters)
    assert {"parse", "schema", "fraud.blocked_currency", "fraud.amount_limit",
            "fraud.velocity", "fraud.sequence"} <= refused.keys(), refused
    assert hookline.rows("SELECT count(*) FROM events WHERE risk > 0")[0][0] > 0
    assert {stage for stage, _ in state} == {"fraud.velocity", "fraud.sequence",
                                             "ranking.score"}
