"""The Dask executor: a run's batches processed on a Dask cluster, committed here.

``hookline run --executor dask`` connects to the scheduler at ``--scheduler ADDRESS`` (or
``DASK_SCHEDULER_ADDRESS``), or starts a ``distributed.LocalCluster`` of ``--workers N`` worker
processes on 127.0.0.1 and closes it at the end. Dask comes with the ``dask`` extra
(``pip install "hookline[dask]"``); this module imports it only when a run uses it.

What crosses the network: once per run, the run's specification (configuration as a plain
dict, the plugin set, the flags) and the stage state the run starts from; per batch and
partition, the partition's input lines out and its compact results back
(:mod:`hookline._executors._parts`). Plugins are never pickled: every worker builds its own
pipeline from its own installed distributions, and the run stops before it reads any input
when a worker's differ from this process's (:mod:`hookline._executors._dask_worker`).

Same results as inline, by construction. The run reads its input once, here, and cuts it
into batches; each batch is split by ``user_id`` into one partition per worker (as the
process executor splits it). Partition ``p``'s links, one per batch, are a chain of tasks,
each depending on the one before and carrying the stateful stages' state, so a user's events
are processed in input order with the state of all their earlier events. The parts come back
here and are merged and committed in input order, each batch with its checkpoint, as the other
executors do.

Bounded: at most :data:`WINDOW` batches are in flight (sent, not yet committed), so memory here
and on the workers does not grow with the input. Every :data:`ANCHOR_EVERY` batches a
partition's chain starts again from state this process sends (the run's starting state,
already on every worker, and the partition's changes since): the scheduler keeps a task's
definition while a later task depends on it, so an endless chain would keep every batch. The
worker that holds the partition's state live after the link before goes on from it; any
other rebuilds it from what was sent.

Faults. A worker that dies loses nothing: Dask recomputes what it held from the tasks'
inputs. The link a worker was running when it died is done again, one event at a time in a
child process on another worker; an event during which that child dies too is dead-lettered
(reason ``worker died``, with the stage) and the run goes on. hookline's own LocalCluster
lets a task kill one worker (``distributed.scheduler.allowed-failures`` 0); on a cluster of
yours, Dask retries it as often as that setting allows first (3 by default). The run itself
killed with -9 and run again resumes from its last commit. A scheduler that cannot be reached
is an :class:`~hookline.errors.ExecutorError` after :data:`CONNECT_TIMEOUT` seconds.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
import zlib
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ExecutorError, RemoteError, RunAborted, UsageError
from ._base import Executor

if TYPE_CHECKING:
    from .._batch import BatchResult, Stored
    from .._pipeline import Pipeline
    from .._sources import Batch, Source
    from ..config import Config
    from ._parts import Part

__all__ = ["ANCHOR_EVERY", "CONNECT_TIMEOUT", "LOG_LENGTH", "MISSING", "WINDOW", "DaskExecutor",
           "dask_installed"]

log = logging.getLogger("hookline.executor")

#: Batches sent and not yet committed, at most.
WINDOW = 4
#: A partition's chain of tasks starts again from state sent by the run every this many
#: batches (what the scheduler keeps of a chain is bounded by it).
ANCHOR_EVERY = 16
#: Seconds to wait for the scheduler (and, on a cluster of yours, for a first worker).
CONNECT_TIMEOUT = 10.0
#: How many messages Dask's own developer logs keep, per log, while a run is connected (its
#: default, 1000, keeps every message under 1 MB that a comm sent: here the batches' lines,
#: so the memory of the run and of its LocalCluster's scheduler would grow with the input).
LOG_LENGTH = 16
#: Careful redos of one partition's batch (each after a worker died on it) before giving up.
_REDOS = 3
#: What to do without the extra.
MISSING = ('the dask executor needs Dask\'s distributed scheduler: pip install '
           '"hookline[dask]"')
#: The usual layout of a line (event_id, then user_id, no escapes), matched at once; other
#: lines are searched for each field.
_BOTH = re.compile(rb'\{\s*"event_id"\s*:\s*"([^"\\]*)"\s*,\s*"user_id"\s*:\s*"([^"\\]*)"')
_USER_ID = re.compile(rb'"user_id"\s*:\s*"([^"\\]*(?:\\.[^"\\]*)*)"')
_EVENT_ID = re.compile(rb'"event_id"\s*:\s*"([^"\\]*(?:\\.[^"\\]*)*)"')


def dask_installed() -> bool:
    """Whether Dask's ``distributed`` can be imported (it is, then: a run that asks uses it)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def _event_id(found: bytes) -> str | None:
    """The event id a JSON string's body (as found in the raw line) stands for."""
    try:
        text = json.loads(b'"' + found + b'"') if found.find(b"\\") >= 0 else found.decode()
    except ValueError:
        return None
    return text if isinstance(text, str) else None


