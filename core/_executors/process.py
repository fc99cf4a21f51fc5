"""The process executor: worker processes, each owning a partition of the users.

Crossing processes is expensive (pickling a dict event costs more than a cheap pipeline), so
the input is partitioned, not the events: every worker reads the source itself and keeps the
lines whose ``user_id`` hashes to it (found in the raw bytes by a regular expression, no JSON
parsing), so a stateful stage sees all of one user's events, in input order. Workers rebuild
the plugin set from the installed entry points and the run's configuration, refuse to start
when their plugin versions differ from the parent's, and send back, per batch, compact
results (:mod:`hookline._executors._parts`, as the Dask executor's workers do): the rows of
``events`` ready to insert, dead letters, aggregation partials, counts, state changes and what
was measured (the stages' latency samples, what ``timed()`` measured, the flag decisions).
The parent merges the workers' parts of each batch in input order and commits it; the
database ends up exactly as an inline run's.

Workers end with their parent, even one killed with -9 (``PR_SET_PDEATHSIG`` on Linux, and
a thread watching ``os.getppid()`` everywhere). A worker that dies (``os._exit`` in a stage,
a signal, a crash) never hangs the run: the parent reads each worker's pipe without blocking
on a half-written message, notices the death, starts a new worker for the batch the dead one
did not send, and that worker does it again one event at a time, noting the line and stage
it is on. An event during which that worker dies too is a poison event: the next worker
dead-letters it (``worker died``, naming the stage) and the run goes on.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import multiprocessing
import os
import pickle
import queue
import re
import signal
import struct
import sys
import threading
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import fields
from multiprocessing.connection import wait
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

from .. import _logging, hookspecs
from ..errors import ExecutorError, RemoteError, WorkerDied
from ..sinks import DeadLetter
from ._base import Executor
from ._parts import add_measures, combine, pack, take_measures

if TYPE_CHECKING:
    from .._batch import BatchResult, Stored
    from .._pipeline import Pipeline
    from .._sources import Source
    from ..config import Config

__all__ = ["ExecutorError", "ProcessExecutor", "partition_of"]

log = logging.getLogger("hookline.executor")

#: How many batches a worker may send ahead of the parent's commits (its queue's size).
_DEPTH = 4
#: A message on a worker's pipe: its length, then its pickle.
_HEADER = struct.Struct("!Q")
#: ``watch[0]`` of a worker still building its pipeline (then 0, or the line it is on).
_STARTING = -1
#: Deaths of workers on one batch, outside any event, before the run gives up.
_RETRIES = 3
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
#: The status a worker exits with when a stage ran past the time limit and could not be
#: interrupted: the worker is replaced like any dead one, and the event that does it again is
#: dead-lettered with reason ``timeout``.
STUCK_EXIT = 124
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


def _bound_to_parent(parent: int) -> None:
    """Make this worker end with its parent, even one killed with -9, and take signals as a
    worker should: SIGTERM ends it (a forked worker inherits the run's handler, which only
    asks the run to stop), and Ctrl-C, which a terminal sends to the whole process group, is
    the parent's to act on (it stops the workers once the current batch is committed)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            pass
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="hookline-parent-watch",
                     daemon=True).start()


def _watch_parent(parent: int) -> None:
    """The portable way: an orphan is adopted by another process, so its parent id changes."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


class _Sender:
    """A worker's end of its pipe: a thread pickles and writes the messages, at most
    ``_DEPTH`` of them waiting or being written, so that the worker goes on with the next
    batch while the parent commits (what ``multiprocessing.Queue(maxsize=_DEPTH)`` did)."""

    def __init__(self, writer: Any, index: int) -> None:
        self.writer, self.index = writer, index
        self.pending: queue.Queue[Any] = queue.Queue(maxsize=_DEPTH - 1)
        self.thread = threading.Thread(target=self._write, name="hookline-sender", daemon=True)
        self.thread.start()

    def put(self, message: Any) -> None:
        self.pending.put(message)

    def _write(self) -> None:
        fd = self.writer.fileno()
        while True:
            message = self.pending.get()
            if message is None:
                return
            try:
                data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # a plugin's partial that does not pickle: say so, not hang
                data = pickle.dumps(("error", self.index, traceback.format_exc()))
            for part in (_HEADER.pack(len(data)), data):
                view = memoryview(part)
                while view:
                    view = view[os.write(fd, view):]

    def close(self) -> None:
        self.pending.put(None)
        self.thread.join()
        self.writer.close()


def _worker_process(index: int, count: int, spec: dict[str, Any], writer: Any, commands: Any,
                    watch: Any) -> None:
    """What a worker process runs: bound to its parent's life, :func:`_worker`."""
    from .. import _watchdog

    _bound_to_parent(spec["parent"])
    # A stage the watchdog cannot interrupt (a blocking call that ignores signals, or one
    # that swallows the interruption) ends this worker; the parent replaces it.
    _watchdog.exit_when_stuck = STUCK_EXIT
    sender = _Sender(writer, index)
    try:
        _worker(index, count, spec, sender, commands, watch)
    finally:
        sender.close()


