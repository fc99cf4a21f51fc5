"""``hookline replay``: run the dead letters of a database through the current plugins.

After a plugin is fixed or a blocking rule relaxed, the events it refused can be given a
second chance. Each replayed dead letter is removed, and its new outcome written in its
place, in one transaction per batch: accepted into ``events`` (and the aggregates), dropped,
or dead-lettered again with the new reason, the letter's replay count one higher. Running
replay twice replays what is still dead.

State is kept once per letter: the stages' state changes of a letter's first replay are
committed with it; those of a letter replayed before (its count above 0) are thrown away, so
replaying twice never counts an event twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from ._batch import complete, dedupe, origin_of, process_batch
from ._pipeline import Pipeline
from ._sinks.sqlite import SQLiteSink
from ._sources import Batch, Source
from ._state import changes, discard, load

__all__ = ["ReplayReport", "replay"]

log = logging.getLogger("hookline.replay")


@dataclass
class ReplayReport:
    """What became of the replayed dead letters: the counts add up to ``replayed``."""

    replayed: int = 0
    accepted: int = 0
    dropped: int = 0
    dead_again: int = 0

    def format(self) -> str:
        return (f"replayed {self.replayed:,} dead letters: {self.accepted:,} accepted, "
                f"{self.dropped:,} dropped, {self.dead_again:,} dead again")


def _batches(sink: SQLiteSink, size: int, last_id: int
             ) -> Iterator[tuple[list[tuple[int, int | None, int]], Batch]]:
    """``(letters, batch)``: ``(id, line, replays)`` of each letter, and a batch whose line
    numbers are the letters' places in that list. One batch per original source keeps every
    dead letter's source name, and per first or later replay, whose state is thrown away."""
    after = 0
    while True:
        rows = [row for row in sink.dead_letters(after, size) if row[0] <= last_id]
        if not rows:
            return
        after = rows[-1][0]
        for source in dict.fromkeys(row[3] for row in rows):
            for again in (True, False):
                mine = [row for row in rows if row[3] == source and (row[4] > 0) == again]
                if mine:
                    lines = [(at, payload.encode()) for at, (_, payload, *_) in enumerate(mine)]
                    yield ([(row[0], row[2], row[4]) for row in mine],
                           Batch(Source.named(source or "replay"), lines, 0, 0))


def replay(db: str, pipeline: Pipeline, *, batch_size: int = 5000) -> ReplayReport:
    """Re-run every dead letter of ``db`` through ``pipeline``."""
    report = ReplayReport()
    sink = SQLiteSink(db, pipeline.event_class, run_id="replay")
    origin = origin_of(pipeline)
    stateful = pipeline.stages()  # stateful stages decide with what the runs committed
    try:
        sink.lock_writer(on_wait=lambda message: log.warning("hookline: %s", message))
        load(stateful, sink.load_state(stateful))
        last = sink.connection.execute("SELECT coalesce(max(id), 0) FROM dead_letters")
        last_id = last.fetchone()[0]  # letters written by this replay are not replayed again
        for letters, batch in _batches(sink, batch_size, last_id):
            result = complete(pipeline, process_batch(pipeline, batch, origin,
                                                      sink.existing_ids), sink.rows)
            dedupe(sink, result, pipeline)
            for letter in result.dead:  # back to the letter's own line; one replay more
                _, line, replays = letters[letter.line or 0]
                letter.line, letter.replays = line, replays + 1
            if letters[0][2] > 0:  # replayed before: its state changes were kept then
                discard(stateful, sink.load_state(stateful))
            sink.commit(result.rows, result.dead, None, changes(stateful),
                        replayed=[letter_id for letter_id, _, _ in letters],
                        aggregations=result.aggregations)
            report.replayed += len(letters)
            report.accepted += len(result.rows)
            report.dropped += result.dropped
            report.dead_again += len(result.dead)
    finally:
        sink.close()
    return report