def _check_address(address: str) -> None:
    """Refuse an address Dask cannot connect to at all (no port, an unknown scheme) before the
    run starts: a client made from one raises a ValueError, then hangs the process's exit."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    try:
        scheme, location = parse_address(address)
        get_backend(scheme)
        if scheme in ("tcp", "tls"):
            parse_host_port(location)
    except ValueError as exc:
        raise UsageError(
            f"{address!r} is not the address of a Dask scheduler ({exc}): give it as "
            "tcp://HOST:PORT, as `dask scheduler` prints it, with --scheduler or "
            "DASK_SCHEDULER_ADDRESS") from None


def _log_here(event: tuple[float, dict[str, Any]]) -> None:
    """A record a link logged on a worker, handled here as if logged here."""
    record = logging.makeLogRecord(event[1])
    logging.getLogger(record.name).handle(record)


@dataclass
class _Piece:
    """One partition's link of one batch, as sent."""

    lines: bytes
    taken: frozenset[str]
    #: At an anchor: the partition's state changes since the run started (else None).
    overlay: dict[str, dict[str, str | None]] | None
    #: At an anchor: the token of the partition's link received before (its state is the
    #: overlay's, and a worker that holds it live goes on from it).
    after: str = ""
    link: Any = None
    part: Any = None
    received: Part | None = None
    redos: int = 0


@dataclass
class _Pending:
    """A batch sent and not yet committed."""

    number: int
    end_offset: int
    end_line: int
    #: The first batch in flight when this one was sent: those from there on may commit ids
    #: that the database did not hold when this batch's were looked up.
    since: int
    pieces: list[_Piece] = field(default_factory=list)


