"""``hookline replay``: run the dead letters of a database through the current plugins.

After a plugin is fixed or a blocking rule relaxed, the events it refused can be given a
second chance. Each replayed dead letter is removed, and its new outcome written in its
place, in one transaction per batch: accepted into ``events`` (and the aggregates), dropped,
or dead-lettered again with the new reason, the letter's replay count one higher. Running
replay twice replays what is still dead.

State is kept once per letter: the stages' state changes of a letter's first replay are
committed with it; those of a letter replayed before (its count above 0) are thrown away, so
replaying twice never counts an event twice.

A replay may be narrowed to some letters (:class:`~hookline.sinks.LetterFilter`: a stage, a
reason, a run; and a limit). A letter whose event is stored by now (a duplicate) is deleted
and counted, not written again, unless ``duplicates="dead-letter"``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from ._batch import Stored, complete, dedupe, origin_of, process_batch, set_aside_duplicates
from ._pipeline import Pipeline
from ._sources import Batch, FileSource
from ._state import changes, discard, load
from .errors import DatabaseError
from .sinks import LetterFilter, Sink, SinkBatch, StoredDeadLetter, mask_url, sink_class

__all__ = ["ReplayReport", "replay"]

log = logging.getLogger("hookline.replay")


@dataclass
class ReplayReport:
    """What became of the replayed dead letters: the counts add up to ``replayed``."""

    replayed: int = 0
    accepted: int = 0
    dropped: int = 0
    dead_again: int = 0
    #: Letters whose event is stored by now: deleted (with ``duplicates="count"``).
    duplicates: int = 0

    def format(self) -> str:
        return (f"replayed {self.replayed:,} dead letters: {self.accepted:,} accepted, "
                f"{self.dropped:,} dropped, {self.dead_again:,} dead again"
                + (f", {self.duplicates:,} duplicates (stored already: deleted)"
                   if self.duplicates else ""))


def _letters(sink: Sink, size: int, where: LetterFilter | None, limit: int | None
             ) -> Iterator[list[StoredDeadLetter]]:
    """The dead letters to replay, a page at a time: all of them, or those ``where`` selects,
    at most ``limit`` (each page of ``size`` at most)."""
    after = left = 0
    while limit is None or left < limit:
        page = size if limit is None else min(size, limit - left)
        if where or limit is not None:
            rows = [StoredDeadLetter(found.id, found.payload, found.line, found.source,
                                     found.replays, found.event_id)
                    for found in sink.find_dead_letters(where or LetterFilter(),
                                                        after_id=after, limit=page)]
        else:
            rows = sink.dead_letters(after, page)
        if not rows:
            return
        after = rows[-1].id
        left += len(rows)
        yield rows


def _batches(sink: Sink, size: int, last_id: int, where: LetterFilter | None = None,
             limit: int | None = None
             ) -> Iterator[tuple[list[tuple[int, int | None, int]], Batch, set[str]]]:
    """``(letters, batch, own ids)``: ``(id, line, replays)`` of each letter, a batch whose
    line numbers are the letters' places in that list, and the event ids the letters carry.
    One batch per original source keeps every dead letter's source name, and per first or
    later replay, whose state is thrown away."""
    for page in _letters(sink, size, where, limit):
        rows = [row for row in page if row.id <= last_id]
        if not rows:
            return
        for source in dict.fromkeys(row.source for row in rows):
            for again in (True, False):
                mine = [row for row in rows if row.source == source and (row.replays > 0) == again]
                if mine:
                    lines = [(at, row.payload.encode()) for at, row in enumerate(mine)]
                    yield ([(row.id, row.line, row.replays) for row in mine],
                           Batch(FileSource.named(source or "replay"), lines, 0, 0),
                           {row.event_id for row in mine if row.event_id is not None})


def replay(db: str, pipeline: Pipeline, *, batch_size: int = 5000,
           where: LetterFilter | None = None, limit: int | None = None,
           duplicates: str = "count") -> ReplayReport:
    """Re-run the dead letters of the database at the URL ``db`` through ``pipeline``: every
    one, or those ``where`` selects, at most ``limit``. ``duplicates``: ``count`` deletes a
    letter whose event is stored by now; ``dead-letter`` writes it again as a duplicate.

    Raises :class:`~hookline.errors.DatabaseError` when there is no database at ``db`` or
    it cannot be used (:class:`~hookline.errors.UsageError` for a ``--db`` no sink handles).
    """
    sink_type = sink_class(db, pipeline)
    if not sink_type.exists(db):
        raise DatabaseError(mask_url(db), "no database there",
                            "give the --db of a run (hookline run writes one)")
    with sink_type.errors(db):
        return _replay(sink_type(db, pipeline.event_class, run_id="replay"), pipeline,
                       batch_size, where, limit, duplicates == "count")


def _replay(sink: Sink, pipeline: Pipeline, batch_size: int, where: LetterFilter | None,
            limit: int | None, count_duplicates: bool) -> ReplayReport:
    report = ReplayReport()
    origin = origin_of(pipeline)
    stateful = pipeline.stages()  # stateful stages decide with what the runs committed
    try:
        sink.lock_writer(on_wait=lambda message: log.warning("hookline: %s", message))
        load(stateful, sink.load_state(stateful))
        last_id = sink.last_dead_letter_id()  # letters this replay writes are not replayed
        for letters, batch, own in _batches(sink, batch_size, last_id, where, limit):
            result = complete(pipeline, process_batch(pipeline, batch, origin,
                                                      _stored(sink, own)), sink.rows)
            dedupe(sink, result, pipeline)
            duplicated = set_aside_duplicates(result) if count_duplicates else 0
            for letter in result.dead:  # back to the letter's own line; one replay more
                _, line, replays = letters[letter.line or 0]
                letter.line, letter.replays = line, replays + 1
            if letters[0][2] > 0:  # replayed before: its state changes were kept then
                discard(stateful, sink.load_state(stateful))
            sink.commit(SinkBatch(result.rows, result.dead, None, changes(stateful),
                                  replayed=[letter_id for letter_id, _, _ in letters],
                                  aggregations=result.aggregations))
            report.replayed += len(letters)
            report.accepted += len(result.rows)
            report.dropped += result.dropped
            report.dead_again += len(result.dead)
            report.duplicates += duplicated
    finally:
        sink.close()
    return report


def _stored(sink: Sink, own: set[str]) -> Stored:
    """Which event ids a replayed batch is to take for duplicates: stored in ``events``, or
    on a dead letter a stage wrote, except the batch's own letters (a letter is not its own
    duplicate; a duplicate's letter, which carries no id, is found so)."""

    def stored(ids: list[str]) -> set[str]:
        return sink.existing_ids(ids) | (sink.seen_ids(ids) - own)

    return stored
