"""``run()``: stream JSONL inputs through a pipeline into SQLite, batch by batch.

Every non-blank input line ends exactly once as accepted, dropped or dead-lettered; the
report counts all three. Each batch is committed together with its source checkpoint, so a
run stopped at any moment (kill -9 included) resumes after its last commit on the next run,
and a stop request (SIGINT/SIGTERM through ``stop``) finishes the current batch first.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .aggregates import Aggregates
from .config import Config, load_config
from .errors import Drop, InputError, Reject, StageFailed, ValidationError
from .limits import parse_json
from .pipeline import Pipeline, read_only
from .report import Report, Run
from .schema import Event
from .sinks.sqlite import DeadLetter, SQLiteSink
from .sources import Batch, expand_inputs

__all__ = ["run"]


@dataclass
class BatchResult:
    """What became of one batch's lines."""

    accepted: list[Event] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    dropped: int = 0


def _short_traceback(error: BaseException, limit: int = 4) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__,
                                              limit=-limit)).strip()


def process_batch(pipeline: Pipeline, batch: Batch, origin: Callable[[str], Any]) -> BatchResult:
    """The per-event loop: parse, validate, run the phases, sort each line into its outcome."""
    result = BatchResult()
    make, process, name = pipeline.from_dict, pipeline.process, batch.source.name
    for number, raw in batch.lines:
        try:
            result.accepted.append(process(make(parse_json(raw))))
        except InputError as exc:
            result.dead.append(DeadLetter(_text(raw), exc.reason, "parse", None, number, name))
        except ValidationError as exc:
            reason = str(exc.at(line=number, source=name))
            result.dead.append(DeadLetter(_text(raw), reason, "schema", None, number, name))
        except Reject as exc:
            result.dead.append(DeadLetter(_text(raw), exc.reason, exc.stage, None, number, name,
                                          *origin(exc.stage or "")))
        except Drop:
            result.dropped += 1
        except StageFailed as exc:
            reason = f"{exc.stage} raised {type(exc.error).__name__}: {exc.error}"
            result.dead.append(DeadLetter(_text(raw), reason, exc.stage,
                                          _short_traceback(exc.error), number, name,
                                          *origin(exc.stage)))
    return result


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


def _dedupe(sink: SQLiteSink, result: BatchResult) -> None:
    """Refuse event ids already stored or repeated within the batch (dead-lettered)."""
    ids = [event.__dict__["event_id"] for event in result.accepted]
    stored = sink.existing_ids(ids)
    if not stored and len(set(ids)) == len(ids):
        return
    seen: set[str] = set()
    kept: list[Event] = []
    for event in result.accepted:
        event_id = event.__dict__["event_id"]
        if event_id in stored or event_id in seen:
            result.dead.append(DeadLetter(event.to_json(), f"duplicate event_id {event_id!r}",
                                          "dedupe"))
        else:
            seen.add(event_id)
            kept.append(event)
    result.accepted = kept


class _Progress:
    """A one-line progress display on a terminal; silent otherwise."""

    def __init__(self, enabled: bool | None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.last = 0.0

    def update(self, report: Report, batch: Batch) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.2:
            return
        self.last = now
        size = batch.source.size
        share = f" {100 * batch.end_offset / size:5.1f}% of {batch.source.name}" if size else ""
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
) -> Report:
    """Run ``inputs`` (paths, globs, ``.gz`` files, ``-``) into the SQLite database ``db``."""
    config = config if config is not None else load_config()
    pipeline = pipeline if pipeline is not None else Pipeline.from_entry_points(config)
    sources = expand_inputs(inputs)
    run_id = uuid.uuid4().hex[:12]
    report = Report(run_id=run_id, plugins=[r.as_dict() for r in pipeline.plugins.records])
    info = Run(run_id, [s.name for s in sources], db, config.as_dict())
    sink = SQLiteSink(db, pipeline.event_class, run_id=run_id)
    records = {r.name: r for r in pipeline.plugins.records}

    def origin(stage: str) -> tuple[str | None, str | None, str | None]:
        record = records.get(stage.partition(".")[0])
        return (record.name, record.distribution, record.version) if record else (None,) * 3

    bar = _Progress(progress)
    started = time.perf_counter()
    pipeline.hook.hookline_run_start(run=info)
    try:
        for source in sources:
            offset, line = sink.checkpoint(source.key) if source.resumable else (0, 0)
            report.resumed_sources += bool(offset)
            for batch in source.batches(config.batch_size, offset=offset, line=line):
                result = process_batch(pipeline, batch, origin)
                _dedupe(sink, result)
                aggregates = Aggregates()
                for event in result.accepted:
                    aggregates.add(event)
                checkpoint = (source.key, batch.end_offset, batch.end_line)
                sink.commit(result.accepted, result.dead, aggregates,
                            checkpoint if source.resumable else None)
                _count(report, result, pipeline)
                bar.update(report, batch)
                if stop is not None and stop.is_set():
                    report.interrupted = True
                    break
            if report.interrupted:
                break
        report.duration_s = time.perf_counter() - started
        pipeline.hook.hookline_run_end(run=info, report=report)
        sink.record_run(info.started_at, report.as_dict())
    finally:
        bar.done()
        sink.close()
    return report


def _count(report: Report, result: BatchResult, pipeline: Pipeline) -> None:
    report.accepted += len(result.accepted)
    report.dropped += result.dropped
    report.dead_lettered += len(result.dead)
    report.read += len(result.accepted) + result.dropped + len(result.dead)
    for letter in result.dead:
        report.reasons[_category(letter)] += 1
        report.stages[letter.stage or "?"] += 1
        if letter.stage not in ("parse", "schema", "dedupe"):
            pipeline.hook.hookline_event_rejected(
                event=read_only({"payload": letter.payload, "line": letter.line}),
                reason=letter.reason, stage=letter.stage)
