"""The PostgreSQL benchmark's hand-written script stores, in PostgreSQL, what
``hookline run --db postgresql://…`` stores.

``benchmarks/bench_postgres.py`` times ``hookline run`` with the three contrib plugins into
PostgreSQL against ``benchmarks/handwritten.py`` given a ``postgresql://`` URL (psycopg,
``COPY``, ``unnest`` upserts). Both run here into two new databases of the test server, on the
same generated events (attacks injected), twice each over a growing input, and the databases
are compared table by table (``_handwritten.py`` says what must be equal), with PostgreSQL's
column types: ``timestamptz``, ``jsonb``, the generated ``score_mean``, the identity ``id``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from _handwritten import Database, assert_same, plugin_environment, run_both
from _postgres import Server

pytestmark = pytest.mark.integration


class PostgresDatabase(Database):
    def __init__(self, url: str) -> None:
        self.connection = psycopg.connect(url, autocommit=True)

    def columns(self, table: str) -> list[tuple[str, str]]:
        """Each column's type with what else declares it: NOT NULL, its default, its
        generation, its identity."""
        return [(name, " ".join(str(part) for part in declared if part)) for name, *declared
                in self.connection.execute(
                    "SELECT column_name, data_type, "
                    "CASE is_nullable WHEN 'NO' THEN 'NOT NULL' END, column_default, "
                    "generation_expression, identity_generation "
                    "FROM information_schema.columns WHERE table_schema = current_schema() "
                    "AND table_name = %s ORDER BY ordinal_position", (table,))]

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        return self.connection.execute(query).fetchall()

    def decoded(self, value: Any) -> Any:
        return value  # jsonb arrives decoded

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def databases(postgres_server: Server) -> tuple[str, str]:
    """The URLs of two new databases on the test server: hookline's, the script's."""
    return postgres_server.create_database("hookline"), postgres_server.create_database("hand")


def test_the_hand_written_script_stores_in_postgresql_what_hookline_run_stores(
        tmp_path: Path, databases: tuple[str, str]) -> None:
    site, cache, work = tmp_path / "site", tmp_path / "cache", tmp_path / "work"
    for folder in (site, cache, work):
        folder.mkdir()
    environment = plugin_environment(site, cache)
    hookline_url, hand_url = databases
    size = run_both(work, environment, hookline_url, hand_url)
    hand, hookline = PostgresDatabase(hand_url), PostgresDatabase(hookline_url)
    try:
        assert hookline.columns("events")[3] == ("ts", "timestamp with time zone")
        assert_same(hand, hookline, size)
    finally:
        hand.close()
        hookline.close()
