"""The sink interface: what a database must do to be where a run writes, and how ``--db``
chooses one.

A run writes into one sink, chosen by the URL of ``--db`` (:func:`sink_class`): a plain path
or ``sqlite:///path`` is the built-in SQLite sink, ``postgresql://…`` the built-in
PostgreSQL sink (``pip install "hookline[postgres]"``), and any other scheme is a plugin's,
offered through the ``hookline_sinks`` hook as ``{"scheme": SinkClass}``.

A sink subclasses :class:`Sink`. The run loop, ``hookline replay`` and the executors use
nothing else, so a sink that honours this interface gets every executor, resuming after a
crash, duplicate refusal and replay for free. The promise a sink keeps is exactly once:
:meth:`Sink.commit` writes one batch (accepted rows, dead letters, aggregate deltas, stage
state changes and the source checkpoint) atomically, all or nothing, and a run killed at
any moment resumes after the last batch committed. ``hookline.testing`` ships the
conformance tests that check it (``SinkConformance``).

Rows arrive ready to insert: :class:`Rows` turns an event into a tuple, one value per schema
field in schema order, lists, mappings and nested events as compact JSON text.
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from . import _codegen, _json
from ._schema import Event
from .errors import DatabaseError, PluginError, UsageError
from .fields import List, Nested
from .fields import Mapping as MappingField

if TYPE_CHECKING:
    from ._pipeline import Pipeline
    from .fields import Field

__all__ = [
    "BUILT_IN",
    "Checkpoint",
    "DeadLetter",
    "FoundDeadLetter",
    "LetterFilter",
    "Rows",
    "Sink",
    "SinkBatch",
    "SinkReader",
    "StoredDeadLetter",
    "StoredRun",
    "mask_url",
    "open_reader",
    "scheme_of",
    "sink_class",
]


# -- what a batch holds -----------------------------------------------------------------------


@dataclass
class DeadLetter:
    """An input line that did not become an accepted event, and why."""

    payload: str
    reason: str
    stage: str | None = None
    error: str | None = None
    line: int | None = None
    source: str | None = None
    plugin: str | None = None
    distribution: str | None = None
    version: str | None = None
    #: How many times ``hookline replay`` has run this letter's event (its state changes are
    #: kept on the first processing and the first replay only).
    replays: int = 0
    #: The ``event_id`` of an event a stage refused or failed on (it counts as seen: a
    #: re-delivery of it is a duplicate); None for a line no stage saw.
    event_id: str | None = None


class Checkpoint(NamedTuple):
    """How far a source is committed: after byte ``offset``, which ends line ``line``."""

    key: str
    offset: int
    line: int


class StoredDeadLetter(NamedTuple):
    """A dead letter as ``hookline replay`` reads it back (:meth:`Sink.dead_letters`)."""

    id: int
    payload: str
    line: int | None
    source: str | None
    replays: int
    #: The event id a stage recorded on it (None: a line no stage saw, or a sink that does
    #: not say): replay does not take the letter's own id for a duplicate.
    event_id: str | None = None


class FoundDeadLetter(NamedTuple):
    """A dead letter with every column, as ``hookline dead-letters`` lists it
    (:meth:`SinkReader.find_dead_letters`); ``created_at`` in seconds since the epoch."""

    id: int
    run_id: str | None
    created_at: float | None
    payload: str
    reason: str
    stage: str | None
    error: str | None
    line: int | None
    source: str | None
    plugin: str | None
    distribution: str | None
    version: str | None
    replays: int
    event_id: str | None


@dataclass(frozen=True)
class LetterFilter:
    """Which dead letters to list or replay: those matching every criterion given.

    ``stage``: the stage exactly (``fraud.velocity``, ``schema``), or a plugin's name for all
    its stages (``fraud``); ``reason``: text the reason contains, in any case; ``run_id``:
    the run that wrote them, or the start of its id.
    """

    stage: str | None = None
    reason: str | None = None
    run_id: str | None = None

    def __bool__(self) -> bool:
        return any((self.stage, self.reason, self.run_id))


class StoredRun(NamedTuple):
    """A run as ``hookline runs`` reads it back (:meth:`SinkReader.runs`): times in seconds
    since the epoch, the report as the run stored it (a dict; None if the run stored none)."""

    run_id: str
    started_at: float | None
    finished_at: float | None
    report: dict[str, Any] | None


@dataclass
class SinkBatch:
    """Everything one :meth:`Sink.commit` writes, in one transaction.

    ``rows`` and ``dead_letters`` are the caller's lists: a sink that meets a row it cannot
    store (a value its database refuses) may move it from ``rows`` to ``dead_letters`` (stage
    ``sink``) rather than fail the batch on every run; the run's counts are read after the
    commit, so they stay true.
    """

    #: The accepted events, as :class:`Rows` makes them; ``agg_by_kind`` is the sink's to
    #: update from them.
    rows: list[tuple[Any, ...]]
    dead_letters: list[DeadLetter]
    #: Where the batch ends in its source; None for input that cannot be resumed (stdin,
    #: replayed letters).
    checkpoint: Checkpoint | None = None
    #: ``(stage, key, JSON text)`` of each state key the batch changed; None: deleted.
    state: Sequence[tuple[str, str, str | None]] = ()
    #: Ids of the dead letters this batch re-ran (``hookline replay``): deleted, their
    #: outcome written in their place.
    replayed: Sequence[int] = ()
    #: ``(key, committed length)`` of other outputs written before this commit (the
    #: ``--jsonl`` file): stored as checkpoints (line 0).
    outputs: Sequence[tuple[str, int]] = ()
    #: The batch's partials of ``agg_by_user`` and of the plugins' aggregations
    #: (:class:`hookline.aggregates.Aggregation` objects), added to the stored rows (a
    #: table is made on its first use).
    aggregations: Sequence[Any] = ()


def _is_json(kind: Field[Any]) -> bool:
    return isinstance(kind, (List, MappingField, Nested))


class Rows:
    """How events of one schema become rows of ``events``: a value per field, in schema
    order, lists, mappings and nested events as compact JSON text.

    Made wherever events are processed, so that a worker process ships rows, not events.
    """

    def __init__(self, event_class: type[Event]) -> None:
        #: ``(name, field)`` of each column, in order.
        self.fields: list[tuple[str, Field[Any]]] = list(event_class.__fields__.items())
        self.names = [name for name, _ in self.fields]
        #: Where ``event_id`` is in a row.
        self.id_index = self.names.index("event_id")
        #: Where the fields stored as JSON text (lists, mappings, nested events) are.
        self.json_at = [at for at, (_, kind) in enumerate(self.fields) if _is_json(kind)]
        #: ``row(event)``: what calling this object does, as a plain (generated) function.
        self.row = _codegen.compile_row(
            self.names, [self.names[at] for at in self.json_at], _encode,
            what=f"{event_class.__module__}.{event_class.__qualname__}")

    def __call__(self, event: Event) -> tuple[Any, ...]:
        return self.row(event)

    def json_line(self, row: tuple[Any, ...]) -> str:
        """The event of ``row`` as one compact JSON object, as ``event.to_dict()`` dumps."""
        texts = [_encode(value) for value in row]
        for at in self.json_at:  # already JSON text, unless NULL
            if row[at] is not None:
                texts[at] = row[at]
        return "{" + ",".join(f"{_encode(name)}:{text}"
                              for name, text in zip(self.names, texts)) + "}"


def _plain(value: Any) -> Any:
    if isinstance(value, Event):
        return value.to_dict()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


#: An event's lists, mappings and nested events as stored: compact JSON text.
_encode = _json.encoder(separators=(",", ":"), ensure_ascii=False, default=_plain)


# -- the interface ----------------------------------------------------------------------------


class SinkReader(ABC):
    """Read-only access to what runs committed: what a worker process of the process
    executor needs (it decides on the stored state and ids, and never writes)."""

    @abstractmethod
    def load_state(self, stages: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``{stage: {key: value}}``: the committed state of each of ``stages`` (values
        decoded from JSON), an empty dict for a stage with none or before any run."""

    @abstractmethod
    def seen_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Which of ``event_ids`` the stages have seen already: stored in ``events``, or on a
        dead letter a stage wrote (``DeadLetter.event_id``). Empty before any run."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection; called once."""

    # -- looking back (``hookline runs``, ``hookline dead-letters``, ``replay`` filters) --
    # Not abstract: a sink that keeps no history still runs; these commands then say so.

    def runs(self, limit: int | None = None, run_id: str = "") -> list[StoredRun]:
        """The runs stored, newest first: at most ``limit``; only those whose id starts with
        ``run_id`` when it is given. Empty before any run."""
        raise UsageError(f"{type(self).__name__} keeps no run history to list")

    def find_dead_letters(self, where: LetterFilter, *, after_id: int = 0,
                          limit: int | None = None) -> list[FoundDeadLetter]:
        """The dead letters ``where`` selects whose id is above ``after_id``, by id, at most
        ``limit``. Empty before any run."""
        raise UsageError(f"{type(self).__name__} cannot list dead letters by stage, reason "
                         "or run")

    def count_dead_letters(self, where: LetterFilter) -> int:
        """How many dead letters ``where`` selects (0 before any run)."""
        raise UsageError(f"{type(self).__name__} cannot count dead letters")


