"""The child process that redoes one partition's batch one event at a time, after a Dask
worker died on it: ``python -m hookline._executors._careful JOB OUT WATCH``.

``JOB`` holds the run's configuration, the state the batch starts from, its lines and the
events already found to be poison (pickled by the worker, which started this process);
``WATCH`` is a small file mapped into memory where, before each event, the line it is on is
written, and while a stage runs, that stage's number (as the process executor's workers do):
if this process dies, the worker reads there which event and stage it died in, dead-letters
that event, and starts another child. ``OUT`` receives ``("part", Part)``, or
``("abort", stage, kind, message, line)`` when a stage's error policy stops the run, or
``("error", traceback)``.
"""

from __future__ import annotations

import json
import mmap
import pickle
import sys
import traceback
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]


def main(argv: Sequence[str]) -> int:
    job_path, out_path, watch_path = argv
    with open(job_path, "rb") as handle:
        job: dict[str, Any] = pickle.load(handle)
    try:
        outcome: tuple[Any, ...] = ("part", _redo(job, watch_path))
    except BaseException as exc:
        from ..errors import RunAborted

        if isinstance(exc, RunAborted):
            outcome = ("abort", exc.stage, type(exc.error).__name__, str(exc.error), exc.line)
        else:
            outcome = ("error", traceback.format_exc())
    with open(out_path, "wb") as handle:
        pickle.dump(outcome, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return 0


def _redo(job: dict[str, Any], watch_path: str) -> Any:
    from .. import _watchdog
    from .._batch import complete, origin_of
    from .._pipeline import Pipeline
    from .._sources import Batch, FileSource
    from .._state import changes, load
    from ..config import Config
    from ..sinks import Rows
    from ._parts import pack, take_measures
    from .process import STUCK_EXIT, _one_at_a_time

    # A stage the watchdog cannot interrupt ends this process, as it ends a process worker.
    _watchdog.exit_when_stuck = STUCK_EXIT
    pipeline = Pipeline.from_entry_points(Config.from_dict(job["config"]))
    for stage in job["quarantined"]:
        pipeline.quarantine(stage)
    stateful = pipeline.stages()
    load(stateful, {name: {key: json.loads(text) for key, text in
                           job["state"].get(name, {}).items()} for name in stateful})
    taken = set(job["taken"])
    batch = Batch(FileSource.named(job["source"]), job["lines"], 0, 0)
    with open(watch_path, "r+b") as handle, mmap.mmap(handle.fileno(), 16) as mapped, \
            memoryview(mapped) as raw, raw.cast("q") as watch, \
            pipeline.flags.carried(job["scoped_flags"]):
        result = complete(pipeline, _one_at_a_time(pipeline, batch, origin_of(pipeline),
                                                   taken.intersection, watch, job),
                          Rows(pipeline.event_class))
    part = pack(result, changes(stateful))
    take_measures(pipeline, part)
    return part


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
