"""hookline's pytest plugin: fixtures for testing plugins without installing them.

Installed with hookline and loaded by pytest through the ``pytest11`` entry point ``hookline``
(``-p no:hookline`` turns it off; with plugin autoload disabled, ``-p hookline`` turns it on).

=================  ===========================================================================
fixture            gives
=================  ===========================================================================
hookline_registry  a :class:`hookline.Registry` of the test's own, current during the test
make_pipeline      ``make_pipeline(*plugins, settings=, flags=)``: a real pipeline
make_event         ``make_event(**overrides)``: a valid event dict (unique ``event_id``…)
run_report         ``run_report(pipeline, events)``: a whole run into a temporary SQLite DB
assert_contract    ``assert_contract(plugin)``: fails listing every contract violation
=================  ===========================================================================

Everything is isolated per test: each pipeline has a flag set of its own (no flag leaks into
the next test), ``HOOKLINE_FLAGS`` from the shell does not apply, and no ``hookline.toml`` of
the folder pytest runs in is read.

Also here: :class:`SinkConformance`, the tests every sink must pass (subclass it, override
``new_sink_url``), and :func:`write_installed`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from . import contracts
from ._installed import write_installed
from ._registry import Registry
from ._schema import DefaultEvent, Event
from ._sink_conformance import SinkConformance

if TYPE_CHECKING:  # the runner's modules load when a fixture first needs them
    from ._pipeline import Pipeline
    from ._report import Report
    from .config import Config

__all__ = [
    "AssertContract",
    "EventFactory",
    "PipelineFactory",
    "RunReporter",
    "RunResult",
    "SinkConformance",
    "assert_contract",
    "hookline_registry",
    "make_event",
    "make_pipeline",
    "run_report",
    "write_installed",
]

#: The time of the first event a factory makes (2023-11-14T22:13:20Z), in epoch ms.
BASE_TS = 1_700_000_000_000


def assert_contract(
    plugin: Any,
    *,
    declared_flags: Collection[str] | None = None,
    known_plugins: Collection[str] | None = None,
) -> None:
    """Fail, listing every violation, unless ``plugin`` satisfies the stage contract.

    ``plugin`` is what an entry point names: a module, a ``Stage`` subclass or a hook object.
    Flags and ``before``/``after`` names are checked only against what you pass (see
    :func:`hookline.contracts.verify`).
    """
    __tracebackhide__ = True  # pytest shows the failure at the caller
    violations = contracts.verify(plugin, declared_flags=declared_flags,
                                  known_plugins=known_plugins)
    if violations:
        raise AssertionError(f"{getattr(plugin, '__name__', plugin)!s} "
                             + contracts.format_violations(violations))


class AssertContract(Protocol):
    """The type of the ``assert_contract`` fixture, for annotating tests."""

    def __call__(self, plugin: Any, *, declared_flags: Collection[str] | None = None,
                 known_plugins: Collection[str] | None = None) -> None: ...


class PipelineFactory:
    """``make_pipeline(*plugins, settings=None, flags=None, config=None) -> Pipeline``."""

    def __init__(self) -> None:
        self.built: list[Pipeline] = []

    def __call__(
        self,
        *plugins: Any,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        flags: Mapping[str, Any] | None = None,
        config: Config | None = None,
        base: type[Event] = DefaultEvent,
    ) -> Pipeline:
        """A pipeline of ``plugins`` in hand: modules, Stage classes, hook objects or
        ``(name, plugin)`` pairs (a module ``hookline_x`` is named ``x``).

        ``settings``: per plugin name, its ``[settings.NAME]`` table. ``flags``: flag values
        (``on``, ``off``, a share such as ``0.25``) as ``--flag`` would set them; the flags
        are those the plugins declare, in a flag set of this pipeline's own. A plugin that
        cannot load (a contract violation, bad settings…) raises ``PluginError`` here.
        """
        from ._loader import load_objects
        from ._pipeline import Pipeline
        from .config import Config
        from .errors import PluginError
        from .flags import Flags

        config = config if config is not None else Config()
        if settings:
            config = config.with_(plugin_settings={**config.plugin_settings, **settings})
        if flags:
            config = config.with_(cli_flags={**config.cli_flags, **flags})
        plugin_set = load_objects(plugins, config)
        failed = plugin_set.failed()
        if failed:
            raise PluginError("; ".join(f"{r.label}: {r.error}" for r in failed))
        pipeline = Pipeline(plugin_set, config, base=base, flags=Flags())
        self.built.append(pipeline)
        return pipeline

    def close(self) -> None:
        for pipeline in self.built:
            pipeline.close()


class EventFactory:
    """``make_event(**overrides) -> dict``: a valid event of the default schema.

    Each call gives a new ``event_id`` (``evt-000001``, ``evt-000002``…) and a ``ts`` one
    second later; the other fields have fixed defaults. Any field may be overridden, and
    plugin fields added, by keyword.
    """

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, **overrides: Any) -> dict[str, Any]:
        self.count += 1
        event: dict[str, Any] = {
            "event_id": f"evt-{self.count:06d}",
            "user_id": "user-1",
            "kind": "purchase",
            "ts": BASE_TS + 1000 * self.count,
            "amount": 10.0,
            "currency": "USD",
            "tags": [],
            "properties": {},
        }
        event.update(overrides)
        return event

    def many(self, count: int, **overrides: Any) -> list[dict[str, Any]]:
        """``count`` events with the same overrides (and distinct ids)."""
        return [self(**overrides) for _ in range(count)]

    def without(self, *names: str, **overrides: Any) -> dict[str, Any]:
        """An event missing the fields ``names``: invalid on purpose when they are required."""
        event = self(**overrides)
        for name in names:
            event.pop(name, None)
        return event

    def event(self, pipeline: Pipeline | None = None, **overrides: Any) -> Event:
        """A validated event: of ``pipeline``'s event class, or a ``DefaultEvent``."""
        data = self(**overrides)
        return pipeline.make_event(data) if pipeline is not None else DefaultEvent.from_dict(data)


