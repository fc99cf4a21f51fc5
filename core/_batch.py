"""The unit of work of a run: one batch of input lines in, what became of each line out.

Every executor calls :func:`process_batch` and :func:`complete` on its batches (in the running
process or in a worker), and the run loop and ``hookline replay`` call :func:`dedupe` before
they commit. This module imports no executor and no run loop: they import it.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import aggregates
from ._limits import parse_json
from ._pipeline import FAIL_RUN
from .errors import (
    Drop,
    EventTampered,
    InputError,
    Interrupted,
    Reject,
    RunAborted,
    StageFailed,
    ValidationError,
)
from .sinks import DeadLetter

if TYPE_CHECKING:
    from ._pipeline import Pipeline
    from ._schema import Event
    from ._sources import Batch
    from .sinks import Rows, Sink

__all__ = ["DEDUPE", "BatchResult", "Recent", "Stored", "aggregate", "complete", "dedupe",
           "origin_of", "process_batch", "set_aside_duplicates"]

#: The stage of the dead letter of a line whose ``event_id`` was stored or seen before.
DEDUPE = "dedupe"


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
    #: (stage, key, JSON text or None: deleted) of the stage state the batch changed.
    state: list[tuple[str, str, str | None]] = field(default_factory=list)
    #: stage -> events it rejected / dropped
    rejected_by: Counter[str] = field(default_factory=Counter)
    dropped_by: Counter[str] = field(default_factory=Counter)
    #: (input line, stage) of every dropped event (the circuit breaker reads who decided).
    dropped_lines: list[tuple[int, str]] = field(default_factory=list)
    #: The event ids checked before the stages ran: not stored, each once in the batch.
    checked: set[str] = field(default_factory=set)
    #: How many dead letters were written before any stage ran (parse, schema, dedupe).
    early: int = 0
    #: The event id of each event the stages ran on, as read, in input order.
    read_ids: list[str] = field(default_factory=list)


def process_batch(pipeline: Pipeline, batch: Batch, origin: Callable[[str], Any],
                  stored: Stored | None = None) -> BatchResult:
    """The per-event loop: parse, validate, set duplicates aside (``stored(ids)``: which of
    them the database holds), run the phases, sort each line into its outcome. The pipeline's
    flags are the ones ``hookline.flags.is_enabled`` reads meanwhile, whoever calls."""
    result = BatchResult()
    name = batch.source.name
    with pipeline.flags.active():
        items = _first_seen(pipeline, batch, result, stored)
        if pipeline.run_phases_async is not None:
            return _sort_async(pipeline, items, result, origin, name)
        plain, probed = pipeline.run_phases, pipeline.run_phases_probed  # of event_class
        sample, boundary = pipeline.stats.sample_every, pipeline.boundary
        with pipeline.watchdog as beat:  # the stage time limit; a real Ctrl-C told apart
            for number, raw, event in items:
                beat[0] = raw
                process = probed if number % sample == 0 else plain
                read = event.__dict__.copy()
                try:
                    event = process(event)
                    problems = boundary(event, read)  # tampering: before any sink sees it
                    if problems:
                        raise pipeline.tampered(problems, raw)
                except BaseException as exc:
                    _sort(pipeline, result, exc, raw, number, name, origin)
                else:
                    result.accepted.append(event)
                    result.accepted_lines.append(number)
    return _finish(result, items)


#: ``stored(event_ids)``: which of the ids the database holds already.
Stored = Callable[[list[str]], "set[str]"]


def _line_of(letter: DeadLetter) -> int:
    return letter.line or 0


def _finish(result: BatchResult, items: Parsed) -> BatchResult:
    """Note the event id read on each letter a stage wrote (a re-delivery of that event is a
    duplicate: its state changes are not made twice); put the letters in line order."""
    if len(result.dead) > result.early:
        read = dict(zip(items.numbers, result.read_ids))
        for letter in result.dead[result.early:]:
            letter.event_id = read.get(letter.line or 0)
        if result.early:  # in line order, as the lines came
            result.dead.sort(key=_line_of)
    return result


class Parsed:
    """The lines of a batch that go on to the stages, iterated as ``(number, raw, event)``:
    three lists rather than a tuple per line (fewer objects for the garbage collector)."""

    __slots__ = ("events", "numbers", "raws")

    def __init__(self, numbers: list[int], raws: list[bytes], events: list[Event]) -> None:
        self.numbers, self.raws, self.events = numbers, raws, events

    def __iter__(self) -> Iterator[tuple[int, bytes, Event]]:
        return zip(self.numbers, self.raws, self.events)

    def __len__(self) -> int:
        return len(self.events)


def _first_seen(pipeline: Pipeline, batch: Batch, result: BatchResult, stored: Stored | None
                ) -> Parsed:
    """Parse and validate the batch's lines, and keep the events that no stage has seen: a
    line that cannot be parsed or validated, or whose ``event_id`` is stored already or came
    earlier in the batch, is dead-lettered here, before any stage runs, so that a duplicate
    changes no stage's state (one query per batch, and a set)."""
    make, name = pipeline.from_dict, batch.source.name
    numbers: list[int] = []
    raws: list[bytes] = []
    events: list[Event] = []
    for number, raw in batch.lines:
        try:
            events.append(make(parse_json(raw)))
        except InputError as exc:
            result.dead.append(DeadLetter(_text(raw), exc.reason, "parse", None, number, name))
        except ValidationError as exc:
            reason = str(exc.at(line=number, source=name))
            result.dead.append(DeadLetter(_text(raw), reason, "schema", None, number, name))
        else:
            numbers.append(number)
            raws.append(raw)
    ids = [event.event_id for event in events]
    taken = stored(ids) if stored is not None and ids else set()
    result.checked = set(ids)
    if not taken and len(result.checked) == len(ids):
        result.early, result.read_ids = len(result.dead), ids
        return Parsed(numbers, raws, events)
    kept = Parsed([], [], [])
    for number, raw, event in zip(numbers, raws, events):
        event_id = event.event_id
        if event_id in taken:
            result.dead.append(DeadLetter(_text(raw), f"duplicate event_id {event_id!r}",
                                          DEDUPE, None, number, name))
        else:
            taken.add(event_id)
            kept.numbers.append(number)
            kept.raws.append(raw)
            kept.events.append(event)
    result.read_ids = [event.event_id for event in kept.events]
    result.checked = set(result.read_ids)
    result.dead.sort(key=_line_of)
    result.early = len(result.dead)
    return kept