def _worker(index: int, count: int, spec: dict[str, Any], out: Any,
            commands: Any = None, watch: Any = None) -> None:
    """A worker's life: rebuild the pipeline, then process its partition batch by batch;
    before each batch, take out the stages the parent's circuit breaker quarantined.

    ``spec["first"]`` numbers the first batch (a replacement starts where its predecessor
    died); with ``spec["careful"]``, that batch is done one event at a time under ``watch``.
    """
    from .._batch import Recent, complete, origin_of, process_batch
    from .._collector import fewer_collections
    from .._pipeline import Pipeline
    from .._sources import open_input
    from .._state import changes, load
    from ..config import Config
    from ..errors import RunAborted, SourceError
    from ..sinks import Rows, open_reader

    try:
        if spec.get("logging") is not None:
            _logging.configure(*spec["logging"])
        config = Config.from_dict(spec["config"])
        pipeline = Pipeline.from_entry_points(config)
        versions = {r.name: r.version for r in pipeline.plugins.loaded()}
        if versions != spec["versions"]:
            out.put(("error", index, f"worker {index} loaded plugin versions {versions}, the "
                     f"parent has {spec['versions']}: install the same versions everywhere"))
            return
        # the caller's `with flags.enabled(...)` scopes, and the collector's tuning
        with pipeline.flags.carried(spec["scoped_flags"]), fewer_collections():
            for stage in spec.get("quarantined", ()):
                pipeline.quarantine(stage)
            # The committed state and ids, read through the sink's read-only view (the worker
            # never writes; the parent commits).
            reader = open_reader(spec["db"], pipeline)
            stateful = pipeline.stages()
            load(stateful, reader.load_state(stateful))
            rows = Rows(pipeline.event_class)
            origin = origin_of(pipeline)
            source = open_input(spec["source"], pipeline)  # as the parent did, with its plugins
            batches = source.batches(config.batch_size, offset=spec["offset"], line=spec["line"])
            # Duplicates are set aside before the stages: the ids the database holds, and those
            # of the batches this worker sent that may not be committed yet (at most the queue's
            # depth and the one the parent is committing).
            seen = Recent(reader.seen_ids, depth=_DEPTH + 2)
            first = spec.get("first", 0)
            if watch is not None:
                watch[0] = 0  # started
            for number, batch in enumerate(batches, start=first):
                while commands is not None and not commands.empty():
                    pipeline.quarantine(commands.get())
                batch.lines = _mine(batch.lines, index, count)
                if watch is not None and number == first and spec.get("careful"):
                    processed = _one_at_a_time(pipeline, batch, origin, seen, watch, spec)
                else:
                    processed = process_batch(pipeline, batch, origin, seen)
                result = complete(pipeline, processed, rows)
                seen.processed(result)
                part = pack(result, changes(stateful))
                take_measures(pipeline, part)  # the batch's timings and flag decisions go with it
                out.put(("batch", index, number, batch.end_offset, batch.end_line, part))
            reader.close()
            out.put(("done", index))
    except RunAborted as exc:
        out.put(("abort", index, exc.stage, f"{type(exc.error).__name__}: {exc.error}",
                 exc.line))
    except SourceError as exc:  # names the plugin and the line: a traceback would add noise
        out.put(("error", index, str(exc)))
    except BaseException:
        out.put(("error", index, traceback.format_exc()))


