"""The unit of work of a run: one batch of input lines in, what became of each line out.

Every executor calls :func:`process_batch` and :func:`complete` on its batches (in the running
process or in a worker), and the run loop and ``hookline replay`` call :func:`dedupe` before
they commit. This module imports no executor and no run loop: they import it.
"""

from __future__ import annotations

import json
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import aggregates
from ._limits import parse_json
from ._pipeline import FAIL_RUN
from ._sinks.sqlite import DeadLetter
from .errors import Drop, InputError, Reject, RunAborted, StageFailed, ValidationError

if TYPE_CHECKING:
    from ._pipeline import Pipeline
    from ._schema import Event
    from ._sinks.sqlite import Rows, SQLiteSink
    from ._sources import Batch

__all__ = ["BatchResult", "aggregate", "complete", "dedupe", "origin_of", "process_batch"]


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


def _short_traceback(error: BaseException, limit: int = 4) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__,
                                              limit=-limit)).strip()


def _failure_reason(failure: StageFailed) -> str:
    """``timeout after 0.05 s in fraud.velocity`` or ``fraud.velocity raised KeyError: 'x'``."""
    timed_out = getattr(failure.error, "reason", None)
    if isinstance(failure.error, TimeoutError) and isinstance(timed_out, str):
        return f"{timed_out} in {failure.stage}"
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