def _sort(pipeline: Pipeline, result: BatchResult, error: BaseException, raw: bytes,
          number: int, name: str, origin: Callable[[str], Any]) -> None:
    """Put the line whose stages raised ``error`` into its outcome: rejected, dropped, or a
    stage's failure (anything else a stage raised). A real Ctrl-C goes on out."""
    if isinstance(error, Reject):
        result.rejected_by[error.stage or "?"] += 1
        result.dead.append(DeadLetter(_text(raw), error.reason, error.stage, None, number, name,
                                      *origin(error.stage or "")))
        return
    if isinstance(error, Drop):
        result.dropped_by[error.stage or "?"] += 1
        result.dropped += 1
        result.dropped_lines.append((number, error.stage or "?"))
        return
    if isinstance(error, Interrupted):
        raise error
    if not isinstance(error, StageFailed):  # raised between two stages (the watchdog)
        error = pipeline.failure(error, "?")
    if pipeline.policy(error.stage) == FAIL_RUN:
        raise RunAborted(error.stage, error.error, number) from error.error
    result.failures.append((error.stage, error.error, number))
    result.dead.append(DeadLetter(_text(raw), _failure_reason(error), error.stage,
                                  _short_traceback(error.error), number, name,
                                  *origin(error.stage)))


def _sort_async(pipeline: Pipeline, items: Parsed, result: BatchResult,
                origin: Callable[[str], Any], name: str) -> BatchResult:
    """The per-event loop of a pipeline with async stages: the events run concurrently
    (:func:`_run_async`), then each line is sorted, in input order, as the loop above does."""
    reads = [event.__dict__.copy() for _, _, event in items]
    with pipeline.watchdog as beat:  # also over finding a tamperer: it runs stages again
        outcomes = _run_async(pipeline, [event for _, _, event in items], beat)
        for (number, raw, _), read, outcome in zip(items, reads, outcomes):
            beat[0] = raw
            try:
                if isinstance(outcome, BaseException):
                    raise outcome
                problems = pipeline.boundary(outcome, read)
                if problems:
                    raise pipeline.tampered(problems, raw)
            except BaseException as exc:
                _sort(pipeline, result, exc, raw, number, name, origin)
            else:
                result.accepted.append(outcome)
                result.accepted_lines.append(number)
    return _finish(result, items)


