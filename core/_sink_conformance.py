"""The sink conformance kit: the tests every sink must pass, for hookline's own sinks and a
plugin author's (``hookline.testing.SinkConformance``; see docs/testing.md).

A test module subclasses :class:`SinkConformance` and overrides one fixture, ``new_sink_url``
(the URL of a new, empty database on each call); pytest collects the inherited tests. They
use the sink through :mod:`hookline.sinks` only, and real ``hookline run`` processes (one of
them killed with ``SIGKILL``), so what passes here behaves in a run as the built-in sinks do:
a batch is all or nothing, a killed run resumes to the same database as an uninterrupted one,
a new field becomes a column, and an input run twice adds nothing.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ._installed import write_installed
from ._schema import DefaultEvent, Event
from .aggregates import ByUser
from .fields import String
from .sinks import Checkpoint, DeadLetter, Sink, SinkBatch, sink_class

__all__ = ["SinkConformance"]

#: The plugin the ``hookline run`` processes of the kit load: a stateful stage that rejects
#: some events, a field it fills in, and an aggregation of its own.
KIT_PLUGIN = '''\
"""The sink conformance kit's plugin: state, rejections, a field and an aggregation."""

from typing import Any

import hookline
from hookline import fields


class Visits(hookline.Stage, phase="validate", name="visits"):
    def process(self, event: hookline.Event) -> None:
        count = self.state.get(event.user_id, 0) + 1
        self.state[event.user_id] = count
        if event.amount > 100:
            raise hookline.Reject(f"amount over 100 (visit {count} of {event.user_id})")


class Channel(hookline.Stage, phase="enrich", name="channel"):
    def process(self, event: hookline.Event) -> None:
        event.channel = "web" if event.ts % 2 else "app"


@hookline.hookimpl
def hookline_event_fields() -> dict[str, Any]:
    return {"channel": fields.String(optional=True)}


class Largest:
    table = "conformance_largest"
    columns = ("kind", "events", "largest")
    combine = {"largest": "max"}

    def __init__(self) -> None:
        self.groups: dict[str, list[Any]] = {}

    def update(self, event: Any) -> None:
        group = self.groups.setdefault(event.kind, [0, 0.0])
        group[0] += 1
        group[1] = max(group[1], event.amount)

    def merge(self, other: "Largest") -> "Largest":
        for kind, (events, largest) in other.groups.items():
            group = self.groups.setdefault(kind, [0, 0.0])
            group[0] += events
            group[1] = max(group[1], largest)
        return self

    def rows(self) -> list[tuple[Any, ...]]:
        return [(kind, events, largest) for kind, (events, largest) in self.groups.items()]


@hookline.hookimpl
def hookline_aggregations() -> list[Any]:
    return [Largest()]
