"""What a run left in its SQLite database, read the one way every test reads it: the rows of
a query, and the check that each input line ended exactly once (accepted, dropped or
dead-lettered), as the report says and as the tables hold."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import hookline


def rows(db: Path | str, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
    """The rows ``sql`` selects in the database file ``db`` (its connection closed after)."""
    with closing(sqlite3.connect(db)) as connection:
        return connection.execute(sql, parameters).fetchall()


def every_line_once(report: hookline.Report, db: Path, count: int) -> None:
    """Each of the ``count`` lines read is counted once in ``report``, and the database holds
    as many events and dead letters as the report counts."""
    assert report.accepted + report.dropped + report.dead_lettered == count == report.read
    stored = rows(db, "SELECT count(*) FROM events")[0][0]
    dead = rows(db, "SELECT count(*) FROM dead_letters")[0][0]
    assert (stored, dead) == (report.accepted, report.dead_lettered)
