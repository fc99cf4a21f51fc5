"""One partition's share of a processed batch, in the compact form that crosses processes.

A worker (a Dask worker, or the child process that redoes a batch one event at a time)
processes its partition of a batch and sends back a :class:`Part`: the rows of ``events``,
the dead letters and ``agg_by_user``'s rows in :mod:`marshal`'s format (plain values only,
several times quicker to write and read than pickle's), the plugins' aggregation partials,
the counts, the failures (as :class:`~hookline.errors.RemoteError`: a plugin's exception may
not pickle), the stage state changes, and what the run reports about the work (the stage
latencies sampled, what ``timed()`` measured, the flag decisions). :func:`combine` merges the
parts of one batch, from every partition, in input order: what the run loop commits is what
an inline run would have committed.
"""

from __future__ import annotations

import heapq
import marshal
import pickle
import sys
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ..errors import RemoteError
from ..sinks import DeadLetter

if TYPE_CHECKING:
    from .._batch import BatchResult
    from .._pipeline import Pipeline
    from ..metrics import Histogram

__all__ = ["Part", "add_measures", "combine", "decode_lines", "encode_lines", "pack",
           "stored_ids", "take_measures"]

#: A dead letter travels as the tuple of its fields (dataclasses.astuple deep-copies: slow).
_DEAD_FIELDS = tuple(f.name for f in fields(DeadLetter))
_LINE = _DEAD_FIELDS.index("line")


@dataclass
class Part:
    """What one partition's work on one batch produced (see the module's docstring)."""

    #: marshal of (accepted lines, rows, dead letters as tuples, agg_by_user rows)
    bulk: bytes
    aggregations: list[Any]
    dropped: int
    rejected_by: dict[str, int]
    dropped_by: dict[str, int]
    dropped_lines: list[tuple[int, str]]
    failures: list[tuple[str, RemoteError, int]]
    #: (stage, key, JSON text or None: deleted)
    state: list[tuple[str, str, str | None]]
    #: The event ids whose events the stages saw and the database will hold once this is
    #: committed (accepted, or dead-lettered by a stage): later duplicates are set aside.
    ids: list[str]
    #: Accepted events' ids that were not looked up before the stages (a stage changed them):
    #: the run loop's last duplicate check asks the database about these.
    unchecked: list[str] = field(default_factory=list)
    #: Where the work was done (a worker's address) and how many input lines it took.
    worker: str = ""
    lines: int = 0
    #: Which run of a link made it (Dask): the state after it, as a worker may hold it live.
    token: str = ""
    #: Sampled stage latencies: stage -> {bucket: packed count and time} (non-empty buckets).
    latency: dict[str, dict[int, int]] = field(default_factory=dict)
    #: The same for each phase (``Stats.phases``).
    phase_latency: dict[str, dict[int, int]] = field(default_factory=dict)
    #: What ``timed()`` behaviours measured meanwhile (a ``hookline.metrics.Metrics``).
    timed: Any = None
    #: Flag decisions: flag -> [off, on].
    evaluations: dict[str, list[int]] = field(default_factory=dict)


def encode_lines(lines: list[tuple[int, bytes]]) -> bytes:
    """A batch's ``(line number, raw bytes)`` pairs as one string of bytes: marshal's format,
    or pickle's when a line is a :class:`~hookline._limits.CutLine` (a bytes subclass that
    carries its reason, which marshal cannot write)."""
    try:
        return b"m" + marshal.dumps(lines)
    except ValueError:
        return b"p" + pickle.dumps(lines, protocol=pickle.HIGHEST_PROTOCOL)


def decode_lines(data: bytes) -> list[tuple[int, bytes]]:
    """The pairs :func:`encode_lines` wrote."""
    kind, body = data[:1], data[1:]
    lines: list[tuple[int, bytes]] = marshal.loads(body) if kind == b"m" else pickle.loads(body)
    return lines


def stored_ids(result: BatchResult) -> list[str]:
    """The ids of the events ``result`` stores: accepted, or dead-lettered by a stage."""
    ids = [event.event_id for event in result.accepted]
    ids += [letter.event_id for letter in result.dead if letter.event_id is not None]
    return ids


