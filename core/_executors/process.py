"""The process executor: worker processes, each owning a partition of the users.

Crossing processes is expensive (pickling a dict event costs more than a cheap pipeline), so
the input is partitioned, not the events: every worker reads the source itself and keeps the
lines whose ``user_id`` hashes to it (found in the raw bytes by a regular expression, no JSON
parsing), so a stateful stage sees all of one user's events, in input order. Workers rebuild
the plugin set from the installed entry points and the run's configuration, refuse to start
when their plugin versions differ from the parent's, and send back, per batch, compact
results: the rows of ``events`` ready to insert, dead letters, aggregation partials, counts
and state changes. The parent merges the workers' parts of each batch in input order and
commits it; the database ends up exactly as an inline run's.
"""

from __future__ import annotations

import heapq
import itertools
import marshal
import multiprocessing
import os
import queue
import re
import sqlite3
import sys
import traceback
import zlib
from collections.abc import Iterator
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from .._sinks.sqlite import DeadLetter, read_state
from ..errors import ExecutorError, RemoteError
from ._base import Executor

if TYPE_CHECKING:
    from .._batch import BatchResult
    from .._pipeline import Pipeline
    from .._sources import Source
    from ..config import Config
    from ..metrics import Histogram

__all__ = ["ExecutorError", "ProcessExecutor", "partition_of"]

#: A dead letter travels as the tuple of its fields (dataclasses.astuple deep-copies: slow).
_DEAD_FIELDS = tuple(f.name for f in fields(DeadLetter))
_LINE = _DEAD_FIELDS.index("line")
# "unrolled": runs of plain characters matched in one step, escapes one at a time.
_USER_ID = re.compile(rb'"user_id"\s*:\s*"([^"\\]*(?:\\.[^"\\]*)*)"')


def partition_of(raw: bytes, line: int, count: int) -> int:
    """Which of ``count`` workers owns an input line: by ``user_id``, else by line number."""
    found = _USER_ID.search(raw)
    key = found.group(1) if found else str(line).encode()
    return zlib.crc32(key) % count


def _mine(lines: list[tuple[int, bytes]], index: int, count: int) -> list[tuple[int, bytes]]:
    """The lines of a batch worker ``index`` owns (:func:`partition_of`, inlined: every
    worker looks at every line)."""
    search, crc32 = _USER_ID.search, zlib.crc32
    kept = []
    for number, raw in lines:
        found = search(raw)
        if crc32(found.group(1) if found else str(number).encode()) % count == index:
            kept.append((number, raw))
    return kept


