"""``hookline replay``: run the dead letters of a database through the current plugins.

After a plugin is fixed or a blocking rule relaxed, the events it refused can be given a
second chance. Each replayed dead letter is removed, and its new outcome written in its
place, in one transaction per batch: accepted into ``events`` (and the aggregates), dropped,
or dead-lettered again with the new reason. Running replay twice replays what is still dead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ._batch import complete, dedupe, origin_of, process_batch
from ._pipeline import Pipeline
from ._sinks.sqlite import SQLiteSink
from ._sources import Batch, Source
from ._state import changes, load

__all__ = ["ReplayReport", "replay"]


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


def _batches(sink: SQLiteSink, size: int, last_id: int) -> Iterator[tuple[list[int], Batch]]:
    after = 0
    while True:
        rows = [row for row in sink.dead_letters(after, size) if row[0] <= last_id]
        if not rows:
            return
        after = rows[-1][0]
        # One batch per original source keeps every dead letter's source name.
        for source in dict.fromkeys(row[3] for row in rows):
            mine = [row for row in rows if row[3] == source]
            lines = [(line or 0, payload.encode()) for _, payload, line, _ in mine]
            yield [row[0] for row in mine], Batch(Source.named(source or "replay"), lines, 0, 0)


def replay(db: str, pipeline: Pipeline, *, batch_size: int = 5000) -> ReplayReport:
    """Re-run every dead letter of ``db`` through ``pipeline``."""
    report = ReplayReport()
    sink = SQLiteSink(db, pipeline.event_class, run_id="replay")
    origin = origin_of(pipeline)
    stateful = pipeline.stages()  # stateful stages decide with what the runs committed
    load(stateful, sink.load_state(stateful))
    try:
        last = sink.connection.execute("SELECT coalesce(max(id), 0) FROM dead_letters")
        last_id = last.fetchone()[0]  # letters written by this replay are not replayed again
        for ids, batch in _batches(sink, batch_size, last_id):
            result = complete(pipeline, process_batch(pipeline, batch, origin), sink.rows)
            dedupe(sink, result, pipeline)
            sink.commit(result.rows, result.dead, None, changes(stateful), replayed=ids,
                        aggregations=result.aggregations)
            report.replayed += len(ids)
            report.accepted += len(result.rows)
            report.dropped += result.dropped
            report.dead_again += len(result.dead)
    finally:
        sink.close()
    return report
