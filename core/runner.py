"""``run()``: stream JSONL inputs through a pipeline into SQLite, batch by batch.

Every non-blank input line ends exactly once as accepted, dropped or dead-lettered; the
report counts all three. Each batch is committed together with its source checkpoint, so a
run stopped at any moment (kill -9 included) resumes after its last commit on the next run,
and a stop request (SIGINT/SIGTERM through ``stop``) finishes the current batch first.
"""

from __future__ import annotations

import bisect
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import aggregates
from .config import Config, load_config
from .errors import Drop, InputError, Reject, RunAborted, StageFailed, ValidationError
from .executors import make_executor
from .limits import parse_json
from .pipeline import FAIL_RUN, Pipeline, read_only
from .report import Report, Run
from .schema import Event
from .sinks.jsonl import JSONLSink
from .sinks.sqlite import DeadLetter, Rows, SQLiteSink
from .sources import Batch, Source, expand_inputs

__all__ = ["run"]

#: Structured records of each run: ``extra`` carries the fields (run_id, counts, stage…).
log = logging.getLogger("hookline.runner")


@dataclass
class BatchResult:
    """What became of one batch's lines."""

    #: The accepted events, where the batch was processed (a worker ships ``rows``).
    accepted: list[Event] = field(default_factory=list)
    #: The accepted events as rows of ``events`` (:func:`complete` makes them).
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    #: The input line of each accepted event.
    accepted_lines: list[int] = field(default_factory=list)
    #: This batch's partials of the plugins' aggregations.
    aggregations: list[Any] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    dropped: int = 0
    #: (stage, error, input line) of every StageFailed, in input order.
    failures: list[tuple[str, BaseException, int]] = field(default_factory=list)
    #: (stage, key, value) of the stage state the batch changed.
    state: list[tuple[str, str, Any]] = field(default_factory=list)
    #: stage -> events it rejected / dropped
    rejected_by: Counter[str] = field(default_factory=Counter)
    dropped_by: Counter[str] = field(default_factory=Counter)


def _short_traceback(error: BaseException, limit: int = 4) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__,
                                              limit=-limit)).strip()


def process_batch(pipeline: Pipeline, batch: Batch, origin: Callable[[str], Any]) -> BatchResult:
    """The per-event loop: parse, validate, run the phases, sort each line into its outcome."""
    result = BatchResult()
    make, name = pipeline.from_dict, batch.source.name
    plain, probed = pipeline.run_phases, pipeline.run_phases_probed  # make gives event_class
    sample = pipeline.stats.sample_every
    for number, raw in batch.lines:
        process = probed if number % sample == 0 else plain
        try:
            event = process(make(parse_json(raw)))
        except InputError as exc:
            result.dead.append(DeadLetter(_text(raw), exc.reason, "parse", None, number, name))
        except ValidationError as exc:
            reason = str(exc.at(line=number, source=name))
            result.dead.append(DeadLetter(_text(raw), reason, "schema", None, number, name))
        except Reject as exc:
            result.rejected_by[exc.stage or "?"] += 1
            result.dead.append(DeadLetter(_text(raw), exc.reason, exc.stage, None, number, name,
                                          *origin(exc.stage or "")))
        except Drop as exc:
            result.dropped_by[exc.stage or "?"] += 1
            result.dropped += 1
        except StageFailed as exc:
            if pipeline.policy(exc.stage) == FAIL_RUN:
                raise RunAborted(exc.stage, exc.error, number) from exc.error
            result.failures.append((exc.stage, exc.error, number))
            reason = _failure_reason(exc)
            result.dead.append(DeadLetter(_text(raw), reason, exc.stage,
                                          _short_traceback(exc.error), number, name,
                                          *origin(exc.stage)))
        else:
            result.accepted.append(event)
            result.accepted_lines.append(number)
    return result


def complete(pipeline: Pipeline, result: BatchResult, rows: Rows) -> BatchResult:
    """Turn a processed batch into what a sink commits: the accepted events as rows, and
    the partials of the plugins' aggregations."""
    result.rows = [rows(event) for event in result.accepted]
    result.aggregations = aggregate(pipeline, result.accepted)
    return result


def aggregate(pipeline: Pipeline, events: Iterable[Event]) -> list[Any]:
    """Fresh partials of ``agg_by_user`` and of every aggregation the plugins add, updated
    with ``events``."""
    by_user = aggregates.ByUser()
    partials: list[Any] = [by_user]
    for impl in pipeline.plugins.impls("hookline_aggregations"):
        partials += aggregates.checked(impl.function() or (), impl.plugin_name)
    if len(partials) == 1:
        update = by_user.update
        for event in events:
            update(event)
        return partials
    for event in events:
        for partial in partials:
            partial.update(event)
    return partials