def _run_async(pipeline: Pipeline, events: list[Event], beat: list[Any]) -> list[Any]:
    """Each event's final event, or what its phases raised, in input order.

    The events of one ``user_id`` run one after another, in input order (a stateful stage
    sees them as the sync loop would); different users' events run concurrently on one event
    loop, at most ``pipeline.async_concurrency`` at a time, so their awaits overlap. Each
    event's phases are cancelled after the stage time limit (a :class:`StageTimeout` of the
    stage that was awaiting); a stage blocking the loop itself is the watchdog's (``beat``
    moves while the loop turns).
    """
    process, limit = pipeline.run_phases_async, pipeline.stage_timeout
    assert process is not None
    outcomes: list[Any] = [None] * len(events)
    chains: dict[Any, list[int]] = {}
    for index, event in enumerate(events):
        chains.setdefault(event.__dict__.get("user_id"), []).append(index)
    waiting = deque(chains.values())
    ticked = [0.0]  # when the heartbeat last ran: the loop was not blocked then
    pause = pipeline.watchdog.poll

    async def one(event: Any) -> Any:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        expired = False
        timer: asyncio.TimerHandle | None = None

        def expire() -> None:
            nonlocal expired, timer
            if loop.time() - ticked[0] > pause:  # another stage blocked the loop meanwhile:
                timer = loop.call_later(limit, expire)  # not this one's time
                return
            expired = True
            assert task is not None
            task.cancel()

        if limit:
            timer = loop.call_later(limit, expire)
        try:
            return await process(event)
        except StageFailed as failed:
            if expired and isinstance(failed.error, asyncio.CancelledError):
                raise pipeline.failure(failed.error, failed.stage, timed_out=True) from None
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if expired and hasattr(task, "uncancel"):
                task.uncancel()  # type: ignore[union-attr]

    async def worker() -> None:
        while waiting:
            for index in waiting.popleft():
                try:
                    outcomes[index] = await one(events[index])
                except Interrupted:
                    raise
                except BaseException as exc:
                    outcomes[index] = exc

    async def heartbeat() -> None:
        loop = asyncio.get_running_loop()
        while True:
            beat[0] = object()  # the loop turns: no stage is blocking it
            ticked[0] = loop.time()
            await asyncio.sleep(pause / 2)

    async def run_all() -> None:
        ticking = [asyncio.ensure_future(heartbeat())] if limit else []
        workers = [asyncio.ensure_future(worker())
                   for _ in range(min(pipeline.async_concurrency, len(chains)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in (*ticking, *workers):
                task.cancel()

    if events:
        pipeline._run_async(run_all())
    return outcomes


def _short_traceback(error: BaseException, limit: int = 4) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__,
                                              limit=-limit)).strip()


def _failure_reason(failure: StageFailed) -> str:
    """``timeout after 0.05 s in fraud.velocity`` or ``fraud.velocity raised KeyError: 'x'``."""
    timed_out = getattr(failure.error, "reason", None)
    if isinstance(failure.error, TimeoutError) and isinstance(timed_out, str):
        return f"{timed_out} in {failure.stage}"
    if isinstance(failure.error, EventTampered):
        return f"{failure.stage} tampered with the event: {failure.error}"
    return f"{failure.stage} raised {type(failure.error).__name__}: {failure.error}"


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def origin_of(pipeline: Pipeline) -> Callable[[str], tuple[str | None, str | None, str | None]]:
    """A function naming a stage's plugin, distribution and version (for dead letters)."""
    records = {r.name: r for r in pipeline.plugins.records}

    def origin(stage: str) -> tuple[str | None, str | None, str | None]:
        record = records.get(stage.partition(".")[0])
        return (record.name, record.distribution, record.version) if record else (None,) * 3

    return origin


def complete(pipeline: Pipeline, result: BatchResult, rows: Rows) -> BatchResult:
    """Turn a processed batch into what a sink commits: the accepted events as rows, and
    the partials of the plugins' aggregations."""
    row = rows.row
    result.rows = [row(event) for event in result.accepted]
    result.aggregations = aggregate(pipeline, result.accepted)
    return result


def aggregate(pipeline: Pipeline, events: Iterable[Event]) -> list[Any]:
    """Fresh partials of ``agg_by_user`` and of every aggregation the plugins add, updated
    with ``events``."""
    by_user = aggregates.ByUser()
    partials: list[Any] = [by_user]
    with pipeline.flags.active():  # plugin code, as in process_batch
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


class Recent:
    """``stored`` for a worker that runs ahead of the commits: the ids the database holds,
    and those of the worker's last ``depth`` batches (not committed yet, perhaps)."""

    def __init__(self, lookup: Stored, depth: int) -> None:
        self.lookup = lookup
        self.batches: deque[set[str]] = deque(maxlen=depth)

    def __call__(self, event_ids: list[str]) -> set[str]:
        found = self.lookup(event_ids)
        for accepted in self.batches:
            found.update(accepted.intersection(event_ids))
        return found

    def processed(self, result: BatchResult) -> None:
        """Remember the ids of the events ``result`` stores: accepted, or dead-lettered by a
        stage (as the database will once it is committed)."""
        ids = {event.event_id for event in result.accepted}
        ids.update(letter.event_id for letter in result.dead if letter.event_id is not None)
        self.batches.append(ids)


def dedupe(sink: Sink, result: BatchResult, pipeline: Pipeline) -> None:
    """The last check before a commit: refuse accepted event ids already stored or repeated
    within the batch (dead-lettered).

    Duplicates are set aside before any stage runs (:func:`process_batch`); this catches what
    that cannot see: ids a stage changed, or one id in two workers' partitions. Ids checked
    before the stages (``result.checked``, inline) are not looked up again.
    """
    at = sink.rows.id_index
    ids = [row[at] for row in result.rows]
    checked = result.checked
    if checked and checked.issuperset(ids):  # inline: every id was looked up already
        unknown: list[str] = []
    else:
        unknown = [event_id for event_id in ids if event_id not in checked]
    stored = sink.existing_ids(unknown) if unknown else set()
    if not stored and len(set(ids)) == len(ids):
        return
    seen: set[str] = set()
    kept: list[tuple[Any, ...]] = []
    lines: list[int] = []
    for row, line in zip(result.rows, result.accepted_lines):
        event_id = row[at]
        if event_id in stored or event_id in seen:
            result.dead.append(DeadLetter(sink.rows.json_line(row),
                                          f"duplicate event_id {event_id!r}", DEDUPE, None,
                                          line))
        else:
            seen.add(event_id)
            kept.append(row)
            lines.append(line)
    result.rows, result.accepted_lines = kept, lines
    if result.aggregations:  # rare: aggregate the kept events again, from their rows
        result.aggregations = aggregate(pipeline, (
            pipeline.make_event(json.loads(sink.rows.json_line(row))) for row in kept))


def set_aside_duplicates(result: BatchResult) -> int:
    """Take the duplicates out of ``result``'s dead letters (those :func:`process_batch` and
    :func:`dedupe` wrote, stage ``dedupe``) and return how many there were: a run that counts
    duplicates rather than storing them (``--duplicates count``, the default) commits the
    rest. A duplicate's event is stored already, so nothing is lost."""
    dead = result.dead
    kept = [letter for letter in dead if letter.stage != DEDUPE]
    if len(kept) == len(dead):
        return 0
    result.dead = kept
    return len(dead) - len(kept)
