"""Looking back: ``hookline runs`` (past runs and their reports) and ``hookline dead-letters``
(the dead letters, filtered by stage, reason and run).

Both read through the sink's read-only view (:meth:`hookline.sinks.Sink.reader`), so they work
on any sink that keeps history (SQLite, PostgreSQL), take no lock, and can look while a run
writes. Neither creates a database: a ``--db`` where there is none is an error (exit 1).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._report import EXIT_PROBLEM, Report, ended_by

if TYPE_CHECKING:  # imported when a command runs: building the CLI's parser stays cheap
    from .sinks import FoundDeadLetter, LetterFilter, SinkReader, StoredRun

__all__ = ["add_arguments", "add_letter_filters", "cmd_dead_letters", "cmd_runs",
           "format_letters", "format_runs", "letter_filter"]


def add_arguments(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hookline runs`` and ``hookline dead-letters`` to the CLI's subcommands."""
    runs = commands.add_parser(
        "runs", help="list the past runs of a database, or show one run's report",
        description="List the runs stored in a database, newest first: id, start time, "
                    "how each ended (status and exit status), counts, duration and inputs. "
                    "With RUN_ID (or the start of one), print that run's report.")
    runs.add_argument("run_id", nargs="?", metavar="RUN_ID",
                      help="show this run's report (the start of its id is enough)")
    _database_option(runs)
    runs.add_argument("--limit", type=_count, default=20, metavar="N",
                      help="list the N newest runs (default 20; 0: all)")
    runs.add_argument("--format", choices=("text", "json"), default="text")
    runs.set_defaults(handler=cmd_runs)

    letters = commands.add_parser(
        "dead-letters", help="list the dead letters of a database",
        description="List the dead letters of a database, oldest first, with their stage, "
                    "reason, input line and payload; filter them by stage, reason or run.")
    _database_option(letters)
    add_letter_filters(letters)
    letters.add_argument("--limit", type=_count, default=20, metavar="N",
                         help="list at most N (default 20; 0: all)")
    letters.add_argument("--format", choices=("text", "json"), default="text",
                         help="text (default), or JSON: every column of each letter")
    letters.set_defaults(handler=cmd_dead_letters)


def add_letter_filters(parser: argparse.ArgumentParser) -> None:
    """``--stage``, ``--reason`` and ``--run``: which dead letters (``dead-letters`` and
    ``replay`` take the same)."""
    parser.add_argument("--stage", metavar="STAGE",
                        help="only the letters of this stage (fraud.velocity, schema, parse, "
                        "dedupe…), or of every stage of a plugin (fraud)")
    parser.add_argument("--reason", metavar="TEXT",
                        help="only the letters whose reason contains TEXT (any case)")
    parser.add_argument("--run", metavar="RUN_ID",
                        help="only the letters this run wrote (the start of its id is enough)")


def letter_filter(args: argparse.Namespace) -> LetterFilter:
    from .sinks import LetterFilter

    return LetterFilter(stage=args.stage or None, reason=args.reason or None,
                        run_id=args.run or None)


def _database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default="hookline.db", metavar="URL",
                        help="the database, as hookline run --db takes it (default hookline.db)")


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, not {text}")
    return value


def _read(command: str, args: argparse.Namespace,
          look: Callable[[SinkReader], int]) -> int:
    """Open the read-only view of ``args.db`` and ``look`` at it; the exit status. A sink of a
    plugin's scheme needs the plugins, loaded only then."""
    from .config import from_arguments
    from .errors import HooklineError
    from .sinks import BUILT_IN, mask_url, scheme_of, sink_class

    try:
        pipeline = None
        if scheme_of(args.db) not in BUILT_IN:
            from ._pipeline import Pipeline

            pipeline = Pipeline.from_entry_points(from_arguments(args))
        cls = sink_class(args.db, pipeline)
        if not cls.exists(args.db):
            print(f"hookline {command}: no database at {mask_url(args.db)}", file=sys.stderr)
            return EXIT_PROBLEM
        with cls.errors(args.db):
            reader = cls.reader(args.db)
            try:
                return look(reader)
            finally:
                reader.close()
    except HooklineError as exc:  # the database's, the --db URL's, a plugin sink's
        print(f"hookline {command}: {exc}", file=sys.stderr)
        return ended_by(exc)[1]


def cmd_runs(args: argparse.Namespace) -> int:
    """``hookline runs``: 0 after listing (an empty database lists nothing); 1 when RUN_ID
    names no run, or several."""

    def look(reader: SinkReader) -> int:
        if args.run_id is None:
            runs = reader.runs(limit=args.limit or None)
            if args.format == "json":
                print(json.dumps([_run_dict(run) for run in runs], indent=2))
            else:
                print(format_runs(runs))
            return 0
        found = reader.runs(limit=2, run_id=args.run_id)
        if len(found) != 1:
            problem = ("no run" if not found else "more than one run") + \
                f" whose id starts with {args.run_id!r}"
            print(f"hookline runs: {problem}; hookline runs --db … lists them",
                  file=sys.stderr)
            return EXIT_PROBLEM
        [run] = found
        print(json.dumps(_run_dict(run), indent=2) if args.format == "json"
              else format_run(run))
        return 0

    return _read("runs", args, look)


