"""``run()``: stream inputs through a pipeline into a sink (SQLite by default), batch by batch.

Every non-blank input line ends exactly once as accepted, dropped, dead-lettered or set aside
as a duplicate (its ``event_id`` is stored already); the report counts all four. Each batch
is committed together with its source checkpoint, so a run stopped at any moment (kill -9
included) resumes after its last commit on the next run, and a stop request (SIGINT/SIGTERM
through ``stop``) finishes the current batch first.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ._batch import DEDUPE, BatchResult, aggregate, dedupe, set_aside_duplicates
from ._collector import fewer_collections
from ._executors import make_executor
from ._pipeline import Pipeline, read_only
from ._progress import make_progress
from ._report import EXIT_DEAD_LETTERS, EXIT_INTERRUPTED, Report, Rollouts, Run, ended_by
from ._sinks.jsonl import JSONLSink
from ._sources import Source, expand_inputs
from .config import Config, load_config
from .errors import EventTampered, UsageError
from .hookspecs import PHASES, phase_hook
from .sinks import Checkpoint, DeadLetter, Sink, SinkBatch, mask_url, sink_class

__all__ = ["run"]

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


def _waiting(message: str) -> None:
    """Say that this run waits for another one writing into the same database (a warning:
    on stderr when logging is not configured)."""
    log.warning("hookline: %s", message, extra={"event": "waiting_for_writer"})


def _category(letter: DeadLetter) -> str:
    """A short key for grouping dead letters in the report: never per event (a report
    also caps the number of keys: :meth:`Report.add_reason`)."""
    if letter.stage == "schema":
        bad = letter.reason.partition("bad field")[2].partition(": ")[2]
        return "invalid: " + ", ".join(part.partition(":")[0] for part in bad.split("; "))
    if letter.stage == "parse":
        return letter.reason.partition(":")[0]
    if letter.stage == DEDUPE:  # the same key for every duplicate: never one per event id
        return "duplicate event_id"
    reason = letter.reason
    if letter.event_id and letter.event_id in reason:  # "… for e00042": one key for all
        reason = reason.replace(letter.event_id, "<event_id>")
    return reason[:80]


def _timed_metrics() -> dict[str, Any]:
    """What ``timed()`` behaviours measured, when the behaviours module is in use."""
    behaviors = sys.modules.get("hookline.behaviors")
    return behaviors.DEFAULT_METRICS.snapshot() if behaviors is not None else {}


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
    scheduler: str | None = None,
    duplicates: str = "count",
    reprocess: bool = False,
    progress_every: float = 10.0,
) -> Report:
    """Run ``inputs`` (paths, globs, ``.gz`` files, ``-``) into the sink at the URL ``db``
    (a path or ``sqlite:///path``: SQLite; ``postgresql://…``; a plugin's scheme).

    ``jsonl``: also append the accepted events to this JSON-lines file (exactly once).
    ``duplicates``: ``count`` (default) counts the lines whose ``event_id`` is stored
    already; ``dead-letter`` also stores them in ``dead_letters``. ``reprocess``: read the
    inputs again from their start, their earlier events, dead letters, aggregates and state
    deleted first (refused, :class:`UsageError`, when the database holds anything else).
    ``progress``: None a bar on a terminal, True also a log line every ``progress_every``
    seconds elsewhere, False nothing.
    ``executor``: ``inline`` (default), ``process`` with ``workers`` processes, or ``dask`` on
    the Dask scheduler at ``scheduler`` (or ``DASK_SCHEDULER_ADDRESS``; neither: a local
    cluster of ``workers`` processes).
    Raises :class:`RunAborted` when a stage with the ``fail-run`` policy raises (everything
    before that batch is committed).
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise UsageError(
            "hookline.run() was called while a new process imported your main module: "
            "starting a process with multiprocessing's spawn method (Dask's workers, for one) "
            "imports it again, and this call in it would start another run (which waits for "
            "the first, whose workers wait for it). Put the call under "
            "`if __name__ == \"__main__\":`")
    config = config if config is not None else load_config()
    pipeline = pipeline if pipeline is not None else Pipeline.from_entry_points(config)
    if config.environment is None:  # workers take HOOKLINE_* as read before plugins loaded
        config = config.with_(environment=pipeline.config.environment)
    sources = expand_inputs(inputs, pipeline)  # built in, or the plugins' hookline_sources
    run_id = uuid.uuid4().hex[:12]
    if duplicates not in DUPLICATES:
        raise UsageError(f"duplicates={duplicates!r}: use one of {', '.join(DUPLICATES)}")
    report = Report(run_id=run_id, plugins=[r.as_dict() for r in pipeline.plugins.records],
                    duplicates_stored=duplicates == "dead-letter", started_at=time.time())
    shown = mask_url(db)  # what reports and logs say: never a password
    info = Run(run_id, [s.name for s in sources], shown, config.as_dict())
    sink_type = sink_class(db, pipeline)
    with sink_type.errors(db):
        sink = sink_type(db, pipeline.event_class, run_id=run_id)
    try:
        with sink_type.errors(db):
            sink.lock_writer(on_wait=_waiting)  # no lost update between concurrent runs
            sink.check_writable()
            if reprocess:  # before --jsonl's file is opened: it is then cut back to empty
                report.reprocessed = _reset_for(sink, sources, pipeline, jsonl)
            second = None if jsonl is None else JSONLSink(
                jsonl, committed=sink.checkpoint(JSONLSink.key_of(jsonl))[0])
            state = sink.load_state(pipeline.stages())
    except BaseException:
        sink.close()
        raise
    runner = make_executor(executor, pipeline, config, db, workers=workers, state=state,
                           stored=sink.seen_ids, scheduler=scheduler)
    breaker = Breaker(config.quarantine_after, pipeline)
    order = _order(pipeline)  # where each stage is, and the flags gating stages
    rollouts = Rollouts(_rollouts(pipeline), sink.rows.names)

    bar = make_progress(progress, sources, progress_every)
    pipeline.flags.evaluations.clear()  # the report counts this run's decisions
    active_flags = pipeline.flags.active()  # for the hooks; process_batch does it for stages
    active_flags.__enter__()
    collector = fewer_collections()
    started = time.perf_counter()
    log.info("run %s started: %d input(s) into %s", run_id, len(sources), shown,
             extra={"run_id": run_id, "inputs": info.inputs, "db": shown, "executor": executor})
    pipeline.hook.hookline_run_start(run=info)
    try:
        collector.__enter__()  # left in the finally below, whatever happens
        for source in sources:
            offset = line = 0
            if source.resumable:
                with sink_type.errors(db):
                    sink.lock_input(source.key, on_wait=_waiting)
                    offset, line = sink.checkpoint(source.key)
            read_before = report.read
            summary = {"name": source.name, "from_line": line, "to_line": line, "read": 0}
            report.inputs.append(summary)
            bar.source(source, offset)
            for end_offset, end_line, result in runner.results(source, offset, line):
                _count_calls(pipeline, order, result)
                with sink_type.errors(db):
                    dedupe(sink, result, pipeline)
                    duplicated = set_aside_duplicates(result) if duplicates == "count" else 0
                    outputs = [] if second is None else [
                        (second.key, second.write(map(sink.rows.json_line, result.rows)))]
                    sink.commit(SinkBatch(
                        result.rows, result.dead,
                        Checkpoint(source.key, end_offset, end_line) if source.resumable
                        else None, result.state, outputs=outputs,
                        aggregations=result.aggregations))
                _count(report, result, pipeline)
                report.duplicates += duplicated
                report.read += duplicated
                rollouts.add(result.rows)
                summary["to_line"], summary["read"] = end_line, report.read - read_before
                for stage in breaker.trips(result):
                    runner.quarantine(stage)
                    report.quarantined.append(stage)
                    log.warning("run %s: stage %s quarantined after %d failures in a row",
                                run_id, stage, config.quarantine_after,
                                extra={"run_id": run_id, "stage": stage})
                pipeline.hook.hookline_batch_committed(run=info, report=report, pipeline=pipeline)
                report.executor = {"name": executor, **runner.describe()}
                bar.update(report, end_offset)
                if stop is not None and stop.is_set():
                    report.interrupted = True
                    break
            if report.interrupted:
                break
        for item in report.inputs:
            if not item["read"] and item["from_line"]:
                log.debug("run %s: nothing new in %s: committed up to line %d", run_id,
                          item["name"], item["to_line"], extra={"run_id": run_id})
        report.duration_s = time.perf_counter() - started
        report.executor = {"name": executor, **runner.describe()}
        pipeline.stats.resolve_gates(pipeline.flags.evaluations)
        report.stage_stats = pipeline.stats.as_dict(order)
        report.phase_stats = pipeline.stats.phases_dict()
        timed = _timed_metrics()
        if timed:
            report.sections["timed"] = timed
        report.flags = _flags(pipeline, rollouts)
        report.status, report.exit_status = _ending(report, config)
        pipeline.hook.hookline_run_end(run=info, report=report)
        with sink_type.errors(db):
            sink.record_run(info.started_at, report.as_dict())
        log.info("run %s finished: %d read, %d accepted, %d dropped, %d dead-lettered, "
                 "%d duplicates", run_id, report.read, report.accepted, report.dropped,
                 report.dead_lettered, report.duplicates,
                 extra={"run_id": run_id, "read": report.read, "accepted": report.accepted,
                        "dropped": report.dropped, "dead_lettered": report.dead_lettered,
                        "duplicates": report.duplicates, "interrupted": report.interrupted,
                        "duration_s": report.duration_s})
    except BaseException as error:  # stored too, so that `hookline runs` tells how it ended
        report.status, report.exit_status = ended_by(error)
        report.duration_s = time.perf_counter() - started
        report.stage_stats = pipeline.stats.as_dict(order)
        report.phase_stats = pipeline.stats.phases_dict()
        _record_failed(sink, info, report)
        raise
    finally:
        collector.__exit__(None, None, None)
        active_flags.__exit__(None, None, None)
        bar.close()
        runner.close()
        sink.close()
        if second is not None:
            second.close()
    return report


def _count(report: Report, result: BatchResult, pipeline: Pipeline) -> None:
    """Add a committed batch to the report and the stage statistics; tell the observers.
    Duplicates among the dead letters (``--duplicates dead-letter``) count as duplicates."""
    report.accepted += len(result.rows)
    report.dropped += result.dropped
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
        if letter.stage == DEDUPE:
            report.duplicates += 1
        else:
            report.dead_lettered += 1
        report.add_reason(_category(letter))
        report.stages[letter.stage or "?"] += 1
        if letter.stage in _BEFORE_STAGES:
            continue
        view = read_only({"payload": letter.payload, "line": letter.line})
        if letter.error is not None:  # a StageFailed, in the same order as result.failures
            stage, error, _ = next(failed)
            pipeline.hook.hookline_stage_error(stage=stage, event=view, error=error)
        pipeline.hook.hookline_event_rejected(event=view, reason=letter.reason,
                                              stage=letter.stage)


#: What ``--duplicates`` takes: count them only (the default), or store them as dead letters.
DUPLICATES = ("count", "dead-letter")


def _order(pipeline: Pipeline) -> list[str]:
    """Every stage and phase wrapper in the order events pass them (the report's order, and
    how :meth:`~hookline._stats.Stats.count` counts calls); each flag-gated stage's flag is
    noted in the statistics (its calls are that flag's decisions)."""
    positions = _positions(pipeline)
    for phase in PHASES:
        for impl in pipeline.plugins.impls(phase_hook(phase)):
            flag = getattr(getattr(impl.plugin, "info", None), "flag", None)
            if flag:
                pipeline.stats.stage(impl.plugin_name).flag = flag
    return sorted(positions, key=positions.__getitem__)


def _count_calls(pipeline: Pipeline, order: list[str], result: BatchResult) -> None:
    """Count the stage calls of a processed batch, before the last duplicate check: the
    events that passed every stage (accepted; a tampered one, blamed after all ran) and
    where the others ended. The re-run that finds a tamperer is not counted."""
    ended: Counter[str] = Counter(result.rejected_by)
    ended.update(result.dropped_by)
    passed = len(result.accepted_lines)
    for stage, error, _ in result.failures:
        if isinstance(error, EventTampered) or getattr(error, "kind", "") == "EventTampered":
            passed += 1
        else:
            ended[stage] += 1
    pipeline.stats.count(order, passed, ended)


def _rollouts(pipeline: Pipeline) -> list[tuple[str, float, str]]:
    """``(flag, share, key field)`` of each flag rolled out to a share of its keys."""
    return [(row["name"], row["value"], row["key"]) for row in pipeline.flags.describe()
            if isinstance(row["value"], float)]


def _flags(pipeline: Pipeline, rollouts: Rollouts) -> list[dict[str, Any]]:
    """The report's flag lines: each flag the run evaluated, its value and decisions, and for
    a rollout the share of users (of the accepted events) it was on for."""
    shares = rollouts.shares()
    found = []
    for row in pipeline.flags.describe():
        if not row["evaluations"]:
            continue
        flag = {key: row[key] for key in ("name", "value", "source", "key", "evaluations",
                                          "on")}
        if row["name"] in shares:
            flag["users_on"], flag["users"] = shares[row["name"]]
        found.append(flag)
    return found


def _ending(report: Report, config: Config) -> tuple[str, int]:
    """How a run that went to its end ended, and its exit status."""
    if report.interrupted:
        return "interrupted", EXIT_INTERRUPTED
    limit = config.max_dead_letter_ratio
    if limit is not None and report.dead_letter_ratio > limit:
        return (f"over the dead-letter limit ({report.dead_letter_ratio:.2%} > {limit:.2%})",
                EXIT_DEAD_LETTERS)
    return "completed", 0


def _record_failed(sink: Sink, info: Run, report: Report) -> None:
    """Store the report of a run that an error ended, if the database still can."""
    try:
        sink.record_run(info.started_at, report.as_dict())
    except Exception as exc:  # the database may be the error: the error says what matters
        log.debug("run %s: its report could not be stored: %s", info.run_id, exc)


def _reset_for(sink: Sink, sources: list[Source], pipeline: Pipeline, jsonl: str | None
               ) -> list[str]:
    """``--reprocess``: delete what the runs wrote, so that ``sources`` are read again from
    their start and replace their earlier events; the names of those the database held.

    Exact only when the database holds nothing else: the aggregates and the stages' state
    mix every input's events and cannot be taken apart. So this refuses (UsageError) when a
    checkpoint or a stored run names another input (or another ``--jsonl`` output).
    """
    mine = {source.key for source in sources if source.resumable}
    if jsonl is not None:
        mine.add(JSONLSink.key_of(jsonl))
    held = sink.checkpoint_keys()
    others = {key.partition("|")[0] for key in held if key not in mine}
    names = {source.name for source in sources}
    for stored in sink.runs():
        others.update(item["name"] for item in (stored.report or {}).get("inputs", ())
                      if item["name"] not in names and (item["read"] or item["to_line"]))
    if others:
        listed = ", ".join(sorted(others)[:5]) + (", …" if len(others) > 5 else "")
        raise UsageError(
            f"--reprocess: {mask_url(sink.url)} also holds what other inputs or outputs "
            f"put there ({listed}); their aggregates and stage state are mixed with these "
            "inputs', so their events cannot be replaced exactly. Reprocess all of them "
            "together, or run into a new --db")
    sink.reset([partial.table for partial in aggregate(pipeline, ())])
    return [source.name for source in sources if source.key in held]
