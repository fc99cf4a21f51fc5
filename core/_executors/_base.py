"""``Executor``, the base every executor implements: a source's batches in, results out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._batch import BatchResult
    from .._pipeline import Pipeline
    from .._sources import Source
    from ..config import Config

__all__ = ["Executor"]


class Executor(ABC):
    """Turns a source, from a checkpoint on, into processed batches."""

    def __init__(self, pipeline: Pipeline, config: Config, db: str) -> None:
        self.pipeline = pipeline
        self.config = config
        self.db = db

    @abstractmethod
    def results(self, source: Source, offset: int, line: int
                ) -> Iterator[tuple[int, int, BatchResult]]:
        """``(end offset, end line, result)`` for each batch after ``offset``/``line``."""

    def quarantine(self, stage: str) -> None:
        """Take ``stage`` out of the batches not yet processed (the circuit breaker tripped)."""
        self.pipeline.quarantine(stage)

    def describe(self) -> dict[str, Any]:
        """What the report and the progress line say about where the batches ran, beside the
        executor's name (the Dask executor: scheduler, workers, events per worker)."""
        return {}

    def close(self) -> None:  # noqa: B027 - most executors hold nothing to release
        """Release workers; called once when the run ends, normally or not."""