class Breaker:
    """Quarantines a stage after ``limit`` failures with no accepted event in between."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.streaks: dict[str, tuple[int, int]] = {}  # stage -> (failures, accepted mark)
        self.accepted = 0
        self.tripped: set[str] = set()

    def trips(self, result: BatchResult) -> list[str]:
        """The stages to quarantine after this batch (each once: a worker's batches that
        were under way when it tripped may still bring failures of a quarantined stage)."""
        tripped = []
        for stage, _error, line in result.failures:
            mark = self.accepted + bisect.bisect_left(result.accepted_lines, line)
            failures, last_mark = self.streaks.get(stage, (0, mark))
            failures = failures + 1 if last_mark == mark else 1
            self.streaks[stage] = (failures, mark)
            if self.limit and failures >= self.limit and stage not in self.tripped:
                tripped.append(stage)
                self.tripped.add(stage)
        self.accepted += len(result.rows)
        return tripped


def _failure_reason(failure: StageFailed) -> str:
    """``timeout after 0.05 s in fraud.velocity`` or ``fraud.velocity raised KeyError: 'x'``."""
    timed_out = getattr(failure.error, "reason", None)
    if isinstance(failure.error, TimeoutError) and isinstance(timed_out, str):
        return f"{timed_out} in {failure.stage}"
    return f"{failure.stage} raised {type(failure.error).__name__}: {failure.error}"


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _category(letter: DeadLetter) -> str:
    """A short key for grouping dead letters in the report."""
    if letter.stage == "schema":
        bad = letter.reason.partition("bad field")[2].partition(": ")[2]
        return "invalid: " + ", ".join(part.partition(":")[0] for part in bad.split("; "))
    if letter.stage == "parse":
        return letter.reason.partition(":")[0]
    return letter.reason[:80]


def dedupe(sink: SQLiteSink, result: BatchResult, pipeline: Pipeline) -> None:
    """Refuse event ids already stored or repeated within the batch (dead-lettered)."""
    at = sink.rows.id_index
    ids = [row[at] for row in result.rows]
    stored = sink.existing_ids(ids)
    if not stored and len(set(ids)) == len(ids):
        return
    seen: set[str] = set()
    kept: list[tuple[Any, ...]] = []
    lines: list[int] = []
    for row, line in zip(result.rows, result.accepted_lines):
        event_id = row[at]
        if event_id in stored or event_id in seen:
            result.dead.append(DeadLetter(sink.rows.json_line(row),
                                          f"duplicate event_id {event_id!r}", "dedupe", None,
                                          line))
        else:
            seen.add(event_id)
            kept.append(row)
            lines.append(line)
    result.rows, result.accepted_lines = kept, lines
    if result.aggregations:  # rare: aggregate the kept events again, from their rows
        result.aggregations = aggregate(pipeline, (
            pipeline.make_event(json.loads(sink.rows.json_line(row))) for row in kept))


def _timed_metrics() -> dict[str, Any]:
    """What ``timed()`` behaviours measured, when the behaviours module is in use."""
    behaviors = sys.modules.get("hookline.behaviors")
    return behaviors.DEFAULT_METRICS.snapshot() if behaviors is not None else {}


def origin_of(pipeline: Pipeline) -> Callable[[str], tuple[str | None, str | None, str | None]]:
    """A function naming a stage's plugin, distribution and version (for dead letters)."""
    records = {r.name: r for r in pipeline.plugins.records}

    def origin(stage: str) -> tuple[str | None, str | None, str | None]:
        record = records.get(stage.partition(".")[0])
        return (record.name, record.distribution, record.version) if record else (None,) * 3

    return origin


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
    sources = expand_inputs(inputs)
    run_id = uuid.uuid4().hex[:12]
    report = Report(run_id=run_id, plugins=[r.as_dict() for r in pipeline.plugins.records])
    info = Run(run_id, [s.name for s in sources], db, config.as_dict())
    sink = SQLiteSink(db, pipeline.event_class, run_id=run_id)
    second = None if jsonl is None else JSONLSink(
        jsonl, committed=sink.checkpoint(JSONLSink.key_of(jsonl))[0])
    state = {name: sink.load_state(name) for name in pipeline.stages()}
    runner = make_executor(executor, pipeline, config, db, workers=workers, state=state)
    breaker = Breaker(config.quarantine_after)

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
            offset, line = sink.checkpoint(source.key) if source.resumable else (0, 0)
            report.resumed_sources += bool(offset)
            for end_offset, end_line, result in runner.results(source, offset, line):
                dedupe(sink, result, pipeline)
                checkpoint = (source.key, end_offset, end_line)
                outputs = [] if second is None else [
                    (second.key, second.write(map(sink.rows.json_line, result.rows)))]
                sink.commit(result.rows, result.dead, checkpoint if source.resumable else None,
                            result.state, outputs=outputs, aggregations=result.aggregations)
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