def _load_state(db: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """The committed state of the stages ``names``, read without writing to ``db``."""
    if not names or not os.path.exists(db):
        return {}
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return read_state(connection, names)
    finally:
        connection.close()


def _worker(index: int, count: int, spec: dict[str, Any], out: Any,
            commands: Any = None) -> None:
    """A worker's life: rebuild the pipeline, then process its partition batch by batch;
    before each batch, take out the stages the parent's circuit breaker quarantined."""
    from .._batch import complete, origin_of, process_batch
    from .._pipeline import Pipeline
    from .._sinks.sqlite import Rows
    from .._sources import Source
    from .._state import changes, load
    from ..config import Config
    from ..errors import RunAborted

    try:
        config = Config.from_dict(spec["config"])
        pipeline = Pipeline.from_entry_points(config)
        versions = {r.name: r.version for r in pipeline.plugins.loaded()}
        if versions != spec["versions"]:
            out.put(("error", index, f"worker {index} loaded plugin versions {versions}, the "
                     f"parent has {spec['versions']}: install the same versions everywhere"))
            return
        pipeline.flags._scope.set(spec["scoped_flags"])
        pipeline.flags.active().__enter__()  # for this worker's life
        stateful = pipeline.stages()
        load(stateful, _load_state(spec["db"], list(stateful)))
        rows = Rows(pipeline.event_class)
        origin = origin_of(pipeline)
        source = Source(spec["source"])
        batches = source.batches(config.batch_size, offset=spec["offset"], line=spec["line"])
        for number, batch in enumerate(batches):
            while commands is not None and not commands.empty():
                pipeline.quarantine(commands.get())
            batch.lines = _mine(batch.lines, index, count)
            result = complete(pipeline, process_batch(pipeline, batch, origin), rows)
            # The bulk, plain values only, in marshal's format: several times quicker to
            # write and read than pickle's.
            by_user, *added = result.aggregations  # complete() puts agg_by_user's first
            bulk = marshal.dumps((result.accepted_lines, result.rows,
                                  [tuple(map(vars(letter).__getitem__, _DEAD_FIELDS))
                                   for letter in result.dead], by_user.rows()))
            out.put(("batch", index, number, batch.end_offset, batch.end_line, {
                "bulk": bulk,
                "aggregations": added,
                "dropped": result.dropped,
                "rejected_by": dict(result.rejected_by),
                "dropped_by": dict(result.dropped_by),
                "failures": [(stage, RemoteError(type(error).__name__, str(error)), line)
                             for stage, error, line in result.failures],
                "state": changes(stateful),
            }))
        latency = {name: s.latency for name, s in pipeline.stats.stages.items()}
        out.put(("done", index, latency, _timed()))
    except RunAborted as exc:
        out.put(("abort", index, exc.stage, f"{type(exc.error).__name__}: {exc.error}",
                 exc.line))
    except BaseException:
        out.put(("error", index, traceback.format_exc()))


def _timed() -> Any:
    """What this process's ``timed()`` behaviours recorded (None when none is in use)."""
    behaviors = sys.modules.get("hookline.behaviors")
    return behaviors.DEFAULT_METRICS if behaviors is not None else None


def _start_method() -> str:
    """``fork`` where it is safe and quick (Linux, no other thread in this process): a worker
    starts with hookline already imported; ``spawn`` elsewhere."""
    import threading

    if sys.platform == "linux" and threading.active_count() == 1:
        return "fork"
    return "spawn"


class ProcessExecutor(Executor):
    """Runs batches in ``workers`` processes partitioned by ``user_id``."""

    def __init__(self, pipeline: Pipeline, config: Config, db: str, *,
                 workers: int | None) -> None:
        super().__init__(pipeline, config, db)
        if pipeline.built_from != "entry_points":
            raise ExecutorError(
                "the process executor rebuilds the plugins from installed entry points in "
                "each worker; this pipeline was built from objects in hand "
                "(Pipeline.from_plugins): install the plugins, or use the inline executor")
        self.count = max(1, workers or os.cpu_count() or 1)
        self.context: Any = multiprocessing.get_context(_start_method())
        self.processes: list[Any] = []
        self.commands: list[Any] = []

    def results(self, source: Source, offset: int, line: int
                ) -> Iterator[tuple[int, int, BatchResult]]:
        if source.is_stdin:
            raise ExecutorError("the process executor reads files; use inline for stdin")
        # A queue per worker, read in turn: no worker gets more than a few batches ahead of
        # the commits, and the parent never holds more than one batch of each.
        outs = [self.context.Queue(maxsize=4) for _ in range(self.count)]
        spec = {
            "config": self.config.as_dict(),
            "versions": {r.name: r.version for r in self.pipeline.plugins.loaded()},
            "scoped_flags": dict(self.pipeline.flags._scope.get()),
            "db": self.db, "source": source.name, "offset": offset, "line": line,
        }
        self.commands = [self.context.SimpleQueue() for _ in range(self.count)]
        self.processes = [self.context.Process(target=_worker,
                                               args=(i, self.count, spec, outs[i],
                                                     self.commands[i]),
                                               daemon=True, name=f"hookline-worker-{i}")
                          for i in range(self.count)]
        for process in self.processes:
            process.start()
        yield from self._merged(outs)
        self.close()

    def _merged(self, outs: list[Any]) -> Iterator[tuple[int, int, BatchResult]]:
        """Every worker reads every batch of the source and sends one part of each, in order,
        then "done": batch after batch, one part from each worker's queue, merged."""
        for number in itertools.count():
            parts, done = [], 0
            for index, out in enumerate(outs):
                message = self._receive(index, out)
                if message[0] == "done":
                    done += 1
                    self._merge_latency(message[2])
                    metrics = _timed()
                    if message[3] is not None and metrics is not None:
                        metrics.merge(message[3])
                    continue
                _, _, sent, end_offset, end_line, payload = message
                if sent != number:  # pragma: no cover - every worker sees the same batches
                    raise ExecutorError(f"worker {index} sent batch {sent}, not {number}")
                parts.append((end_offset, end_line, payload))
            if done == len(outs):
                return
            if done:  # pragma: no cover - every worker sees the same batches
                raise ExecutorError(f"{done} worker(s) finished before batch {number}")
            yield parts[0][0], parts[0][1], self._combine([p for _, _, p in parts])

    def _receive(self, index: int, out: Any) -> tuple[Any, ...]:
        """Worker ``index``'s next batch part or "done"; its failure raised here."""
        from ..errors import RunAborted

        while True:
            try:
                message: tuple[Any, ...] = out.get(timeout=1.0)
            except queue.Empty:
                if self.processes[index].is_alive():
                    continue
                try:  # it may have exited right after its last message arrived
                    message = out.get(timeout=1.0)
                except queue.Empty:
                    raise ExecutorError(f"worker {index} died without a word "
                                        "(killed?)") from None
            kind = message[0]
            if kind == "error":
                raise ExecutorError(f"worker {message[1]} failed: {message[2]}")
            if kind == "abort":
                _, _, stage, error, line = message
                raise RunAborted(stage, RemoteError("error", error), line)
            return message

    def _combine(self, payloads: list[dict[str, Any]]) -> BatchResult:
        """One batch's parts from every worker, merged in input order."""
        from .._batch import BatchResult
        from ..aggregates import ByUser, Collected, merged

        result = BatchResult()
        bulks = [marshal.loads(p["bulk"]) for p in payloads]
        by_line: dict[int, tuple[Any, ...]] = {}  # every worker's rows, in input order
        for lines, rows, _, _ in bulks:
            by_line.update(zip(lines, rows))
        result.accepted_lines = sorted(by_line)
        result.rows = [by_line[line] for line in result.accepted_lines]
        by_user = Collected(ByUser, [row for *_, user_rows in bulks for row in user_rows])
        result.aggregations = [by_user, *merged([p["aggregations"] for p in payloads])]
        result.dead = [DeadLetter(*letter) for letter in heapq.merge(
            *(dead for _, _, dead, _ in bulks), key=lambda letter: letter[_LINE] or 0)]
        result.failures = list(heapq.merge(*(p["failures"] for p in payloads),
                                           key=lambda failure: failure[2]))
        for payload in payloads:
            result.dropped += payload["dropped"]
            result.rejected_by.update(payload["rejected_by"])
            result.dropped_by.update(payload["dropped_by"])
            result.state.extend(payload["state"])
        return result

    def _merge_latency(self, latency: dict[str, Histogram]) -> None:
        for name, histogram in latency.items():
            self.pipeline.stats.stage(name).latency.merge(histogram)

    def quarantine(self, stage: str) -> None:
        """Quarantine ``stage`` here (the report) and in every worker, from the next batch each
        starts: a worker may be a few batches ahead of the commits, so the stage can run on
        more events than inline before it is taken out."""
        super().quarantine(stage)
        for commands in self.commands:
            commands.put(stage)

    def close(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(timeout=5)
        self.processes = []
