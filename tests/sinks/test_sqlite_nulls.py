"""None is stored as NULL by the SQLite sink, and hookline leaves a process's own sqlite3
adapters alone (on CPython 3.10/3.11 it registers a quicker one for None only where the
process has none)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import hookline


class _Risk:
    """A plugin that adds an optional field."""

    @staticmethod
    @hookline.hookimpl
    def hookline_event_fields() -> dict[str, Any]:
        return {"risk": hookline.fields.Number(minimum=0, optional=True)}


def test_an_optional_field_left_out_is_stored_as_null(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"event_id": "e1", "user_id": "u1", "kind": "view", "ts": 1767225600000}\n'
        '{"event_id": "e2", "user_id": "u2", "kind": "view", "ts": 1767225600001, '
        '"risk": 0.5}\n')
    pipeline = hookline.Pipeline.from_plugins([("risk", _Risk())])
    report = hookline.run([str(source)], db=str(tmp_path / "out.db"), pipeline=pipeline)
    assert report.accepted == 2
    with sqlite3.connect(tmp_path / "out.db") as db:
        stored = {event: (risk, kind) for event, risk, kind in db.execute(
            "SELECT event_id, risk, typeof(risk) FROM events")}
    assert stored == {"e1": (None, "null"), "e2": (0.5, "real")}


def test_a_none_adapter_the_process_registered_is_kept(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import sqlite3
        def mine(value):
            return "none, by mine"
        sqlite3.register_adapter(type(None), mine)
        import hookline._sinks.sqlite
        key = (type(None), sqlite3.PrepareProtocol)
        assert sqlite3.adapters[key] is mine, sqlite3.adapters[key]
        db = sqlite3.connect(":memory:")
        print(db.execute("SELECT ?", (None,)).fetchone()[0])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              p for p in sys.path if p)}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none, by mine"
