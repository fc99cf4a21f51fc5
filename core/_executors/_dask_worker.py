"""The Dask executor's worker side: the run's plugin, the handshake, and the tasks.

Plugins are never pickled. The run registers a :class:`RunPlugin` that holds only the run's
specification (its configuration as a plain dict, the plugin set the client loaded, the
flags scoped around the run); Dask gives it to every worker, those that join later too, and
each worker builds its own pipeline from its own installed entry points, once per run
(:class:`WorkerRun`). What it loaded is compared with what the client loaded: distribution
names and versions, hookline's version and a digest of the configuration as the worker reads
it; :func:`handshake` reports it before any event is sent, and a worker that differs refuses
every task of the run.

:func:`link` is one partition's work on one batch. The links of a partition form a chain of
tasks, each depending on the one before: what one hands the next is a :class:`Carried`, the
stage state changes it made (over its predecessor's, back to the chain's last anchor, which
holds the state the run started from) and the ids of the events it stored. A worker keeps
the live state of the partitions it runs, so a link that follows its predecessor on the same
worker (the scheduler puts it there: that is where its input is) starts at once, and so does
an anchor that follows the partition's last link there (the run names that link); a link on
another worker or a link Dask recomputes after a worker died rebuilds the state from what it
was handed. Nothing is pickled per event.

A link on which a worker died is done again by :func:`link` with ``careful``: a child
process (:mod:`hookline._executors._careful`) does it one event at a time, noting the line
and stage it is on; the event during which that child dies too is dead-lettered
(``worker died``, with the stage) and the child starts again without it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
import uuid
from typing import TYPE_CHECKING, Any

from distributed import WorkerPlugin, get_worker

from .._collector import fewer_collections
from .._version import __version__
from ..errors import ExecutorError, RemoteError, RunAborted
from ._parts import Part, decode_lines, pack, take_measures

if TYPE_CHECKING:
    from .._pipeline import Pipeline
    from ..config import Config

__all__ = ["Carried", "RunPlugin", "config_digest", "describe", "difference", "handshake", "link",
           "log_topic", "part_of", "plugin_name"]

#: How often a careful link may lose its child outside any event (a plugin's import ending
#: the process, say) before the run gives up.
_RETRIES = 3
_WATCH = struct.Struct("=qq")


def plugin_name(run_id: str) -> str:
    """The name of run ``run_id``'s worker plugin."""
    return f"hookline-run-{run_id}"


def log_topic(run_id: str) -> str:
    """The Dask event topic on which run ``run_id``'s workers send what its links log."""
    return f"hookline-log-{run_id}"


class _Forward(logging.Handler):
    """Sends what the run's links log on this worker (``hookline`` and the plugins' loggers
    below it: ``--trace-hooks``, the stages' warnings) to the run's process, where the record
    is handled as if it had been logged there. Records of other threads (Dask's own, another
    run's) are not the run's and stay here."""

    def __init__(self, worker: Any, topic: str, threads: set[int]) -> None:
        super().__init__()
        self.worker, self.topic, self.threads = worker, topic, threads

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread not in self.threads:
            return
        try:
            attributes = dict(record.__dict__)
            if record.exc_info and not record.exc_text:
                attributes["exc_text"] = logging.Formatter().formatException(record.exc_info)
            # the message as text: its arguments may not travel
            attributes.update(msg=record.getMessage(), args=None, exc_info=None)
            attributes.pop("message", None)
            self.worker.log_event(self.topic, attributes)
        except Exception:
            self.handleError(record)