def _one_at_a_time(pipeline: Pipeline, batch: Any, origin: Callable[[str], Any],
                   stored: Stored | None, watch: Any, spec: dict[str, Any]) -> BatchResult:
    """A batch a worker died on, done again one event at a time: before each event,
    ``watch[0]`` holds its line, and while a stage runs, ``watch[1]`` holds its number in
    ``spec["stages"]`` (from a profile function: slow, and only here). A poison event (one a
    worker died on, here, before) is dead-lettered without running."""
    from .._batch import BatchResult, process_batch
    from .._sources import Batch

    codes = _stage_codes(pipeline, spec["stages"])
    running = [0]

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" or event == "return":
            at = codes.get(frame.f_code)
            if at:
                if event == "call":
                    running.append(at)
                elif len(running) > 1:
                    running.pop()
                watch[1] = running[-1]

    seen: set[str] = set()

    def stored_or_seen(event_ids: list[str]) -> set[str]:
        """What one call for the whole batch would set aside: stored ids, and repeats."""
        found = stored(event_ids) if stored is not None else set()
        return found | seen.intersection(event_ids)

    poison = spec.get("poison", {})
    result = BatchResult()
    try:
        for number, raw in batch.lines:
            if number in poison:
                stage, how = poison[number]
                _poisoned(result, number, raw, stage, how, batch.source.name, origin)
                continue
            watch[0], watch[1] = number, 0
            del running[1:]
            one = Batch(batch.source, [(number, raw)], batch.end_offset, batch.end_line)
            sys.setprofile(profile)
            try:
                part = process_batch(pipeline, one, origin, stored_or_seen)
            finally:
                sys.setprofile(None)
            seen.update(part.checked)
            _extend(result, part)
    finally:
        watch[0] = watch[1] = 0
    return result


def _require_entry_points(pipeline: Pipeline, executor: str) -> None:
    """Refuse a pipeline built from objects in hand: an executor whose workers rebuild the
    plugins (the process and Dask executors) could not give them the same ones."""
    if pipeline.built_from != "entry_points":
        raise ExecutorError(
            f"the {executor} executor rebuilds the plugins from installed entry points in "
            "each worker; this pipeline was built from objects in hand "
            "(Pipeline.from_plugins): install the plugins, or use the inline executor")


def _stage_names(pipeline: Pipeline) -> list[str]:
    """Every stage, hook implementation and wrapper of the phases, by name."""
    return sorted({impl.plugin_name for phase in hookspecs.PHASES
                   for impl in pipeline.plugins.impls(hookspecs.phase_hook(phase))})


def _stage_codes(pipeline: Pipeline, names: list[str]) -> dict[CodeType, int]:
    """The code of each phase implementation (under its behaviours) -> its number in
    ``names`` (from 1)."""
    numbers = {name: at for at, name in enumerate(names, 1)}
    codes: dict[CodeType, int] = {}
    for phase in hookspecs.PHASES:
        for impl in pipeline.plugins.impls(hookspecs.phase_hook(phase)):
            code = getattr(inspect.unwrap(impl.function), "__code__", None)
            if code is not None and impl.plugin_name in numbers:
                codes.setdefault(code, numbers[impl.plugin_name])
    return codes


def _poisoned(result: BatchResult, number: int, raw: bytes, stage: str | None, how: str,
              source: str, origin: Callable[[str], Any]) -> None:
    """Dead-letter a poison event: workers died twice on its batch, the second time while
    processing it (in ``stage``, when one was running)."""
    text = raw.decode("utf-8", errors="replace")
    stuck = how == _exit_status(STUCK_EXIT)
    if stage is None:
        reason = "timeout" if stuck else f"worker died ({how})"
        result.dead.append(DeadLetter(text, f"{reason} on this event, outside any stage", None,
                                      None, number, source))
        return
    error = WorkerDied(f"the worker process died ({how}) while {stage} processed this event, "
                       "after a worker had died on its batch: a poison event")
    result.failures.append((stage, error, number))
    reason = f"timeout in {stage}" if stuck else f"worker died ({how})"
    result.dead.append(DeadLetter(text, reason, stage, str(error), number, source,
                                  *origin(stage)))


