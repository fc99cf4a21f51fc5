"""Reading a hookline SQLite database for the ranking commands (never writing to it)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path


class DatabaseProblem(Exception):
    """The database cannot be read for a ranking command; the message says why."""


def sqlite_path(db: str) -> str:
    """The file of ``--db``: a path, or a ``sqlite:///path`` URL as ``hookline run`` takes it."""
    if db.startswith("sqlite:///"):
        return db[len("sqlite:///"):] or "hookline.db"
    if "://" in db:
        scheme = db.partition("://")[0]
        raise DatabaseProblem(f"{scheme}:// databases are not supported: the ranking commands "
                              "read SQLite databases (a path or sqlite:///path)")
    return db


def connect(db: str, needs: Sequence[str] = ()) -> sqlite3.Connection:
    """A read-only connection to the database ``db``, whose ``events`` table must have the
    columns ``needs`` (the ranking plugin's ``score`` and ``score_model``, for a readout)."""
    path = sqlite_path(db)
    if not os.path.isfile(path):
        raise DatabaseProblem(f"no database at {path}")
    try:
        connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        columns = {row[1] for row in connection.execute("PRAGMA table_info(events)")}
    except sqlite3.DatabaseError as exc:
        raise DatabaseProblem(f"{path}: cannot be read as a SQLite database ({exc})") from None
    if not columns:
        connection.close()
        raise DatabaseProblem(f"{path}: no events table: no hookline run has stored events "
                              "there")
    missing = [name for name in needs if name not in columns]
    if missing:
        connection.close()
        raise DatabaseProblem(f"{path}: the events table has no {' or '.join(missing)} column: "
                              "its events were not scored by hookline-ranking 0.2 or later")
    return connection