def config_digest(config: Config) -> str:
    """A digest of the configuration as this process reads it."""
    text = json.dumps(config.as_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe(pipeline: Pipeline) -> dict[str, Any]:
    """What must be the same on the client and every worker: hookline's version, each loaded
    plugin's distribution and version, and a digest of the configuration as read here."""
    return {
        "hookline": __version__,
        "plugins": {record.name: [record.distribution or record.module, record.version or ""]
                    for record in pipeline.plugins.loaded()},
        "config": config_digest(pipeline.config),
    }


def difference(worker: str, theirs: dict[str, Any], ours: dict[str, Any]) -> str | None:
    """How worker ``worker``'s plugin set differs from the run's, in words (None: it does not):
    ``worker tcp://10.0.0.7:4123 has hookline-fraud 0.1.0, this run has 0.2.0``."""
    found = []
    if theirs["hookline"] != ours["hookline"]:
        found.append(f"has hookline {theirs['hookline']}, this run has {ours['hookline']}")
    for name in sorted(set(theirs["plugins"]) | set(ours["plugins"])):
        mine, other = ours["plugins"].get(name), theirs["plugins"].get(name)
        if mine == other:
            continue
        if other is None:
            found.append(f"lacks {mine[0]} {mine[1]} (plugin {name}), which this run has")
        elif mine is None:
            found.append(f"has {other[0]} {other[1]} (plugin {name}), which this run does not "
                         "load")
        elif other[0] != mine[0]:
            found.append(f"has plugin {name} from {other[0]} {other[1]}, this run has it from "
                         f"{mine[0]} {mine[1]}")
        else:
            found.append(f"has {other[0]} {other[1]}, this run has {mine[1]}")
    if not found and theirs["config"] != ours["config"]:
        found.append(f"reads the run's configuration differently (digest {theirs['config']}, "
                     f"this run's {ours['config']})")
    if not found:
        return None
    return f"worker {worker} " + "; ".join(found)


class WorkerRun:
    """One run on one worker: its pipeline, built once, and the live state of the partitions
    this worker ran last (by the token of the :class:`Carried` each one's last link made)."""

    def __init__(self, spec: dict[str, Any], address: str) -> None:
        from .._batch import origin_of
        from .._pipeline import Pipeline
        from ..config import Config
        from ..sinks import Rows

        self.spec = spec
        self.address = address
        self.lock = threading.Lock()  # a worker with several threads runs one link at a time
        self.error: str | None = None
        self.description: dict[str, Any] = {}
        self.partitions: dict[int, tuple[str, dict[str, Any]]] = {}
        self.quarantined: set[str] = set()
        #: The threads running one of the run's links now (what they log is the run's).
        self.threads: set[int] = set()
        try:
            self.pipeline = Pipeline.from_entry_points(Config.from_dict(spec["config"]))
        except Exception as exc:
            self.error = (f"worker {address} could not build the run's pipeline from its "
                          f"installed plugins: {type(exc).__name__}: {exc}")
            return
        self.description = describe(self.pipeline)
        self.error = difference(address, self.description, spec["expected"])
        if self.error:
            self.error += ": install the same versions on every worker and the client"
        self.rows = Rows(self.pipeline.event_class)
        self.origin = origin_of(self.pipeline)
        self.stateful = self.pipeline.stages()


class RunPlugin(WorkerPlugin):
    """The run's specification, given by Dask to every worker (later ones too); ``setup``
    builds the worker's pipeline, ``teardown`` (the run ends) lets it go."""

    idempotent = False

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.name = plugin_name(spec["run_id"])
        self.run: WorkerRun | None = None
        self.forward: _Forward | None = None
        self.level = logging.NOTSET

    def setup(self, worker: Any) -> None:
        self.run = WorkerRun(self.spec, worker.address)
        logger = logging.getLogger("hookline")
        self.level = logger.level
        if self.spec.get("log_level") is not None:  # the run's level, as in its process
            logger.setLevel(self.spec["log_level"])
        self.forward = _Forward(worker, log_topic(self.spec["run_id"]), self.run.threads)
        logger.addHandler(self.forward)

    def teardown(self, worker: Any) -> None:
        logger = logging.getLogger("hookline")
        if self.forward is not None:
            logger.removeHandler(self.forward)
            logger.setLevel(self.level)
        self.run = self.forward = None


def _run_here(run_id: str, worker: Any = None) -> WorkerRun:
    worker = worker if worker is not None else get_worker()
    plugin = worker.plugins.get(plugin_name(run_id))
    run: WorkerRun | None = getattr(plugin, "run", None)
    if run is None:
        raise ExecutorError(f"worker {worker.address} has no plugin set for run {run_id} (its "
                            "run plugin was not set up): was the run closed?")
    if run.error:
        raise ExecutorError(run.error)
    return run


def handshake(run_id: str, dask_worker: Any = None) -> dict[str, Any]:
    """What this worker loaded for the run (``client.run`` calls it on every worker), or
    ``{"error": why}``."""
    plugin = dask_worker.plugins.get(plugin_name(run_id)) if dask_worker is not None else None
    run: WorkerRun | None = getattr(plugin, "run", None)
    if run is None:
        return {"error": "the run's plugin was not set up on this worker"}
    if run.error and not run.description:
        return {"error": run.error}
    return run.description


class Carried:
    """What a partition's link hands the next one (see the module's docstring)."""

    __slots__ = ("changes", "ids", "overlay", "parent", "token")

    def __init__(self, parent: Carried | None, overlay: dict[str, dict[str, str | None]] | None,
                 changes: list[tuple[str, str, str | None]], ids: frozenset[str]) -> None:
        #: Which run of a link made it: a worker's live state is this link's only if the
        #: tokens match (a link recomputed elsewhere makes another).
        self.token = uuid.uuid4().hex
        self.parent = parent
        #: At an anchor (``parent`` None): the partition's changes since the run started.
        self.overlay = overlay
        self.changes = changes
        self.ids = ids

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.token, self.parent, self.overlay, self.changes, self.ids)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.token, self.parent, self.overlay, self.changes, self.ids = state

    def chain(self) -> list[Carried]:
        """This and its predecessors back to the anchor, the anchor first."""
        found: list[Carried] = []
        link: Carried | None = self
        while link is not None:
            found.append(link)
            link = link.parent
        found.reverse()
        return found