def _extend(total: BatchResult, part: BatchResult) -> None:
    """Add ``part`` (a later line's outcome) to ``total``, field by field."""
    for item in fields(total):
        mine, theirs = getattr(total, item.name), getattr(part, item.name)
        if isinstance(mine, (Counter, list)):
            mine += theirs
        elif isinstance(mine, (set, dict)):
            mine.update(theirs)
        elif isinstance(mine, int):
            setattr(total, item.name, mine + theirs)


def _exit_status(code: int | None) -> str:
    """``exit status 3``, ``killed by SIGKILL``."""
    if code is None:
        return "still running"
    if code == STUCK_EXIT:
        return "a stage ran past the time limit and could not be interrupted"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


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
        _require_entry_points(pipeline, "process")
        self.count = max(1, workers or os.cpu_count() or 1)
        self.workers: list[_Worker] = []
        self.quarantined: list[str] = []
        self.spec: dict[str, Any] = {}

    def results(self, source: Source, offset: int, line: int
                ) -> Iterator[tuple[int, int, BatchResult]]:
        if not source.resumable:
            raise ExecutorError(f"the process executor has each worker read the input itself; "
                                f"{source.name!r} cannot be read again (stdin, or a source "
                                "that is not resumable): use --executor inline for it")
        self.spec = {
            "config": self.config.as_dict(),
            "versions": {r.name: r.version for r in self.pipeline.plugins.loaded()},
            "scoped_flags": self.pipeline.flags.scopes(),
            "db": self.db, "source": source.name, "offset": offset, "line": line,
            "parent": os.getpid(), "stages": _stage_names(self.pipeline),
            "logging": _logging.current(),  # a spawned worker logs as its parent does
        }
        self.end = (offset, line)  # where the last batch merged ends
        self.poison: dict[int, dict[int, tuple[str | None, str]]] = {}
        self.deaths: dict[int, int] = {}
        self.workers = [self._start(index, 0) for index in range(self.count)]
        yield from self._merged()
        self.close()

    def _start(self, index: int, number: int, *, careful: bool = False) -> _Worker:
        """Worker ``index``, from batch ``number`` (which starts at ``self.end``) on; with
        ``careful``, that batch one event at a time under watch."""
        context: Any = multiprocessing.get_context(_start_method())
        reader, writer = context.Pipe(duplex=False)
        commands, watch = context.SimpleQueue(), context.RawArray("q", 2)
        watch[0] = _STARTING
        spec = {**self.spec, "offset": self.end[0], "line": self.end[1], "first": number,
                "careful": careful, "poison": self.poison.get(number, {}),
                "quarantined": list(self.quarantined)}
        process = context.Process(target=_worker_process, daemon=True,
                                  name=f"hookline-worker-{index}",
                                  args=(index, self.count, spec, writer, commands, watch))
        process.start()
        writer.close()  # the worker's end: closed here, so only the worker writes to it
        return _Worker(process, _Channel(reader), commands, watch, number, careful)

    def _merged(self) -> Iterator[tuple[int, int, BatchResult]]:
        """Every worker reads every batch of the source and sends one part of each, in order,
        then "done": batch after batch, one part from each worker in turn, merged."""
        for number in itertools.count():
            parts, done = [], 0
            for index in range(self.count):
                message = self._receive(index, number)
                if message[0] == "done":
                    done += 1
                    continue
                _, _, sent, end_offset, end_line, part = message
                if sent != number:  # pragma: no cover - every worker sees the same batches
                    raise ExecutorError(f"worker {index} sent batch {sent}, not {number}")
                add_measures(self.pipeline, part)  # the batch comes with its timings
                parts.append((end_offset, end_line, part))
            if done == self.count:
                return
            if done:  # pragma: no cover - every worker sees the same batches
                raise ExecutorError(f"{done} worker(s) finished before batch {number}")
            self.end = parts[0][0], parts[0][1]
            yield parts[0][0], parts[0][1], combine([p for _, _, p in parts])

    def _receive(self, index: int, number: int) -> tuple[Any, ...]:
        """Worker ``index``'s part of batch ``number``, or "done"; its failure raised here.
        A worker that died is replaced, and the batch it did not send is done again."""
        from ..errors import RunAborted

        while True:
            worker = self.workers[index]
            message: tuple[Any, ...] | None = worker.channel.get(worker.process)
            if message is None:
                self.workers[index] = self._replace(index, number)
                continue
            kind = message[0]
            if kind == "error":
                raise ExecutorError(f"worker {message[1]} failed: {message[2]}")
            if kind == "abort":
                _, _, stage, error, line = message
                raise RunAborted(stage, RemoteError("error", error), line)
            return message

    def _replace(self, index: int, number: int) -> _Worker:
        """A new worker ``index`` for the batch ``number`` that the dead one did not send.

        The new worker does that batch again one event at a time, noting the line it is on
        and the stage running. If it dies too, during an event, that event is a poison event:
        the next worker dead-letters it (``worker died``, with the stage) and goes on.
        """
        dead = self.workers[index]
        dead.process.join(timeout=5)
        how = _exit_status(dead.process.exitcode)
        line, stage = int(dead.watch[0]), int(dead.watch[1])
        dead.close()
        if dead.careful and dead.first == number and line > 0:
            name = self.spec["stages"][stage - 1] if stage else None
            self.poison.setdefault(number, {})[line] = (name, how)
            log.warning("worker %d died (%s) on input line %d, in %s, twice: dead-lettered as "
                        "a poison event", index, how, line, name or "no stage")
        else:
            when = "while starting" if line == _STARTING else f"during batch {number}"
            self.deaths[number] = self.deaths.get(number, 0) + 1
            if self.deaths[number] > _RETRIES:
                raise ExecutorError(
                    f"worker {index} died {self.deaths[number]} times {when}, outside any event "
                    f"(last: {how})" + (": a plugin's import or settings end the process"
                                        if line == _STARTING else ""))
            log.warning("worker %d died (%s) %s: replaced; the batch is done again, one event "
                        "at a time", index, how, when)
        return self._start(index, number, careful=True)

    def quarantine(self, stage: str) -> None:
        """Quarantine ``stage`` here (the report) and in every worker, from the next batch each
        starts: a worker may be a few batches ahead of the commits, so the stage can run on
        more events than inline before it is taken out."""
        super().quarantine(stage)
        self.quarantined.append(stage)
        for worker in self.workers:
            worker.commands.put(stage)

    def close(self) -> None:
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.terminate()
        for worker in self.workers:
            worker.process.join(timeout=2)
            if worker.process.is_alive():  # a plugin that ignores SIGTERM
                worker.process.kill()
                worker.process.join(timeout=2)
            worker.close()
        self.workers = []


