"""The end-to-end benchmark's hand-written script stores, in SQLite, what ``hookline run``
stores.

``benchmarks/bench_end_to_end.py`` times ``hookline run`` with the three contrib plugins
against ``benchmarks/handwritten.py``. Both run here on the same generated events (attacks
injected), twice each over a growing input, and their databases are compared table by table
(``_handwritten.py`` says what must be equal).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from _handwritten import Database, assert_same, plugin_environment, run_both


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A process environment with the checkout's three contrib plugins installed."""
    return plugin_environment(tmp_path_factory.mktemp("site"),
                              tmp_path_factory.mktemp("cache"))


class SqliteDatabase(Database):
    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path)

    def columns(self, table: str) -> list[tuple[str, str]]:
        return [(row[1], row[2]) for row in self.connection.execute(
            f"PRAGMA table_xinfo({table})")]

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        return self.connection.execute(query).fetchall()

    def decoded(self, value: Any) -> Any:
        return json.loads(value)


def test_the_hand_written_script_stores_what_hookline_run_stores(
        tmp_path: Path, environment: dict[str, str]) -> None:
    size = run_both(tmp_path, environment, "hookline.db", "hand.db")
    assert_same(SqliteDatabase(tmp_path / "hand.db"), SqliteDatabase(tmp_path / "hookline.db"),
                size)
