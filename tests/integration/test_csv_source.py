"""The CSV source of the plugin guide, as a user gets it: the guide's module built into a
wheel, pip-installed next to hookline's wheel in a fresh environment, and run on CSV files
with the ``hookline`` command."""

from __future__ import annotations

import json
from pathlib import Path

from hookline.testing import database_content

from .conftest import ROOT, Env, sorted_rows
from .wheels import make_wheel

#: The guide's example, exactly as the page shows it (tests/test_docs.py keeps them equal).
CSV_SOURCE = (ROOT / "tests" / "doc_examples" / "csv_source.py").read_text(encoding="utf-8")
HEADER = b"event_id,user_id,kind,ts,amount,currency\n"


def _row(n: int) -> bytes:
    return f"c{n},u{n % 3},purchase,{1767225600000 + n},{n}.25,EUR\n".encode()


def _run(env: Env, *args: str, check: bool = True) -> tuple[int, dict[str, object], str]:
    """``hookline run … --format json``: its exit status, its report and its stderr."""
    done = env.hookline("run", *args, "--batch-size", "2", "--format", "json", check=check)
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, report, done.stderr


def test_the_guides_csv_source_installed_from_a_wheel_runs_resumes_and_inserts_once(
    env: Env, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "hookline-csv", {"hookline_csv/__init__.py": CSV_SOURCE},
                       {"csv": "hookline_csv"})
    env.pip("install", str(wheel))
    [plugin] = json.loads(env.hookline("plugins", "--format", "json").stdout)["plugins"]
    assert (plugin["name"], plugin["distribution"], plugin["status"]) == (
        "csv", "hookline-csv", "loaded")
    assert "hookline_sources" in plugin["hooks"]

    # Rows stored; a bad row dead-lettered with its line in the file (the header is line 1).
    table = env.work / "orders.csv"
    bad = b"c99,u1,purchase,yesterday,3.5,EUR\n"
    table.write_bytes(HEADER + _row(0) + _row(1) + bad + _row(2) + _row(3))
    code, report, _ = _run(env, "orders.csv", "--db", "out.db")
    assert (code, report["read"], report["accepted"], report["dead_lettered"]) == (0, 5, 4, 1)
    db = env.work / "out.db"
    assert sorted_rows(db, "SELECT event_id, user_id, ts, amount FROM events") == [
        (f"c{n}", f"u{n % 3}", 1767225600000 + n, n + 0.25) for n in range(4)]
    [(line, stage, reason, source, payload)] = sorted_rows(
        db, "SELECT line, stage, reason, source, payload FROM dead_letters")
    assert (line, stage, source) == (4, "schema", "orders.csv")
    assert "ts: must be epoch ms (int > 0) (got 'yesterday')" in reason
    assert json.loads(payload)["event_id"] == "c99"

    # Run again: the checkpoint says all of it is committed; nothing is read, nothing doubled.
    code, report, _ = _run(env, "orders.csv", "--db", "out.db")
    assert (code, report["read"]) == (0, 0)
    assert sorted_rows(db, "SELECT count(*) FROM events") == [(4,)]

    # Rows appended, one of them not UTF-8: the source raises, the run says which plugin
    # failed after which line, and what was read before it is committed.
    broken = b"c6,u0,purchase,17672256\xff0006,6.25,EUR\n"
    with table.open("ab") as handle:
        handle.write(_row(4) + _row(5) + broken + _row(7) + _row(8))
    code, _, err = _run(env, "orders.csv", "--db", "out.db", check=False)
    assert code == 1, err
    assert "Traceback" not in err
    assert ("hookline run: input 'orders.csv': the source of plugin csv (hookline-csv 1.0.0) "
            "failed after line 8: UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff"
            ) in err, err
    assert sorted_rows(db, "SELECT event_id FROM events WHERE event_id IN ('c4', 'c5')") == [
        ("c4",), ("c5",)]

    # Fixed in place (the same file): the next run resumes after the last commit, and the
    # database equals one run of the whole file into a new database.
    data = table.read_bytes()
    table.write_bytes(data.replace(b"\xff", b"0"))
    code, report, _ = _run(env, "orders.csv", "--db", "out.db")
    assert (code, report["read"], report["accepted"]) == (0, 3, 3)
    code, report, _ = _run(env, "orders.csv", "--db", "fresh.db")
    assert (code, report["read"], report["accepted"], report["dead_lettered"]) == (0, 10, 9, 1)
    assert database_content(db) == database_content(env.work / "fresh.db")