'''

#: The tables a run writes whose content two equivalent runs share (not ``runs``, not
#: ``checkpoints``: their times differ), and the columns left out of the comparison.
_COMPARED = {
    "events": (),
    "dead_letters": ("id", "run_id", "created_at"),
    "agg_by_user": (),
    "agg_by_kind": (),
    "stage_state": (),
    "conformance_largest": (),
}


class _Wider(DefaultEvent):
    """The default schema plus a field, as when a plugin adding one is installed."""

    channel = String(optional=True)


class _Failing:
    """An aggregation whose rows fail half-way: the commit must then leave nothing."""

    table = "conformance_failing"
    columns = ("kind", "events")

    def update(self, event: Any) -> None:
        """Not called: the kit hands the partial to the sink directly."""

    def merge(self, other: Any) -> Any:
        return self

    def rows(self) -> Iterator[tuple[Any, ...]]:
        yield ("view", 1)
        raise RuntimeError("the conformance kit fails this commit half-way on purpose")


def _event(number: int, **overrides: Any) -> dict[str, Any]:
    return {"event_id": f"conf-{number}", "user_id": f"u{number % 3}", "kind": "view",
            "ts": 1_700_000_000_000 + number, "amount": float(number), **overrides}


def _comparable(rows: list[dict[str, Any]], left_out: Sequence[str]) -> list[Any]:
    """Rows in an order of their own and floats to 12 digits (a sink may add a batch's
    values up in any order), without the columns that differ between equivalent runs."""
    def value(item: Any) -> Any:
        return float(f"{item:.12g}") if isinstance(item, float) else item

    kept = [sorted((column, value(item)) for column, item in row.items()
                   if column not in left_out) for row in rows]
    return sorted(kept, key=repr)


class SinkConformance:
    """The tests every sink must pass. Subclass it in a test module (name the subclass
    ``Test…``) and override the fixture ``new_sink_url``::

        class TestMySink(SinkConformance):
            sink_plugins = ("mysink",)  # the plugin whose hookline_sinks offers the scheme

            @pytest.fixture
            def new_sink_url(self, tmp_path):
                names = iter(range(1000))
                return lambda: f"mysink://{tmp_path}/db{next(names)}"

    ``sink_plugins`` names the installed plugins to load besides the kit's own (none for a
    built-in sink); ``sink_environment`` (a fixture) adds environment variables to the
    ``hookline run`` processes, ``run_arguments`` arguments to their command line.
    """

    sink_plugins: ClassVar[Sequence[str]] = ()
    run_arguments: ClassVar[Sequence[str]] = ()
    #: Events of the runs the kit kills and compares (5 % of them invalid).
    events: ClassVar[int] = 20_000
    batch_size: ClassVar[int] = 500
    #: How many times the kill test kills a run before letting one finish.
    kills: ClassVar[int] = 1

    # -- what a subclass provides --

    @pytest.fixture
    def new_sink_url(self) -> Callable[[], str]:
        """A function giving the URL of a new, empty database each time it is called."""
        pytest.fail(f"{type(self).__name__}: override the new_sink_url fixture (a function "
                    "that gives the URL of a new, empty database on each call)")

    @pytest.fixture
    def sink_environment(self) -> Mapping[str, str]:
        """Environment variables for the ``hookline run`` processes (a password, say)."""
        return {}

    # -- helpers --

    def sink_type(self, url: str) -> type[Sink]:
        """The sink class for ``url``, as ``hookline run`` chooses it with ``sink_plugins``."""
        pipeline = None
        if self.sink_plugins:
            from ._pipeline import Pipeline
            from .config import Config

            pipeline = Pipeline.from_entry_points(Config(plugins=tuple(self.sink_plugins)))
        return sink_class(url, pipeline)

    def open(self, url: str, event_class: type[Event] = DefaultEvent,
             run_id: str = "conformance") -> Sink:
        """The sink at ``url``, connected, its tables made for ``event_class``."""
        sink_type = self.sink_type(url)
        with sink_type.errors(url):
            return sink_type(url, event_class, run_id=run_id)

    def content(self, url: str) -> dict[str, list[Any]]:
        """What runs left in the database at ``url``, comparable between two databases."""
        sink = self.open(url, run_id="reader")
        try:
            return {table: _comparable(sink.read_table(table), left_out)
                    for table, left_out in _COMPARED.items()}
        finally:
            sink.close()

    def rows(self, sink: Sink, *numbers: int, **overrides: Any) -> list[tuple[Any, ...]]:
        """Rows of ``sink``'s events numbered ``numbers``."""
        return [sink.rows(sink.event_class.from_dict(_event(n, **overrides))) for n in numbers]

    # -- the tests: through the interface --

    def test_a_batch_is_committed_and_read_back(self, new_sink_url: Callable[[], str]) -> None:
        url = new_sink_url()
        sink = self.open(url)
        try:
            assert sink.checkpoint("conformance-input") == (0, 0)
            assert sink.load_state(["conformance.visits"]) == {"conformance.visits": {}}
            by_user = ByUser()
            for number in (1, 2, 3):
                by_user.update(DefaultEvent.from_dict(_event(number)))
            letters = [DeadLetter('{"bad": 1', "not JSON", "parse", line=4, source="in"),
                       DeadLetter("{}", "refused", "team.guard", line=5, source="in",
                                  event_id="conf-5")]
            sink.commit(SinkBatch(
                self.rows(sink, 1, 2, 3), letters, Checkpoint("conformance-input", 120, 5),
                [("team.guard", "u1", '{"seen": [1, "a"]}'), ("team.guard", "u2", "3")],
                outputs=[("conformance-output", 77)], aggregations=[by_user]))
        finally:
            sink.close()
        sink = self.open(url)  # what a new run reads
        try:
            assert sink.checkpoint("conformance-input") == (120, 5)
            assert sink.checkpoint("conformance-output")[0] == 77
            assert sink.load_state(["team.guard", "other"]) == {
                "team.guard": {"u1": {"seen": [1, "a"]}, "u2": 3}, "other": {}}
            asked = ["conf-1", "conf-3", "conf-5", "conf-9"]
            assert sink.existing_ids(asked) == {"conf-1", "conf-3"}
            assert sink.seen_ids(asked) == {"conf-1", "conf-3", "conf-5"}
            events = {row["event_id"]: row for row in sink.read_table("events")}
            assert sorted(events) == ["conf-1", "conf-2", "conf-3"]
            assert (events["conf-2"]["user_id"], events["conf-2"]["kind"]) == ("u2", "view")
            stored = sink.dead_letters(0, 10)
            assert [(d.payload, d.line, d.source, d.replays) for d in stored] == [
                ('{"bad": 1', 4, "in", 0), ("{}", 5, "in", 0)]
            assert sink.last_dead_letter_id() == stored[-1].id
            users = {row["user_id"]: int(row["count"]) for row in sink.read_table("agg_by_user")}
            assert users == {"u0": 1, "u1": 1, "u2": 1}
            kinds = {row["kind"]: int(row["count"]) for row in sink.read_table("agg_by_kind")}
            assert kinds == {"view": 3}
        finally:
            sink.close()

    def test_a_failed_commit_leaves_nothing(self, new_sink_url: Callable[[], str]) -> None:
        url = new_sink_url()
        sink = self.open(url)
        try:
            sink.commit(SinkBatch(self.rows(sink, 1), [], Checkpoint("input", 10, 1),
                                  [("team.count", "u1", "1")]))
            by_user = ByUser()
            by_user.update(DefaultEvent.from_dict(_event(2)))
            failing = SinkBatch(
                self.rows(sink, 2, 3), [DeadLetter("x", "refused", "team.guard", line=4,
                                                   event_id="conf-4")],
                Checkpoint("input", 40, 4), [("team.count", "u1", "2"),
                                             ("team.count", "u2", "1")],
                outputs=[("output", 99)], aggregations=[by_user, _Failing()])
            with pytest.raises(RuntimeError, match="on purpose"):
                sink.commit(failing)
            self._only_the_first_batch(sink)
            sink.commit(SinkBatch(self.rows(sink, 5), [], Checkpoint("input", 50, 5)))
            assert sink.existing_ids(["conf-1", "conf-5"]) == {"conf-1", "conf-5"}
        finally:
            sink.close()
        sink = self.open(url)
        try:  # and nothing of the failed batch appears later either
            assert sink.checkpoint("input") == (50, 5)
            assert sink.existing_ids(["conf-2", "conf-3"]) == set()
            assert sink.dead_letters(0, 10) == []
        finally:
            sink.close()

    def _only_the_first_batch(self, sink: Sink) -> None:
        assert sink.checkpoint("input") == (10, 1)
        assert sink.checkpoint("output") == (0, 0)
        assert sink.existing_ids(["conf-1", "conf-2", "conf-3"]) == {"conf-1"}
        assert sink.seen_ids(["conf-4"]) == set()
        assert sink.dead_letters(0, 10) == []
        assert sink.load_state(["team.count"]) == {"team.count": {"u1": 1}}
        assert {row["user_id"] for row in sink.read_table("agg_by_user")} == set()
        assert sink.read_table("conformance_failing") == []

    def test_a_new_field_becomes_a_column(self, new_sink_url: Callable[[], str]) -> None:
        url = new_sink_url()
        sink = self.open(url)
        try:
            sink.commit(SinkBatch(self.rows(sink, 1), [], None))
        finally:
            sink.close()
        sink = self.open(url, _Wider)  # a plugin adding the field was installed since
        try:
            sink.commit(SinkBatch(self.rows(sink, 2, channel="web"), [], None))
            events = {row["event_id"]: row for row in sink.read_table("events")}
            assert events["conf-2"]["channel"] == "web"
            assert events["conf-1"]["channel"] is None
        finally:
            sink.close()
        sink = self.open(url)  # and a run without that plugin still writes
        try:
            sink.commit(SinkBatch(self.rows(sink, 3), [], None))
            assert sink.existing_ids(["conf-1", "conf-2", "conf-3"]) == {
                "conf-1", "conf-2", "conf-3"}
        finally:
            sink.close()

    def test_state_keys_are_replaced_and_deleted(self, new_sink_url: Callable[[], str]
                                                 ) -> None:
        sink = self.open(new_sink_url())
        try:
            sink.commit(SinkBatch([], [], None, [("a.s", "k1", "1"), ("a.s", "k2", '"x"'),
                                                 ("b.s", "k1", "[]")]))
            sink.commit(SinkBatch([], [], None, [("a.s", "k1", "2"), ("a.s", "k2", None)]))
            assert sink.load_state(["a.s", "b.s"]) == {"a.s": {"k1": 2}, "b.s": {"k1": []}}
        finally:
            sink.close()

    def test_replayed_letters_are_replaced_in_the_commit(self, new_sink_url: Callable[[], str]
                                                         ) -> None:
        sink = self.open(new_sink_url())
        try:
            letters = [DeadLetter(f"line {n}", "refused", "team.guard", line=n, source="in")
                       for n in range(1, 8)]
            sink.commit(SinkBatch([], letters, None))
            first = sink.dead_letters(0, 3)
            assert [d.payload for d in first] == ["line 1", "line 2", "line 3"]
            rest = sink.dead_letters(first[-1].id, 100)
            assert [d.payload for d in rest] == [f"line {n}" for n in range(4, 8)]
            again = [DeadLetter("line 2", "still refused", "team.guard", line=2,
                                source="in", replays=1)]
            sink.commit(SinkBatch(self.rows(sink, 1), again, None,
                                  replayed=[first[0].id, first[1].id]))
            stored = sink.dead_letters(0, 100)
            assert [(d.payload, d.replays) for d in stored] == [
                ("line 3", 0), *((f"line {n}", 0) for n in range(4, 8)), ("line 2", 1)]
            assert sink.last_dead_letter_id() == stored[-1].id
            assert sink.existing_ids(["conf-1"]) == {"conf-1"}
        finally:
            sink.close()

    def test_a_run_is_recorded(self, new_sink_url: Callable[[], str]) -> None:
        url = new_sink_url()
        sink = self.open(url, run_id="run-1")
        try:
            sink.record_run(time.time() - 1, {"read": 3, "accepted": 2})
            sink.record_run(time.time() - 1, {"read": 4, "accepted": 3})  # replaced
            [run] = sink.read_table("runs")
            assert run["run_id"] == "run-1"
        finally:
            sink.close()

    # -- the tests: real runs --

    def _input(self, folder: Path, name: str = "events.jsonl") -> Path:
        from ._generate import write_jsonl

        path = folder / name
        if not path.exists():
            write_jsonl(path, self.events, invalid_rate=0.05, seed=16)
        return path

    def _command(self, source: Path, url: str) -> list[str]:
        return [sys.executable, "-m", "hookline.cli", "run", str(source), "--db", url,
                "--batch-size", str(self.batch_size), "--format", "json", *self.run_arguments]

    def _environment(self, folder: Path, extra: Mapping[str, str]) -> dict[str, str]:
        site = folder / "conformance-site"
        if not site.exists():
            write_installed(site, "conformance", KIT_PLUGIN)
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("HOOKLINE_")}
        env.update(extra)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [
            str(site), extra.get("PYTHONPATH"), os.environ.get("PYTHONPATH")]))
        env["HOOKLINE_PLUGINS"] = ",".join(["conformance", *self.sink_plugins])
        env["HOOKLINE_CACHE_DIR"] = str(folder / "conformance-cache")
        return env

    def _run(self, source: Path, url: str, env: dict[str, str]) -> dict[str, Any]:
        """``hookline run`` of ``source`` into ``url``: its report."""
        done = subprocess.run(self._command(source, url), cwd=source.parent, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, f"hookline run --db {url} failed:\n{done.stderr}"
        report: dict[str, Any] = json.loads(done.stdout)
        return report

    def test_an_input_run_twice_adds_nothing(self, new_sink_url: Callable[[], str],
                                             sink_environment: Mapping[str, str],
                                             tmp_path: Path) -> None:
        env = self._environment(tmp_path, sink_environment)
        source, url = self._input(tmp_path), new_sink_url()
        first = self._run(source, url, env)
        once = self.content(url)
        assert len(once["events"]) == first["accepted"] > self.events // 2
        assert once["stage_state"] and once["conformance_largest"]
        assert self._run(source, url, env)["read"] == 0  # resumed at its end
        assert self.content(url) == once
        copy = tmp_path / "events-again.jsonl"  # the same events under another name
        copy.write_bytes(source.read_bytes())
        assert self._run(copy, url, env)["accepted"] == 0
        again = self.content(url)
        for table in _COMPARED:  # refused as duplicates (counted, or dead-lettered)
            if table != "dead_letters":
                assert again[table] == once[table], table

    def _committed(self, url: str) -> int:
        """How far the input is committed in ``url`` (its one checkpoint's byte offset)."""
        sink = self.open(url, run_id="reader")
        try:
            return max((int(row["offset"]) for row in sink.read_table("checkpoints")), default=0)
        finally:
            sink.close()

    def test_a_run_killed_at_random_moments_resumes_to_the_same_database(
        self, new_sink_url: Callable[[], str], sink_environment: Mapping[str, str],
        tmp_path: Path,
    ) -> None:
        """``kills`` times, a ``hookline run`` is killed with SIGKILL at a random point of
        its progress (once its commits have passed a random share of what was left), and run
        again: at the end the database equals an uninterrupted run's.

        The moments are chosen by what is committed, not by the clock, so that a slow or
        busy machine moves them but cannot make them miss the run."""
        env = self._environment(tmp_path, sink_environment)
        source, whole = self._input(tmp_path), new_sink_url()
        size = source.stat().st_size
        self._run(source, whole, env)
        seed = int.from_bytes(os.urandom(4), "big")
        chance = random.Random(seed)
        for _attempt in range(20):  # a fast run may finish between two looks: again, anew
            killed = new_sink_url()
            moments: list[int] = []  # bytes committed when each kill landed
            for _ in range(self.kills):
                before = self._committed(killed)
                target = before + (size - before) * chance.uniform(0.05, 0.6)
                process = subprocess.Popen(self._command(source, killed), cwd=tmp_path,
                                           env=env, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
                deadline = time.monotonic() + 300
                while (process.poll() is None and self._committed(killed) < target
                       and time.monotonic() < deadline):
                    time.sleep(0.01)
                if process.poll() is not None:  # it finished the input between two looks
                    break
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=60)
                moments.append(self._committed(killed))
            if any(0 < at < size for at in moments):
                break
        else:
            pytest.fail(f"no kill landed while the run was committing in 20 tries (seed "
                        f"{seed}, the last at {moments} of {size:,} bytes): raise `events`")
        self._run(source, killed, env)
        assert self.content(killed) == self.content(whole), (
            f"killed with {moments} bytes committed of a {size:,}-byte input "
            f"(seed {seed}), each time run again: the database differs from an "
            "uninterrupted run's")
