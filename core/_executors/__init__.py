"""Executors: how a source's batches are processed. The run loop commits what they yield.

``inline`` (the default) processes each batch in the calling process. ``process`` partitions
the input by ``user_id`` among worker processes (see ``executors.process``); ``dask`` among
the workers of a Dask cluster (see ``executors.dask``). Every executor
yields, for consecutive parts of a source, ``(end offset, end line, BatchResult)``; the run
loop writes each in one transaction with the checkpoint, whatever produced it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._base import Executor

if TYPE_CHECKING:
    from .._batch import BatchResult, Stored
    from .._pipeline import Pipeline
    from .._sources import Source
    from ..config import Config

__all__ = ["EXECUTORS", "Executor", "InlineExecutor", "make_executor"]

EXECUTORS = ("inline", "process", "dask")


class InlineExecutor(Executor):
    """Processes every batch in this process, with the run's own pipeline."""

    def __init__(self, pipeline: Pipeline, config: Config, db: str,
                 state: dict[str, dict[str, Any]], stored: Stored | None = None) -> None:
        super().__init__(pipeline, config, db)
        from .._state import load

        self.stateful = pipeline.stages()
        load(self.stateful, state)
        #: Which event ids the database holds (each batch is committed before the next).
        self.stored = stored

    def results(self, source: Source, offset: int, line: int
                ) -> Iterator[tuple[int, int, BatchResult]]:
        from .._batch import complete, origin_of, process_batch
        from .._state import changes
        from ..sinks import Rows

        origin, rows = origin_of(self.pipeline), Rows(self.pipeline.event_class)
        for batch in source.batches(self.config.batch_size, offset=offset, line=line):
            result = complete(self.pipeline,
                              process_batch(self.pipeline, batch, origin, self.stored), rows)
            result.state = changes(self.stateful)
            yield batch.end_offset, batch.end_line, result


def make_executor(name: str, pipeline: Pipeline, config: Config, db: str, *,
                  workers: int | None, state: dict[str, dict[str, Any]],
                  stored: Stored | None = None, scheduler: str | None = None) -> Executor:
    """The executor called ``name`` (``inline``, ``process`` or ``dask``; ``scheduler``: the
    Dask scheduler's address, None for a local cluster of ``workers`` processes).
    ``stored(ids)``: which event ids the database holds (a process worker asks the database
    itself, through the sink's read-only view: ``hookline.sinks.open_reader(db)``)."""
    if name == "inline":
        return InlineExecutor(pipeline, config, db, state, stored)
    if name == "process":
        from .process import ProcessExecutor

        return ProcessExecutor(pipeline, config, db, workers=workers)
    if name == "dask":
        from .dask import DaskExecutor

        return DaskExecutor(pipeline, config, db, workers=workers, scheduler=scheduler,
                            state=state, stored=stored)
    raise ValueError(f"unknown executor {name!r}; use one of {', '.join(EXECUTORS)}")