def state_texts(prev: Carried | None, base: dict[str, dict[str, str]],
                overlay: dict[str, dict[str, str | None]] | None) -> dict[str, dict[str, str]]:
    """The state (JSON texts by stage and key) a link starts from: the run's starting state,
    the anchor's overlay, then each link's changes since."""
    texts = {stage: dict(values) for stage, values in base.items()}
    chain = prev.chain() if prev is not None else []
    start = chain[0].overlay if chain else overlay
    for stage, values in (start or {}).items():
        _apply(texts, ((stage, key, text) for key, text in values.items()))
    for link_ in chain:
        _apply(texts, link_.changes)
    return texts


def _apply(texts: dict[str, dict[str, str]], changes: Any) -> None:
    for stage, key, text in changes:
        values = texts.setdefault(stage, {})
        if text is None:
            values.pop(key, None)
        else:
            values[key] = text


def _recent(prev: Carried | None, depth: int) -> list[frozenset[str]]:
    """The ids the partition's last ``depth`` links stored (perhaps not committed yet)."""
    found: list[frozenset[str]] = []
    while prev is not None and len(found) < depth:
        found.append(prev.ids)
        prev = prev.parent
    return found


def link(run_id: str, partition: int, number: int, lines: bytes, source: str,
         prev: tuple[Part, Carried] | None, base: dict[str, dict[str, str]],
         overlay: dict[str, dict[str, str | None]] | None, taken: frozenset[str],
         quarantined: tuple[str, ...], careful: bool = False, after: str = ""
         ) -> tuple[Part, Carried]:
    """Partition ``partition``'s work on batch ``number``: its ``lines`` (encoded), after the
    link ``prev`` (None at an anchor: ``base`` and ``overlay`` are the state then, the state
    after the link whose token is ``after``). ``taken``: ids the run found stored before it
    sent the batch."""
    worker = get_worker()
    run = _run_here(run_id, worker)
    carried = prev[1] if prev is not None else None
    recent = _recent(carried, run.spec["window"])

    def stored(ids: list[str]) -> set[str]:
        wanted = set(ids)
        found = wanted & taken
        for seen in recent:
            found |= wanted & seen
        return found

    decoded = decode_lines(lines)
    with run.lock, fewer_collections():
        thread = threading.get_ident()
        run.threads.add(thread)
        try:
            if careful:
                part = _careful(run, partition, number, decoded, source,
                                state_texts(carried, base, overlay), stored, quarantined)
            else:
                part = _process(run, partition, decoded, source, carried, base, overlay,
                                stored, quarantined, after)
        except RunAborted as exc:
            raise RunAborted(exc.stage, RemoteError(type(exc.error).__name__, str(exc.error)),
                             exc.line) from None
        except ExecutorError:
            raise
        except Exception:
            raise ExecutorError(f"worker {worker.address} failed on batch {number} (partition "
                                f"{partition}):\n{traceback.format_exc()}") from None
        finally:
            run.threads.discard(thread)
        made = Carried(carried, overlay if carried is None else None, part.state,
                       frozenset(part.ids))
        if careful:
            run.partitions.pop(partition, None)
        else:
            run.partitions[partition] = (made.token, run.partitions[partition][1])
    part.worker, part.lines, part.token = worker.address, len(decoded), made.token
    return part, made