class _Worker:
    """One worker process as the parent sees it."""

    def __init__(self, process: Any, channel: _Channel, commands: Any, watch: Any,
                 first: int, careful: bool) -> None:
        self.process, self.channel, self.commands, self.watch = process, channel, commands, watch
        #: The batch it started with, and whether it does that one one event at a time.
        self.first, self.careful = first, careful

    def close(self) -> None:
        self.channel.close()
        self.commands.close()


class _Channel:
    """The parent's end of a worker's pipe, read without ever blocking on a message half
    written: a worker killed while writing one leaves it incomplete, and it goes with it."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.fd = reader.fileno()
        os.set_blocking(self.fd, False)
        if sys.platform.startswith("linux"):  # room for a batch: fewer wake-ups
            try:
                import fcntl

                fcntl.fcntl(self.fd, 1031, 1 << 20)  # F_SETPIPE_SZ
            except OSError:
                pass
        self.buffer = bytearray()

    def get(self, process: Any) -> Any:
        """The next message, or None once ``process`` is dead and nothing more came."""
        while True:
            if len(self.buffer) >= _HEADER.size:
                end = _HEADER.size + _HEADER.unpack_from(self.buffer)[0]
                if len(self.buffer) >= end:
                    message = pickle.loads(self.buffer[_HEADER.size:end])
                    del self.buffer[:end]
                    return message
            alive = process.is_alive()  # before reading: what a dead worker wrote is there
            try:
                chunk = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                chunk = None
            if chunk:
                self.buffer += chunk
            elif chunk == b"" or not alive:
                return None
            else:
                wait([self.reader, process.sentinel], timeout=1.0)

    def close(self) -> None:
        self.reader.close()