def cmd_dead_letters(args: argparse.Namespace) -> int:
    """``hookline dead-letters``: 0 after listing (none found included)."""
    where = letter_filter(args)

    def look(reader: SinkReader) -> int:
        letters = reader.find_dead_letters(where, limit=args.limit or None)
        if args.format == "json":
            print(json.dumps([letter._asdict() for letter in letters], indent=2))
            return 0
        total = (len(letters) if not args.limit or len(letters) < args.limit
                 else reader.count_dead_letters(where))
        print(format_letters(letters, total, where))
        return 0

    return _read("dead-letters", args, look)


# -- text -------------------------------------------------------------------------------------


def _time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def _run_dict(run: StoredRun) -> dict[str, Any]:
    return {"run_id": run.run_id, "started_at": run.started_at,
            "finished_at": run.finished_at, "report": run.report}


def _inputs(report: dict[str, Any]) -> str:
    """The inputs of a stored run, by file name: ``a.jsonl, b.jsonl (+3)``."""
    inputs = report.get("inputs") or []
    names = [os.path.basename(item["name"]) or item["name"] for item in inputs[:2]]
    more = max(len(inputs), report.get("inputs_total", 0)) - len(names)
    return ", ".join(names) + (f" (+{more})" if more > 0 else "") if names else "-"


def format_runs(runs: Sequence[StoredRun]) -> str:
    """The runs as a table, one line each (a run that stored no report says so)."""
    if not runs:
        return "no runs stored"
    head = (f"{'run':<13} {'started':<19} {'status':<12} {'exit':>4} {'read':>11} "
            f"{'accepted':>11} {'dropped':>9} {'dead':>9} {'duplicates':>11} "
            f"{'duration':>9}  inputs")
    lines = [head]
    for run in runs:
        report = run.report
        if report is None:
            lines.append(f"{run.run_id:<13} {_time(run.started_at):<19} no report (stopped "
                         "before its end, or running)")
            continue
        status = report.get("status") or ("interrupted" if report.get("interrupted")
                                          else "completed")
        exit_status = report.get("exit_status", "-")
        lines.append(
            f"{run.run_id:<13} {_time(run.started_at):<19} {_short(status, 12):<12} "
            f"{exit_status:>4} {report.get('read', 0):>11,} {report.get('accepted', 0):>11,} "
            f"{report.get('dropped', 0):>9,} {report.get('dead_lettered', 0):>9,} "
            f"{report.get('duplicates', 0):>11,} {report.get('duration_s', 0.0):>8.2f}s  "
            f"{_inputs(report)}")
    return "\n".join(lines)


def format_run(run: StoredRun) -> str:
    """One stored run: when, how it ended, its inputs, then its report as ``hookline run``
    printed it."""
    report = run.report or {}
    status = report.get("status") or "-"
    lines = [f"run {run.run_id}: started {_time(run.started_at)}, finished "
             f"{_time(run.finished_at)}; {status} (exit status {report.get('exit_status', '-')})"]
    for item in report.get("inputs") or []:
        lines.append(f"  input {item['name']}: lines {item['from_line']:,} to "
                     f"{item['to_line']:,} ({item['read']:,} events read)")
    more = report.get("inputs_total", 0) - len(report.get("inputs") or [])
    if more > 0:
        lines.append(f"  … and {more:,} more inputs")
    if run.report is None:
        lines.append("  no report: the run stopped before its end, or is running")
    else:
        lines.append(Report.from_dict(run.report).format())
    return "\n".join(lines)


def format_letters(letters: Sequence[FoundDeadLetter], total: int, where: LetterFilter
                   ) -> str:
    """The dead letters, two lines each: where it came from and why, then its payload."""
    if not letters:
        return "no dead letters" + (" match" if where else "")
    lines = [f"{'id':>8}  {'run':<12}  {'written':<19}  {'stage':<24}  where"]
    for letter in letters:
        where_from = f"{os.path.basename(letter.source or '') or '-'}:{letter.line or '-'}"
        replays = f", replayed {letter.replays} times" if letter.replays else ""
        lines.append(f"{letter.id:>8}  {letter.run_id or '-':<12}  "
                     f"{_time(letter.created_at):<19}  {_short(letter.stage or '-', 24):<24}  "
                     f"{where_from}{replays}")
        lines.append(f"{'':>10}reason:  {_short(letter.reason, 110)}")
        lines.append(f"{'':>10}payload: {_short(letter.payload, 110)}")
    shown = len(letters)
    lines.append(f"{shown:,} of {total:,} dead letters" + (
        f" (--limit {shown:,}; --format json gives every column)" if shown < total else ""))
    return "\n".join(lines)


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"