def pack(result: BatchResult, state: list[tuple[str, str, str | None]]) -> Part:
    """The compact form of a completed batch result (:func:`hookline._batch.complete`)."""
    by_user, *added = result.aggregations  # complete() puts agg_by_user's first
    bulk = marshal.dumps((result.accepted_lines, result.rows,
                          [tuple(map(vars(letter).__getitem__, _DEAD_FIELDS))
                           for letter in result.dead], by_user.rows()))
    return Part(
        bulk=bulk, aggregations=added, dropped=result.dropped,
        rejected_by=dict(result.rejected_by), dropped_by=dict(result.dropped_by),
        dropped_lines=result.dropped_lines,
        failures=[(stage, RemoteError(type(error).__name__, str(error)), line)
                  for stage, error, line in result.failures],
        state=state, ids=stored_ids(result),
        unchecked=[event.event_id for event in result.accepted
                   if event.event_id not in result.checked])


def take_measures(pipeline: Pipeline, part: Part) -> None:
    """Move what this process measured since the last call into ``part`` (and start again
    from zero): the sampled stage latencies, what ``timed()`` recorded, the flag decisions."""
    for name, stats in pipeline.stats.stages.items():
        bins = stats.latency.bins
        if any(bins):
            part.latency[name] = {index: value for index, value in enumerate(bins) if value}
            stats.latency.reset()
    for name, latency in pipeline.stats.phases.items():
        if any(latency.bins):
            part.phase_latency[name] = {index: value for index, value in enumerate(latency.bins)
                                        if value}
            latency.reset()
    behaviors = sys.modules.get("hookline.behaviors")
    if behaviors is not None and behaviors.DEFAULT_METRICS.names():
        from ..metrics import Metrics

        taken = Metrics()
        taken.merge(behaviors.DEFAULT_METRICS)
        behaviors.DEFAULT_METRICS.reset()
        part.timed = taken
    if pipeline.flags.evaluations:
        part.evaluations = {name: list(counts)
                            for name, counts in pipeline.flags.evaluations.items()}
        pipeline.flags.evaluations.clear()


def add_measures(pipeline: Pipeline, part: Part) -> None:
    """Add what a worker measured (:func:`take_measures`) to this process's figures: the
    report and ``--metrics-file`` then show the whole run's."""
    for name, buckets in part.latency.items():
        _add_bins(pipeline.stats.stage(name).latency, buckets)
    for name, buckets in part.phase_latency.items():
        _add_bins(pipeline.stats.phase(name), buckets)
    if part.timed is not None:
        from ..behaviors import DEFAULT_METRICS

        DEFAULT_METRICS.merge(part.timed)
    for name, (off, on) in part.evaluations.items():
        counts = pipeline.flags.evaluations.setdefault(name, [0, 0])
        counts[0] += off
        counts[1] += on


def _add_bins(histogram: Histogram, buckets: dict[int, int]) -> None:
    for index, value in buckets.items():
        histogram.bins[index] += value


def combine(parts: list[Part]) -> BatchResult:
    """One batch's parts, from every partition, merged in input order."""
    from .._batch import BatchResult
    from ..aggregates import ByUser, Collected, merged

    result = BatchResult()
    bulks = [marshal.loads(part.bulk) for part in parts]
    by_line: dict[int, tuple[Any, ...]] = {}  # every partition's rows, in input order
    for lines, rows, _, _ in bulks:
        by_line.update(zip(lines, rows))
    result.accepted_lines = sorted(by_line)
    result.rows = [by_line[line] for line in result.accepted_lines]
    by_user = Collected(ByUser, [row for *_, user_rows in bulks for row in user_rows])
    result.aggregations = [by_user, *merged([part.aggregations for part in parts])]
    result.dead = [DeadLetter(*letter) for letter in heapq.merge(
        *(dead for _, _, dead, _ in bulks), key=lambda letter: letter[_LINE] or 0)]
    result.failures = list(heapq.merge(*(part.failures for part in parts),
                                       key=lambda failure: failure[2]))
    for part in parts:
        result.dropped += part.dropped
        result.rejected_by.update(part.rejected_by)
        result.dropped_by.update(part.dropped_by)
        result.dropped_lines.extend(part.dropped_lines)
        result.state.extend(part.state)
    result.dropped_lines.sort()
    return result