class Sink(SinkReader):
    """Where a run writes: accepted events, dead letters, aggregates, stage state, checkpoints
    and the runs' reports, each batch in one transaction.

    ``Sink(url, event_class, run_id=…)`` connects and creates what is missing: the tables for
    ``event_class`` (one column per field; a column added when a plugin adds a field), dead
    letters, aggregates, checkpoints, runs and stage state. Every method may raise the
    driver's own errors; callers wrap them in :meth:`errors`.
    """

    #: The driver's exceptions that mean "this database cannot be used": :meth:`errors`
    #: turns them into :class:`~hookline.errors.DatabaseError`.
    database_errors: ClassVar[tuple[type[BaseException], ...]] = ()

    def __init__(self, url: str, event_class: type[Event], *, run_id: str = "") -> None:
        self.url = url
        self.event_class = event_class
        self.run_id = run_id
        #: How this sink's events become rows (the caller makes :attr:`SinkBatch.rows` so).
        self.rows = Rows(event_class)

    # -- choosing and opening --

    @classmethod
    @contextmanager
    def errors(cls, url: str) -> Iterator[None]:
        """Inside this block, the driver's :attr:`database_errors` become a
        :class:`~hookline.errors.DatabaseError` naming the database (password masked), what
        the database said (on one line) and what to do (:meth:`advice`): the user sees no
        traceback."""
        try:
            yield
        except cls.database_errors as exc:
            problem = _scrubbed(" ".join(str(exc).split()) or type(exc).__name__, url)
            raise DatabaseError(mask_url(url), problem, cls.advice(problem)) from exc

    @classmethod
    def advice(cls, problem: str) -> str:
        """What the user can do about ``problem`` (the database's message)."""
        return "check the database, or give another --db"

    @classmethod
    def exists(cls, url: str) -> bool:
        """Whether there may be a database at ``url`` to read (``hookline replay`` refuses to
        make one); True where only connecting can tell."""
        return True

    @classmethod
    @abstractmethod
    def reader(cls, url: str) -> SinkReader:
        """A read-only view of the database at ``url``, for a worker process; it must work
        while a run writes, and before the tables exist (nothing stored yet)."""

    @abstractmethod
    def check_writable(self) -> None:
        """Raise (a driver error) now if this run cannot write, before any input is read
        (a read-only file, a user without the right to insert), not at the first commit."""

    @abstractmethod
    def lock_writer(self, on_wait: Callable[[str], None] | None = None) -> None:
        """Keep concurrent runs from losing each other's updates until :meth:`close`.

        A run decides from the state it loaded when it started, so two runs writing into one
        database must not interleave their batches (or the sink must otherwise guarantee no
        update is lost). When this has to wait for another run, it calls ``on_wait`` once with
        a sentence saying so, then waits. Idempotent.
        """

    def lock_input(self, key: str, on_wait: Callable[[str], None] | None = None) -> None:
        """Called before a run reads the input whose checkpoint key is ``key``: a sink that
        lets runs write at the same time keeps two runs of one input apart here (the second
        waits, saying so with ``on_wait``, and then resumes after the first's checkpoint).
        Nothing to do for a sink whose :meth:`lock_writer` already serializes runs."""

    # -- reading --

    @abstractmethod
    def checkpoint(self, key: str) -> tuple[int, int]:
        """``(offset, line)`` committed for the source or output ``key``; ``(0, 0)`` if none."""

    @abstractmethod
    def existing_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Which of ``event_ids`` are stored in ``events`` (not counting dead letters)."""

    @abstractmethod
    def dead_letters(self, after_id: int, limit: int) -> list[StoredDeadLetter]:
        """Up to ``limit`` dead letters whose id is above ``after_id``, by id."""

    @abstractmethod
    def last_dead_letter_id(self) -> int:
        """The highest dead letter id (0 when there is none): replay stops there, so that it
        does not replay the letters it writes."""

    # -- writing --

    @abstractmethod
    def commit(self, batch: SinkBatch) -> None:
        """Write ``batch`` atomically: all of it or, when this raises, nothing.

        In one transaction: delete the ``replayed`` letters; insert the ``rows`` and add them
        to ``agg_by_kind``; add each aggregation's partial to its table (made on first use);
        insert the ``dead_letters`` with this run's id and the time; upsert (or, for None,
        delete) the ``state`` keys; set the ``outputs`` and the ``checkpoint``.
        """

    @abstractmethod
    def record_run(self, started_at: float, report: Mapping[str, Any]) -> None:
        """Store this run's report (``run_id``, start time, end time now, the report as JSON),
        replacing one of the same run id."""

    # -- looking inside --

    @abstractmethod
    def read_table(self, name: str) -> list[dict[str, Any]]:
        """Every row of the table ``name`` (``events``, ``dead_letters``, ``agg_by_user``,
        ``stage_state``, a plugin's aggregation…) as a dict of column to value, in any order;
        ``[]`` for a table that does not exist. Not used by a run: for tests and tools (the
        conformance kit compares what two runs left with it)."""

    # -- starting again (``hookline run --reprocess``) --

    def checkpoint_keys(self) -> list[str]:
        """The keys of every checkpoint stored (inputs and outputs such as ``--jsonl``):
        what the database holds the events of."""
        raise UsageError(f"{type(self).__name__} cannot list its checkpoints: --reprocess "
                         "needs it")

    def reset(self, tables: Sequence[str]) -> None:
        """Delete, in one transaction, what runs wrote: ``events``, ``dead_letters``,
        ``agg_by_user``, ``agg_by_kind``, the aggregation ``tables`` given (those that exist),
        ``stage_state`` and ``checkpoints``; the ``runs`` stay (their reports are history).
        ``hookline run --reprocess`` calls it only when the database holds nothing but the
        inputs it re-runs."""
        raise UsageError(f"{type(self).__name__} cannot be reset: --reprocess needs it")


# -- choosing a sink by URL -------------------------------------------------------------------

#: The sinks that come with hookline: scheme -> (``module:class``, the extra that installs
#: its driver, or None).
BUILT_IN: dict[str, tuple[str, str | None]] = {
    "sqlite": ("hookline._sinks.sqlite:SQLiteSink", None),
    "postgresql": ("hookline._sinks.postgres:PostgresSink", "postgres"),
    "postgres": ("hookline._sinks.postgres:PostgresSink", "postgres"),
}

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
#: ``scheme://user:password@`` and ``password=…`` in a query or a key=value string.
_PASSWORD_IN_AUTHORITY = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/@:?#]*:)"
                                    r"(?P<secret>[^/@?#]*)@")
_PASSWORD_PARAMETER = re.compile(r"(?P<head>(?:^|[?&;\s])password\s*=\s*)(?P<secret>[^&;\s]*)",
                                 re.IGNORECASE)
_MASK = "***"


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, fit for reports, logs and errors:
    ``postgresql://ada:s3cret@db/x`` -> ``postgresql://ada:***@db/x``; a ``password=`` query
    parameter too. Anything else is left as it is (a plain path stays a path)."""
    masked = _PASSWORD_IN_AUTHORITY.sub(lambda m: m["head"] + _MASK + "@", url)
    return _PASSWORD_PARAMETER.sub(lambda m: m["head"] + _MASK, masked)


def _scrubbed(text: str, url: str) -> str:
    """``text`` (a database's message) without the password of ``url``, should it quote it."""
    for pattern in (_PASSWORD_IN_AUTHORITY, _PASSWORD_PARAMETER):
        for found in pattern.finditer(url):
            if found["secret"]:
                text = text.replace(found["secret"], _MASK)
    return mask_url(text)


def scheme_of(url: str) -> str:
    """The scheme of a ``--db`` URL, lower case: ``sqlite`` for a plain path."""
    found = _SCHEME.match(url)
    return found.group(1).lower() if found else "sqlite"


def _offered(pipeline: Pipeline | None) -> dict[str, type[Sink]]:
    """The sinks the pipeline's plugins offer through ``hookline_sinks``, each checked: a
    mistake raises :class:`~hookline.errors.PluginError` naming the plugin and the fix."""
    offered: dict[str, type[Sink]] = {}
    owners: dict[str, str] = {}
    if pipeline is None:
        return offered
    for impl in pipeline.plugins.impls("hookline_sinks"):
        plugin = impl.plugin_name
        found = impl.function() or {}
        if not isinstance(found, Mapping):
            raise PluginError(f"{plugin}: hookline_sinks() returned {type(found).__name__}; "
                              'return a mapping of URL scheme to Sink class ({"s3": S3Sink})')
        for scheme, cls in found.items():
            if not isinstance(scheme, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*",
                                                               scheme):
                raise PluginError(f"{plugin}: hookline_sinks() offers scheme {scheme!r}: a "
                                  "scheme is letters, digits, +, - or ., starting with a "
                                  "letter, without ://")
            if not (isinstance(cls, type) and issubclass(cls, Sink)):
                raise PluginError(f"{plugin}: hookline_sinks() offers {cls!r} for {scheme!r}: "
                                  "a sink is a subclass of hookline.sinks.Sink")
            scheme = scheme.lower()
            if scheme in BUILT_IN:
                raise PluginError(f"{plugin}: hookline_sinks() offers the scheme {scheme!r}, "
                                  "which is hookline's own: choose another scheme")
            if scheme in owners:
                raise PluginError(f"plugins {owners[scheme]} and {plugin} both offer a sink "
                                  f"for {scheme}://; deselect one (HOOKLINE_DISABLE_PLUGINS)")
            owners[scheme] = plugin
            offered[scheme] = cls
    return offered


def sink_class(url: str, pipeline: Pipeline | None = None) -> type[Sink]:
    """The sink class for the ``--db`` URL ``url``: built in, or offered by one of
    ``pipeline``'s plugins. Raises :class:`~hookline.errors.UsageError` for a scheme nothing
    handles (naming those installed) or a built-in sink whose driver is not installed."""
    scheme = scheme_of(url)
    if scheme in BUILT_IN:
        path, extra = BUILT_IN[scheme]
        module, _, name = path.partition(":")
        try:
            loaded: type[Sink] = getattr(importlib.import_module(module), name)
        except ModuleNotFoundError as exc:
            if extra is None or (exc.name or "").startswith("hookline"):
                raise
            raise UsageError(f"--db {mask_url(url)}: the {scheme} sink needs {exc.name}, which "
                             f'is not installed: pip install "hookline[{extra}]"') from exc
        return loaded
    offered = _offered(pipeline)
    if scheme in offered:
        return offered[scheme]
    installed = ", ".join(f"{name}://" for name in sorted({*BUILT_IN, *offered}))
    raise UsageError(f"--db {mask_url(url)}: no installed sink handles {scheme}://; installed: "
                     f"{installed} (or a plain path for SQLite). A plugin adds a scheme "
                     "through the hookline_sinks hook")


def open_reader(url: str, pipeline: Pipeline | None = None) -> SinkReader:
    """A read-only view of the database at ``url`` (see :meth:`Sink.reader`)."""
    cls = sink_class(url, pipeline)
    with cls.errors(url):
        return cls.reader(url)