@dataclass
class RunResult:
    """What ``run_report`` returns: the run's report, and its database to query."""

    report: Report
    db: Path

    def query(self, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
        """Rows of any SQL query on the run's database."""
        import sqlite3

        with sqlite3.connect(self.db) as connection:
            return connection.execute(sql, parameters).fetchall()

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``table`` (``events``, ``dead_letters``, ``agg_by_user``…) as a dict."""
        if not table.replace("_", "").isalnum():
            raise ValueError(f"not a table name: {table!r}")
        import sqlite3

        with sqlite3.connect(self.db) as connection:
            connection.row_factory = sqlite3.Row
            return [dict(row) for row in connection.execute(
                f'SELECT * FROM "{table}" ORDER BY rowid')]

    @property
    def events(self) -> list[dict[str, Any]]:
        """The accepted events, as stored in the ``events`` table."""
        return self.rows("events")

    @property
    def dead_letters(self) -> list[dict[str, Any]]:
        """The dead letters: ``payload``, ``reason``, ``stage``, ``error``, ``plugin``…"""
        return self.rows("dead_letters")


def database_content(db: str | Path) -> dict[str, list[tuple[Any, ...]]]:
    """What runs leave in a database, comparable between two databases: the events, the dead
    letters (without their ids, run ids and times), the aggregates (the plugins' tables too)
    and the stage state, each sorted. Two runs that decided alike give equal contents,
    whatever their batch order."""
    import sqlite3

    tables = {
        "events": "SELECT * FROM events",
        "dead_letters": "SELECT payload, reason, stage, error, line, source, plugin, "
                        "distribution, version FROM dead_letters",
        "agg_by_user": "SELECT * FROM agg_by_user",
        "agg_by_kind": "SELECT * FROM agg_by_kind",
        "stage_state": "SELECT * FROM stage_state",
    }
    with contextlib.closing(sqlite3.connect(db)) as connection:
        for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
            if name not in tables and name not in ("checkpoints", "runs"):
                tables[name] = f'SELECT * FROM "{name}"'  # an aggregation a plugin adds
        return {name: sorted(connection.execute(query).fetchall(), key=repr)
                for name, query in tables.items()}


class RunReporter:
    """``run_report(pipeline, events, *, db=None) -> RunResult``: a run as ``hookline run`` does."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.runs = 0

    def __call__(self, pipeline: Pipeline, events: Iterable[Any], *,
                 db: str | Path | None = None) -> RunResult:
        """Write ``events`` as a JSON-lines file and run it through ``pipeline`` into ``db``.

        ``events`` may hold dicts, events, or strings (lines as they are, invalid ones
        included). ``db`` defaults to ``hookline.db`` in the test's temporary folder: pass
        ``result.db`` again to run into the same database (duplicates are refused there).
        """
        from ._runner import run

        self.runs += 1
        source = self.folder / f"input-{self.runs}.jsonl"
        with source.open("w", encoding="utf-8") as handle:
            for item in events:
                handle.write(_line(item) + "\n")
        target = Path(db) if db is not None else self.folder / "hookline.db"
        report = run([str(source)], db=str(target), config=pipeline.config, pipeline=pipeline,
                     progress=False)
        return RunResult(report, target)


def _line(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, bytes):
        return item.decode("utf-8")
    if isinstance(item, Event):
        return item.to_json()
    return json.dumps(item, ensure_ascii=False)


# -- the fixtures -------------------------------------------------------------------------------


@pytest.fixture
def hookline_registry() -> Iterator[Registry]:
    """A registry of the test's own: stage classes defined in the test are recorded there only."""
    with Registry().activate() as registry:
        yield registry


@pytest.fixture
def make_pipeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[PipelineFactory]:
    """A factory of pipelines from plugins in hand; see :class:`PipelineFactory`."""
    monkeypatch.delenv("HOOKLINE_FLAGS", raising=False)
    factory = PipelineFactory()
    yield factory
    factory.close()


@pytest.fixture
def make_event() -> EventFactory:
    """A factory of valid event dicts with unique ids; see :class:`EventFactory`."""
    return EventFactory()


@pytest.fixture
def run_report(tmp_path: Path) -> RunReporter:
    """Run events through a pipeline into a temporary SQLite database; see :class:`RunReporter`."""
    folder = tmp_path / "hookline-run"
    folder.mkdir()
    return RunReporter(folder)


@pytest.fixture(name="assert_contract")
def assert_contract_fixture() -> AssertContract:
    """:func:`assert_contract`, as a fixture (it is also importable from ``hookline.testing``)."""
    return assert_contract
