"""The README's main command, tried as a newcomer would, in a fresh environment."""

from __future__ import annotations

import re
import shlex
import sqlite3
import subprocess
from pathlib import Path

from .conftest import ROOT, Env


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.*?)\n```", text, re.S)


def _rows(db: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(query).fetchall()


def test_readme_main_command_runs_the_demo_through_the_three_plugins(env: Env) -> None:
    install, run = (part.strip() for part in _readme_commands()[0].split("&&"))
    assert install.startswith("pip install") and run == "hookline run --demo"
    # The README's paths are relative to the repository root: install from there.
    subprocess.run([env.python, "-m", *shlex.split(install), "-q", "--disable-pip-version-check"],
                   cwd=ROOT, env=env.env, check=True, timeout=900)

    out = env.hookline(*shlex.split(run)[1:]).stdout
    counts = {key: int(value.replace(",", "")) for key, value in
              re.findall(r"^\s+(accepted|dropped|dead-lettered|= read)\s+([\d,]+)$", out, re.M)}
    assert counts["= read"] == 100_000
    assert counts["accepted"] + counts["dropped"] + counts["dead-lettered"] == 100_000
    assert "plugins: fraud, monitoring, ranking" in out
    assert "[monitoring]" in out

    db = env.work / "hookline.db"
    fraud = _rows(db, "SELECT reason, count(*) FROM dead_letters WHERE plugin = 'fraud' "
                      "GROUP BY reason ORDER BY reason")
    assert [reason for reason, _ in fraud] == ["blocked_currency: currency 'XTS' is blocked",
                                               "blocked_currency: currency 'XXX' is blocked"]
    assert _rows(db, "SELECT count(*) FROM events WHERE score IS NULL") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM events WHERE currency IN ('XTS', 'XXX')") == [(0,)]

    env.pip("uninstall", "-y", "hookline-fraud")
    out = env.hookline("run", "--demo", "--db", "after.db").stdout
    assert "plugins: monitoring, ranking" in out
    assert _rows(env.work / "after.db",
                 "SELECT count(*) FROM dead_letters WHERE plugin = 'fraud'") == [(0,)]
    assert _rows(env.work / "after.db",
                 "SELECT count(*) > 0 FROM events WHERE currency IN ('XTS', 'XXX')") == [(1,)]
