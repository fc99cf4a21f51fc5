"""``run()``: stream JSONL inputs through a pipeline into SQLite, batch by batch.

Every non-blank input line ends exactly once as accepted, dropped or dead-lettered; the
report counts all three. Each batch is committed together with its source checkpoint, so a
run stopped at any moment (kill -9 included) resumes after its last commit on the next run,
and a stop request (SIGINT/SIGTERM through ``stop``) finishes the current batch first.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ._batch import BatchResult, dedupe
from ._executors import make_executor
from ._pipeline import Pipeline, read_only
from ._report import Report, Run
from ._sinks.jsonl import JSONLSink
from ._sinks.sqlite import DeadLetter, SQLiteSink
from ._sources import Source, expand_inputs
from .config import Config, load_config
from .errors import DatabaseError
from .hookspecs import PHASES, phase_hook

__all__ = ["database_errors", "run"]

#: Structured records of each run: ``extra`` carries the fields (run_id, counts, stage…).
log = logging.getLogger("hookline.runner")


class Breaker:
    """Quarantines a stage after ``limit`` failures of its own in a row.

    Only a stage's own failures count (exceptions it raised, a phase wrapper's included), and
    only its own successes break a streak: an event that got past it (accepted, or decided,
    or failed by a later stage) or that it rejected or dropped itself. What other stages do,
    and lines no stage saw (malformed, invalid, duplicate), change nothing: a stage is never
    taken out because a later one rejects everything, nor a guard because of duplicates.
    """

    def __init__(self, limit: int, pipeline: Pipeline) -> None:
        self.limit = limit
        self.position = _positions(pipeline)
        self.streaks: dict[str, int] = {}  # stage -> its failures since its last success
        self.tripped: set[str] = set()

    def trips(self, result: BatchResult) -> list[str]:
        """The stages to quarantine after this batch (each once: a worker's batches that
        were under way when it tripped may still bring failures of a quarantined stage)."""
        if not result.failures and not self.streaks:
            return []  # the common case: nothing failed, nothing to forgive
        # (line, stage, failed) of each outcome a stage gave, in input order
        outcomes = [(line, stage, True) for stage, _error, line in result.failures]
        outcomes += [(letter.line or 0, letter.stage or "", False) for letter in result.dead
                     if letter.error is None and letter.stage not in _BEFORE_STAGES]
        outcomes += [(line, stage, False) for line, stage in result.dropped_lines]
        outcomes += [(line, "", False) for line in result.accepted_lines]  # past every stage
        outcomes.sort(key=lambda outcome: outcome[0])
        tripped = []
        for _line, stage, failed in outcomes:
            if failed:
                self.streaks[stage] = count = self.streaks.get(stage, 0) + 1
                if self.limit and count >= self.limit and stage not in self.tripped:
                    tripped.append(stage)
                    self.tripped.add(stage)
            if self.streaks:
                self._forgive(stage, failed)
        return tripped

    def _forgive(self, stage: str, failed: bool) -> None:
        """End the streaks of the stages that handled an event without raising: every stage
        before the place where it ended (``stage``; "" for accepted: past them all), and
        ``stage`` itself if it decided (rejected or dropped) rather than failed."""
        reached = self.position.get(stage, -math.inf) if stage else math.inf
        for name in list(self.streaks):
            if self.position.get(name, math.inf) < reached or (name == stage and not failed):
                del self.streaks[name]


#: Dead letters written before any stage ran.
_BEFORE_STAGES = frozenset({"parse", "schema", "dedupe"})


def _positions(pipeline: Pipeline) -> dict[str, float]:
    """Each stage's place in the order the events pass them (a phase's wrappers just before
    its first stage): an event decided at one place got past every earlier one."""
    positions: dict[str, float] = {}
    at = 0.0
    for phase in PHASES:
        impls = pipeline.plugins.impls(phase_hook(phase))
        for impl in impls:
            if impl.wrapper or impl.hookwrapper:
                positions.setdefault(impl.plugin_name, at - 0.5)
        for impl in impls:
            if not (impl.wrapper or impl.hookwrapper):
                positions.setdefault(impl.plugin_name, at)
                at += 1
    return positions


#: What to do about the database file, by what SQLite said about it.
_ADVICE = (
    (("readonly", "read-only"), "make the file writable (and its folder, where SQLite keeps "
     "its -wal and -shm files), or give --db a path you can write to"),
    (("not a database", "malformed", "disk image", "file is encrypted"),
     "the file is not a SQLite database or is damaged: move it aside (keep it to inspect) and "
     "run again to start a new database, or give another --db"),
    (("unable to open", "cannot open"), "check that its folder exists and that you may write "
     "there, or give another --db"),
    (("full",), "free some disk space, then run again: the run resumes after its last commit"),
    (("locked", "busy"), "another process holds the database: wait for it, or use another --db"),
)


@contextmanager
def database_errors(path: str) -> Iterator[None]:
    """sqlite3's errors about the database file become a DatabaseError naming the file and
    the fix (a raw traceback names neither)."""
    try:
        yield
    except sqlite3.Error as exc:
        problem = str(exc) or type(exc).__name__
        advice = next((text for words, text in _ADVICE
                       if any(word in problem.lower() for word in words)),
                      "check the file, or give another --db")
        raise DatabaseError(path, problem, advice) from exc


def _writable(connection: sqlite3.Connection) -> None:
    """Try a write and undo it: a database the run cannot write to (a read-only file, say)
    stops the run now, before any input is read, not at the first commit."""
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(f"PRAGMA user_version = {version}")
    finally:
        connection.execute("ROLLBACK")


def _waiting(message: str) -> None:
    """Say that this run waits for another one writing into the same database (a warning:
    on stderr when logging is not configured)."""
    log.warning("hookline: %s", message, extra={"event": "waiting_for_writer"})


def _category(letter: DeadLetter) -> str:
    """A short key for grouping dead letters in the report."""
    if letter.stage == "schema":
        bad = letter.reason.partition("bad field")[2].partition(": ")[2]
        return "invalid: " + ", ".join(part.partition(":")[0] for part in bad.split("; "))
    if letter.stage == "parse":
        return letter.reason.partition(":")[0]
    return letter.reason[:80]


def _timed_metrics() -> dict[str, Any]:
    """What ``timed()`` behaviours measured, when the behaviours module is in use."""
    behaviors = sys.modules.get("hookline.behaviors")
    return behaviors.DEFAULT_METRICS.snapshot() if behaviors is not None else {}


class _Progress:
    """A one-line progress display on a terminal; silent otherwise."""

    def __init__(self, enabled: bool | None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.last = 0.0

    def update(self, report: Report, source: Source, offset: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.2:
            return
        self.last = now
        size = source.size
        share = f" {100 * offset / size:5.1f}% of {source.name}" if size else ""
        sys.stderr.write(f"\r  {report.read:>12,} events{share}   ")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self.last:
            sys.stderr.write("\r" + " " * 70 + "\r")


def run(
    inputs: Iterable[str],
    *,
    db: str = "hookline.db",
    config: Config | None = None,
    pipeline: Pipeline | None = None,
    progress: bool | None = None,
    stop: threading.Event | None = None,
    jsonl: str | None = None,
    executor: str = "inline",
    workers: int | None = None,
) -> Report:
    """Run ``inputs`` (paths, globs, ``.gz`` files, ``-``) into the SQLite database ``db``.

    ``jsonl``: also append the accepted events to this JSON-lines file (exactly once).
    ``executor``: ``inline`` (default) or ``process`` with ``workers`` processes.
    Raises :class:`RunAborted` when a stage with the ``fail-run`` policy raises (everything
    before that batch is committed).
    """
    config = config if config is not None else load_config()
    pipeline = pipeline if pipeline is not None else Pipeline.from_entry_points(config)
    if config.environment is None:  # workers take HOOKLINE_* as read before plugins loaded
        config = config.with_(environment=pipeline.config.environment)
    sources = expand_inputs(inputs)
    run_id = uuid.uuid4().hex[:12]
    report = Report(run_id=run_id, plugins=[r.as_dict() for r in pipeline.plugins.records])
    info = Run(run_id, [s.name for s in sources], db, config.as_dict())
    with database_errors(db):
        sink = SQLiteSink(db, pipeline.event_class, run_id=run_id)
    try:
        with database_errors(db):
            sink.lock_writer(on_wait=_waiting)  # one writing run at a time: no lost update
            _writable(sink.connection)
            second = None if jsonl is None else JSONLSink(
                jsonl, committed=sink.checkpoint(JSONLSink.key_of(jsonl))[0])
            state = sink.load_state(pipeline.stages())
    except BaseException:
        sink.close()
        raise
    runner = make_executor(executor, pipeline, config, db, workers=workers, state=state,
                           stored=sink.seen_ids)
    breaker = Breaker(config.quarantine_after, pipeline)

    bar = _Progress(progress)
    pipeline.flags.evaluations.clear()  # the report counts this run's decisions
    active_flags = pipeline.flags.active()  # hookline.flags.is_enabled reads this run's values
    active_flags.__enter__()
    started = time.perf_counter()
    log.info("run %s started: %d input(s) into %s", run_id, len(sources), db,
             extra={"run_id": run_id, "inputs": info.inputs, "db": db, "executor": executor})
    pipeline.hook.hookline_run_start(run=info)
    try:
        for source in sources:
            with database_errors(db):
                offset, line = sink.checkpoint(source.key) if source.resumable else (0, 0)
            for end_offset, end_line, result in runner.results(source, offset, line):
                with database_errors(db):
                    dedupe(sink, result, pipeline)
                    checkpoint = (source.key, end_offset, end_line)
                    outputs = [] if second is None else [
                        (second.key, second.write(map(sink.rows.json_line, result.rows)))]
                    sink.commit(result.rows, result.dead,
                                checkpoint if source.resumable else None, result.state,
                                outputs=outputs, aggregations=result.aggregations)
                _count(report, result, pipeline)
                for stage in breaker.trips(result):
                    runner.quarantine(stage)
                    report.quarantined.append(stage)
                    log.warning("run %s: stage %s quarantined after %d failures in a row",
                                run_id, stage, config.quarantine_after,
                                extra={"run_id": run_id, "stage": stage})
                bar.update(report, source, end_offset)
                if stop is not None and stop.is_set():
                    report.interrupted = True
                    break
            if report.interrupted:
                break
        report.duration_s = time.perf_counter() - started
        report.stage_stats = pipeline.stats.as_dict()
        timed = _timed_metrics()
        if timed:
            report.sections["timed"] = timed
        flags = {row["name"]: f"{row['on']:,} of {row['evaluations']:,} evaluations on "
                 f"(value {row['value']} from {row['source']})"
                 for row in pipeline.flags.describe() if row["evaluations"]}
        if flags:
            report.sections["flags"] = flags
        pipeline.hook.hookline_run_end(run=info, report=report)
        with database_errors(db):
            sink.record_run(info.started_at, report.as_dict())
        log.info("run %s finished: %d read, %d accepted, %d dropped, %d dead-lettered",
                 run_id, report.read, report.accepted, report.dropped, report.dead_lettered,
                 extra={"run_id": run_id, "read": report.read, "accepted": report.accepted,
                        "dropped": report.dropped, "dead_lettered": report.dead_lettered,
                        "interrupted": report.interrupted, "duration_s": report.duration_s})
    finally:
        active_flags.__exit__(None, None, None)
        bar.done()
        runner.close()
        sink.close()
        if second is not None:
            second.close()
    return report


def _count(report: Report, result: BatchResult, pipeline: Pipeline) -> None:
    """Add a committed batch to the report and the stage statistics; tell the observers."""
    report.accepted += len(result.rows)
    report.dropped += result.dropped
    report.dead_lettered += len(result.dead)
    report.read += len(result.rows) + result.dropped + len(result.dead)
    stats = pipeline.stats
    for stage, count in result.rejected_by.items():
        stats.stage(stage).rejected += count
    for stage, count in result.dropped_by.items():
        stats.stage(stage).dropped += count
    for stage, _error, _ in result.failures:
        stats.stage(stage).errors += 1
    failed = iter(result.failures)
    for letter in result.dead:
        report.reasons[_category(letter)] += 1
        report.stages[letter.stage or "?"] += 1
        if letter.stage in ("parse", "schema", "dedupe"):
            continue
        view = read_only({"payload": letter.payload, "line": letter.line})
        if letter.error is not None:  # a StageFailed, in the same order as result.failures
            stage, error, _ = next(failed)
            pipeline.hook.hookline_stage_error(stage=stage, event=view, error=error)
        pipeline.hook.hookline_event_rejected(event=view, reason=letter.reason,
                                              stage=letter.stage)