def _process(run: WorkerRun, partition: int, lines: list[tuple[int, bytes]], source: str,
             carried: Carried | None, base: dict[str, dict[str, str]],
             overlay: dict[str, dict[str, str | None]] | None, stored: Any,
             quarantined: tuple[str, ...], after: str) -> Part:
    """The link itself, in this worker's pipeline."""
    from .._batch import complete, process_batch
    from .._sources import Batch, FileSource
    from .._state import State, changes, load

    pipeline = run.pipeline
    for stage in quarantined:
        if stage not in run.quarantined:
            run.quarantined.add(stage)
            pipeline.quarantine(stage)
    live = run.partitions.get(partition)
    going_on = carried.token if carried is not None else after
    if live is not None and going_on and live[0] == going_on:
        for name, stage in run.stateful.items():  # the state this worker holds: go on
            stage.state = live[1][name]
    else:  # rebuild it from what the link was handed
        texts = state_texts(carried, base, overlay)
        for stage in run.stateful.values():
            stage.state = State()
        load(run.stateful, {name: {key: json.loads(text) for key, text in
                                   texts.get(name, {}).items()} for name in run.stateful})
    # not a state any link may go on from until this one has succeeded
    run.partitions[partition] = ("", {name: stage.state for name, stage in run.stateful.items()})
    with pipeline.flags.carried(run.spec["scoped_flags"]):
        batch = Batch(FileSource.named(source), lines, 0, 0)
        result = complete(pipeline, process_batch(pipeline, batch, run.origin, stored), run.rows)
    part = pack(result, changes(run.stateful))
    take_measures(pipeline, part)
    return part


def _careful(run: WorkerRun, partition: int, number: int, lines: list[tuple[int, bytes]],
             source: str, texts: dict[str, dict[str, str]], stored: Any,
             quarantined: tuple[str, ...]) -> Part:
    """The link redone one event at a time in a child process, after a worker died on it:
    the event during which the child dies is dead-lettered, and a new child does the link
    again without it (and without the earlier ones)."""
    from .process import _exit_status

    taken = sorted(stored(_event_ids(lines)))  # the child sets these aside
    poison: dict[int, tuple[str | None, str]] = {}
    outside = 0
    with tempfile.TemporaryDirectory(prefix="hookline-careful-") as folder:
        job, out, watch = (os.path.join(folder, name) for name in ("job", "out", "watch"))
        while True:
            with open(watch, "wb") as handle:
                handle.write(bytes(_WATCH.size))
            with open(job, "wb") as handle:
                pickle.dump({"config": run.spec["config"], "stages": run.spec["stages"],
                             "scoped_flags": run.spec["scoped_flags"], "state": texts,
                             "lines": lines, "source": source, "taken": taken,
                             "quarantined": list(quarantined), "poison": poison}, handle)
            child = subprocess.run(
                [sys.executable, "-m", "hookline._executors._careful", job, out, watch],
                env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
                stdin=subprocess.DEVNULL, capture_output=True, check=False)
            if child.returncode == 0:
                with open(out, "rb") as handle:
                    outcome = pickle.load(handle)
                if outcome[0] == "abort":
                    _, stage, kind, message, line = outcome
                    raise RunAborted(stage, RemoteError(kind, message), line)
                if outcome[0] == "error":
                    raise ExecutorError(f"worker {run.address}: redoing batch {number} "
                                        f"(partition {partition}) one event at a time failed:"
                                        f"\n{outcome[1]}")
                part: Part = outcome[1]
                return part
            with open(watch, "rb") as handle:
                line, stage = _WATCH.unpack(handle.read(_WATCH.size))
            how = _exit_status(child.returncode)
            if line > 0 and line not in poison:
                poison[line] = (run.spec["stages"][stage - 1] if stage else None, how)
                continue
            outside += 1
            if outside >= _RETRIES:
                raise ExecutorError(
                    f"worker {run.address}: the process redoing batch {number} (partition "
                    f"{partition}) one event at a time died {outside} times outside any event "
                    f"(last: {how}): {child.stderr.decode(errors='replace')[-2000:]}")


def _event_ids(lines: list[tuple[int, bytes]]) -> list[str]:
    """The event ids of the lines that parse (for the stored-ids lookup)."""
    found = []
    for _, raw in lines:
        try:
            event_id = json.loads(raw).get("event_id")
        except (ValueError, AttributeError):
            continue
        if isinstance(event_id, str):
            found.append(event_id)
    return found


def part_of(output: tuple[Part, Carried]) -> Part:
    """A link's part without what it carries: what the client fetches."""
    return output[0]
