"""A 25% rollout of ranking.experimental: stable per user, across runs and executors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hookline._generate import write_jsonl


@pytest.fixture(autouse=True)
def _ranking_installed() -> None:
    """The integration env installs the contrib wheels: without them these tests fail."""
    import hookline_ranking  # noqa: F401


def _variants(db: Path) -> dict[str, set[str]]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT user_id, variants FROM events").fetchall()
    seen: dict[str, set[str]] = {}
    for user, variants in rows:
        seen.setdefault(user, set()).add(variants)
    return seen


def test_a_quarter_of_users_in_the_variant_the_same_everywhere(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    write_jsonl(source, 100_000, invalid_rate=0.0, seed=3)
    runs = {"first": [], "second": [], "process": ["--executor", "process", "--workers", "2"]}
    for name, extra in runs.items():
        subprocess.run([sys.executable, "-m", "hookline.cli", "run", str(source), "--db",
                        f"{name}.db", "--flag", "ranking.experimental=0.25", *extra],
                       cwd=tmp_path, check=True, capture_output=True)
    first = _variants(tmp_path / "first.db")
    assert len(first) >= 8_000  # of the 10,000 users, the skewed generator reaches ~89%
    assert all(len(variants) == 1 for variants in first.values()), "one variant per user"
    share = sum('["ranking.freshness"]' in v for v in first.values()) / len(first)
    assert 0.24 <= share <= 0.26
    assert _variants(tmp_path / "second.db") == first
    assert _variants(tmp_path / "process.db") == first


def test_a_typo_in_a_flag_name_exits_non_zero_naming_the_flag(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    write_jsonl(source, 10, seed=1)
    done = subprocess.run([sys.executable, "-m", "hookline.cli", "run", str(source),
                           "--flag", "rankng.experimental=on"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "did you mean 'ranking.experimental'" in done.stderr