class DaskExecutor(Executor):
    """Runs batches on a Dask cluster, partitioned by ``user_id`` (see the module)."""

    def __init__(self, pipeline: Pipeline, config: Config, db: str, *, workers: int | None,
                 scheduler: str | None, state: dict[str, dict[str, Any]],
                 stored: Stored | None = None) -> None:
        from .process import _require_entry_points

        super().__init__(pipeline, config, db)
        _require_entry_points(pipeline, "dask")
        if not dask_installed():
            raise ExecutorError(MISSING)
        self.address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
        if self.address:
            _check_address(self.address)
        self.count = max(1, workers or os.cpu_count() or 1)
        self.state = state
        self.stored = stored
        self.run_id = uuid.uuid4().hex[:12]
        self.client: Any = None
        self.cluster: Any = None
        self.dashboard: str | None = None
        self.partitions = 0
        self.quarantined: list[str] = []
        self.events_by_worker: Counter[str] = Counter()
        self.base: Any = None
        self.sent = 0  # links sent: each task's key is unique
        self.settings: Any = None  # Dask's configuration for the run, restored by close()

    # -- the cluster ---------------------------------------------------------------------------
    def _start(self) -> None:
        """Connect (or start a LocalCluster), give the workers the run, and check that every
        worker loaded the same plugin set as this process, before any event is sent."""
        import dask
        from distributed import Client, LocalCluster

        from .. import _logging

        # the comms made from here on (the client's; the LocalCluster's scheduler's to each
        # worker, those that join later too) keep few messages for debugging
        self.settings = dask.config.set({"distributed.admin.low-level-log-length": LOG_LENGTH})
        configured = _logging.current()
        if configured is not None:  # the command's rule: other libraries' loggers WARNING
            logging.getLogger("distributed").setLevel(max(configured[0], logging.WARNING))
        if self.address:
            try:
                self.client = Client(  # type: ignore[no-untyped-call]
                    self.address, timeout=CONNECT_TIMEOUT, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ExecutorError(
                    f"cannot reach the Dask scheduler at {self.address} (waited "
                    f"{CONNECT_TIMEOUT:g} s): {exc}. Check the address and that `dask "
                    "scheduler` runs there, or leave out --scheduler (and "
                    "DASK_SCHEDULER_ADDRESS) to run on a local cluster") from None
            try:
                self.client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                raise ExecutorError(
                    f"the Dask scheduler at {self.address} has no worker (waited "
                    f"{CONNECT_TIMEOUT:g} s): start some with `dask worker "
                    f"{self.address}`") from None
        else:
            try:
                with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                    self.cluster = LocalCluster(  # type: ignore[no-untyped-call]
                        n_workers=self.count, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address="127.0.0.1:0",
                        silence_logs=logging.ERROR)
            except Exception as exc:  # a worker process that could not start says why above
                raise ExecutorError(
                    f"the local Dask cluster could not start its {self.count} worker "
                    f"processes ({type(exc).__name__}: {exc}): see the workers' errors "
                    "above") from None
            self.client = Client(  # type: ignore[no-untyped-call]
                self.cluster, set_as_default=False)
            self.address = self.cluster.scheduler_address
        info = self.client.scheduler_info()
        if "dashboard" in info.get("services", {}):
            self.dashboard = self.client.dashboard_link
        self._handshake()
        #: Each partition's worker: its links go there while it lives (the state is there).
        self.homes = sorted(self.client.scheduler_info()["workers"])
        self.partitions = max(1, len(self.homes))
        texts = {stage: {key: json.dumps(value) for key, value in values.items()}
                 for stage, values in self.state.items()}
        [self.base] = self.client.scatter([texts], broadcast=True, hash=False)
        log.info("dask executor: scheduler %s (%s, %d workers)%s", self.address,
                 "LocalCluster" if self.cluster is not None else "your cluster",
                 len(self.homes), f", dashboard {self.dashboard}" if self.dashboard else "",
                 extra={"scheduler": self.address, "dashboard": self.dashboard,
                        "workers": len(self.homes)})
        #: Per partition: its state changes since the run started, and its last link received.
        self.overlays: list[dict[str, dict[str, str | None]]] = [
            {} for _ in range(self.partitions)]
        self.received: list[Any] = [None] * self.partitions
        self.tokens = [""] * self.partitions
        #: The ids stored by batches received and not committed yet, with their batch.
        self.unsettled: dict[str, int] = {}

    def _handshake(self) -> None:
        from .. import _logging
        from ..config import Config
        from . import _dask_worker as remote
        from .process import _stage_names

        config = self.config.as_dict()
        expected = remote.describe(self.pipeline)
        expected["config"] = remote.config_digest(Config.from_dict(config))
        configured = _logging.current()
        spec = {"run_id": self.run_id, "config": config, "expected": expected,
                "scoped_flags": self.pipeline.flags.scopes(),
                "stages": _stage_names(self.pipeline), "window": WINDOW,
                "log_level": configured[0] if configured is not None else None}
        # what the links log on the workers is logged here too (--trace-hooks, -v, warnings)
        self.client.subscribe_topic(remote.log_topic(self.run_id), _log_here)
        self.client.register_plugin(remote.RunPlugin(spec), name=remote.plugin_name(self.run_id))
        answers = self.client.run(remote.handshake, self.run_id)
        problems = []
        for worker, answer in sorted(answers.items()):
            if "error" in answer:
                problems.append(f"worker {worker}: {answer['error']}")
                continue
            differs = remote.difference(worker, answer, expected)
            if differs:
                problems.append(differs)
        if problems:
            raise ExecutorError("the run's plugin set differs on the cluster, nothing was "
                                "processed: " + "; ".join(problems) + ". Install the same "
                                "versions on every worker and here")

    def describe(self) -> dict[str, Any]:
        return {"scheduler": self.address,
                "cluster": "LocalCluster" if self.cluster is not None else "external",
                "dashboard": self.dashboard,
                "workers": (len(self.client.scheduler_info()["workers"])
                            if self.client is not None else 0),
                "events_by_worker": dict(sorted(self.events_by_worker.items()))}

    def close(self) -> None:
        from . import _dask_worker as remote

        client, cluster = self.client, self.cluster
        self.client = self.cluster = None
        if client is not None:
            try:
                client.unsubscribe_topic(remote.log_topic(self.run_id))
                client.unregister_worker_plugin(remote.plugin_name(self.run_id))
            except Exception:  # a worker gone meanwhile: nothing of the run is left there
                log.debug("could not unregister the run's worker plugin", exc_info=True)
            client.close()
        if cluster is not None:
            cluster.close()
        if self.settings is not None:
            self.settings.__exit__(None, None, None)
            self.settings = None

    # -- the batches ---------------------------------------------------------------------------
    def results(self, source: Source, offset: int, line: int
                ) -> Iterator[tuple[int, int, BatchResult]]:
        if self.client is None:
            self._start()
        self.source = source.name
        self.window: deque[_Pending] = deque()
        #: The ids each of the last batches committed, by batch.
        self.committed: dict[int, set[str]] = {}
        for number, batch in enumerate(source.batches(self.config.batch_size, offset=offset,
                                                      line=line)):
            anchor = number % ANCHOR_EVERY == 0
            if anchor:
                for pending in self.window:
                    self._receive(pending)
            self._send(number, batch, anchor)
            while len(self.window) >= WINDOW:
                yield self._next()
        while self.window:
            yield self._next()

    def _split(self, batch: Batch) -> tuple[list[list[tuple[int, bytes]]], list[list[str]]]:
        """The batch's lines by partition (by ``user_id``, else by line number, as the process
        executor splits them), and each partition's event ids as found in the raw lines."""
        count = self.partitions
        lines: list[list[tuple[int, bytes]]] = [[] for _ in range(count)]
        ids: list[list[str]] = [[] for _ in range(count)]
        match, search_user, search_id, crc32 = (_BOTH.match, _USER_ID.search, _EVENT_ID.search,
                                                zlib.crc32)
        for number, raw in batch.lines:
            both = match(raw)
            if both is not None:
                event, user = both.groups()
                at = crc32(user) % count
            else:
                found, event_found = search_user(raw), search_id(raw)
                at = crc32(found.group(1) if found else str(number).encode()) % count
                event = event_found.group(1) if event_found is not None else None
            lines[at].append((number, raw))
            if event is not None:
                event_id = _event_id(event)
                if event_id is not None:
                    ids[at].append(event_id)
        return lines, ids

    def _send(self, number: int, batch: Batch, anchor: bool) -> None:
        """Send a batch's links, one per partition, each after its partition's last."""
        from ._parts import encode_lines

        lines, ids = self._split(batch)
        everything = [event_id for part in ids for event_id in part]
        stored = self.stored(everything) if self.stored is not None and everything else set()
        stored.update(event_id for event_id in everything if event_id in self.unsettled)
        pending = _Pending(number, batch.end_offset, batch.end_line,
                           self.window[0].number if self.window else number)
        previous = self.window[-1] if self.window else None
        for index in range(self.partitions):
            overlay = ({stage: dict(values) for stage, values in self.overlays[index].items()}
                       if anchor else None)
            piece = _Piece(encode_lines(lines[index]),
                           frozenset(stored.intersection(ids[index])), overlay,
                           self.tokens[index] if anchor else "")
            prev = None if anchor else (previous.pieces[index].link if previous is not None
                                        else self.received[index])
            self._submit(number, index, piece, prev)
            pending.pieces.append(piece)
        self.window.append(pending)

    def _submit(self, number: int, index: int, piece: _Piece, prev: Any, *,
                careful: bool = False) -> None:
        from . import _dask_worker as remote

        self.sent += 1
        name = f"{self.run_id}-{self.sent}-{number}-{index}"
        piece.link = self.client.submit(
            remote.link, self.run_id, index, number, piece.lines, self.source, prev, self.base,
            piece.overlay, piece.taken, tuple(self.quarantined), careful, piece.after,
            key=f"hookline-link-{name}", pure=False, priority=-self.sent,
            workers=[self.homes[index]], allow_other_workers=True)
        piece.part = self.client.submit(remote.part_of, piece.link, key=f"hookline-part-{name}",
                                        pure=False, priority=-self.sent)

    def _receive(self, pending: _Pending) -> None:
        """Wait for every part of ``pending`` (in partition order); a link a worker died on
        is done again carefully, with the links after it in its partition."""
        from distributed import KilledWorker

        from ._parts import add_measures

        for index, piece in enumerate(pending.pieces):
            while piece.received is None:
                try:
                    part: Part = piece.part.result()
                except KilledWorker as exc:
                    self._redo(pending, index, exc)
                    continue
                except RunAborted as exc:
                    error = exc.error if isinstance(exc.error, RemoteError) else RemoteError(
                        type(exc.error).__name__, str(exc.error))
                    raise RunAborted(exc.stage, error, exc.line) from None
                except ExecutorError:
                    raise
                except Exception as exc:
                    raise ExecutorError(f"batch {pending.number} (partition {index}) failed on "
                                        f"the cluster: {type(exc).__name__}: {exc}") from None
                piece.received = part
                self.received[index], self.tokens[index] = piece.link, part.token
                piece.link = piece.part = None
                overlay = self.overlays[index]
                for stage, key, text in part.state:
                    overlay.setdefault(stage, {})[key] = text
                for event_id in part.ids:
                    self.unsettled[event_id] = pending.number
                self.events_by_worker[part.worker] += part.lines
                self.homes[index] = part.worker  # another, once a worker died
                add_measures(self.pipeline, part)

    def _redo(self, pending: _Pending, index: int, error: Exception) -> None:
        """Partition ``index``'s link of ``pending`` killed its worker: send it again, to be
        done one event at a time, and the partition's later links after it."""
        piece = pending.pieces[index]
        piece.redos += 1
        if piece.redos > _REDOS:
            raise ExecutorError(f"batch {pending.number} (partition {index}): workers died on "
                                f"it {piece.redos} times even one event at a time ({error})")
        log.warning("hookline: a worker died on batch %d (partition %d): it is done again one "
                    "event at a time", pending.number, index)
        prev = self.received[index] if piece.overlay is None else None
        later = [each for each in self.window if each.number > pending.number]
        for each in [pending, *later]:  # the oldest may be out of the window, being merged
            again = each.pieces[index]
            if each is not pending and again.overlay is not None:
                break  # an anchor: the chain starts again there
            self._submit(each.number, index, again, prev, careful=each is pending)
            prev = again.link

    def _next(self) -> tuple[int, int, BatchResult]:
        """The oldest batch, merged, for the run loop to commit."""
        from ._parts import combine

        pending = self.window.popleft()
        self._receive(pending)
        parts = [piece.received for piece in pending.pieces if piece.received is not None]
        result = combine(parts)
        # The ids were looked up before the batch was sent: the run loop's last duplicate
        # check need not ask the database again, except about ids a stage changed and ids
        # that batches in flight then (another partition's users) committed since.
        ids = {event_id for part in parts for event_id in part.ids}
        checked = ids.difference(*(part.unchecked for part in parts))
        for number in range(pending.since, pending.number):
            checked -= ids.intersection(self.committed.get(number, ()))
        result.checked = checked
        self.committed[pending.number] = ids
        self.committed.pop(pending.number - WINDOW - 1, None)
        for part in parts:  # committed by the time this generator goes on
            for event_id in part.ids:
                if self.unsettled.get(event_id) == pending.number:
                    del self.unsettled[event_id]
        return pending.end_offset, pending.end_line, result

    def quarantine(self, stage: str) -> None:
        """Quarantine ``stage`` here and in the links sent from now on: a few batches are in
        flight, so the stage may run on more events than inline before it is taken out."""
        super().quarantine(stage)
        self.quarantined.append(stage)
