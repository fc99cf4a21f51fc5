"""Feature flags: scoped values, stable rollouts, precedence, gated stages."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

import hookline
from hookline import hookimpl
from hookline._loader import load_objects
from hookline.config import Config
from hookline.errors import ValidationError
from hookline.flags import FlagError, Flags, bucket


@pytest.fixture
def flags() -> Flags:
    own = Flags()
    own.define("ranking.experimental", default=False, owner="ranking")
    own.define("ranking.rollout", rollout=0.25, owner="ranking")
    return own


def test_context_managers_nest_and_restore_even_on_error(flags: Flags) -> None:
    name = "ranking.experimental"
    assert not flags.is_enabled(name)
    with flags.enabled(name):
        assert flags.is_enabled(name)
        with flags.disabled(name):
            assert not flags.is_enabled(name)
        assert flags.is_enabled(name)
        with pytest.raises(RuntimeError), flags.disabled(name):
            raise RuntimeError("inside")
        assert flags.is_enabled(name)
    assert not flags.is_enabled(name)

    @flags.enabled(name)
    def decorated() -> bool:
        return flags.is_enabled(name)

    assert decorated() and not flags.is_enabled(name)


def test_threads_and_tasks_do_not_see_each_other(flags: Flags) -> None:
    name = "ranking.experimental"
    seen: dict[str, list[bool]] = {}
    barrier = threading.Barrier(2)

    def worker(label: str, on: bool) -> None:
        scope = flags.enabled(name) if on else flags.disabled(name)
        with scope:
            barrier.wait()
            seen[label] = [flags.is_enabled(name)]
            barrier.wait()
        seen[label].append(flags.is_enabled(name))

    threads = [threading.Thread(target=worker, args=(label, on))
               for label, on in (("a", True), ("b", False))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"a": [True, False], "b": [False, False]}

    async def task(on: bool, gate: asyncio.Event, other: asyncio.Event) -> bool:
        with flags.enabled(name) if on else flags.disabled(name):
            gate.set()
            await other.wait()
            return flags.is_enabled(name)

    async def main() -> list[bool]:
        first, second = asyncio.Event(), asyncio.Event()
        return list(await asyncio.gather(task(True, first, second), task(False, second, first)))

    assert asyncio.run(main()) == [True, False]


def test_rollout_is_stable_and_close_to_its_share(flags: Flags) -> None:
    users = [f"u{i:05d}" for i in range(10_000)]
    chosen = {u for u in users if flags.is_enabled("ranking.rollout", {"user_id": u})}
    assert 0.24 <= len(chosen) / len(users) <= 0.26
    again = {u for u in users if Flags().define("ranking.rollout", rollout=0.25) and
             bucket("ranking.rollout", u) < 0.25}
    assert chosen == again
    assert bucket("ranking.rollout", "u00001") == bucket("ranking.rollout", "u00001")


def test_precedence_and_unknown_names(flags: Flags) -> None:
    name = "ranking.experimental"
    flags.set("config", name, "on")
    assert flags.value(name) == (True, "config")
    flags.set("env", name, "off")
    assert flags.value(name) == (False, "env")
    flags.set("cli", name, "0.5")
    assert flags.value(name) == (0.5, "cli")
    with flags.enabled(name):
        assert flags.value(name) == (True, "context")
    with pytest.raises(FlagError, match="did you mean 'ranking.experimental'"):
        flags.set("cli", "rankng.experimental", "on")
    with pytest.raises(FlagError, match="not on, off or a share"):
        flags.set("cli", name, "maybe")


def test_a_gated_stage_runs_only_where_its_flag_is_on(registry: hookline.Registry) -> None:
    flags = Flags()

    class Declare:
        @hookimpl
        def hookline_flags(self) -> list[dict[str, Any]]:
            return [{"name": "ranking.experimental", "rollout": 0.5}]

    class Experimental(hookline.Stage, phase="score", flag="ranking.experimental"):
        def process(self, event: hookline.Event) -> None:
            event.tags = [*event.tags, "experimental"]

    def build(**config: Any) -> hookline.Pipeline:
        return hookline.Pipeline(
            load_objects([("ranking", Declare()), ("ranking", Experimental)],
                                         Config(**config)), Config(**config), flags=flags)

    pipeline = build()
    tagged = [pipeline.process({"event_id": str(i), "user_id": f"u{i}", "kind": "view",
                                "ts": 1}).tags for i in range(2000)]
    assert 0.45 < sum(bool(t) for t in tagged) / 2000 < 0.55
    off = build(cli_flags={"ranking.experimental": "off"})
    assert off.process({"event_id": "x", "user_id": "u1", "kind": "view", "ts": 1}).tags == []
    with flags.enabled("ranking.experimental"):
        assert off.process({"event_id": "y", "user_id": "u1", "kind": "view",
                            "ts": 1}).tags == ["experimental"]
    with pytest.raises(FlagError, match="did you mean"):
        build(cli_flags={"rankng.experimental": "on"})


def test_pipelines_in_one_process_keep_their_own_values(
    registry: hookline.Registry, tmp_path: Any
) -> None:
    """Each pipeline layers its own command line, environment and configuration values over
    the process's declarations; a scope and the module-level functions follow the run."""
    from hookline import flags as process_flags

    seen: list[bool] = []

    class Declare:
        @hookimpl
        def hookline_flags(self) -> list[dict[str, Any]]:
            return [{"name": "shop.layered", "default": False}]

    class Tagged(hookline.Stage, phase="score", flag="shop.layered"):
        def process(self, event: hookline.Event) -> None:
            event.tags = [*event.tags, "layered"]

    class Asks(hookline.Stage, phase="enrich"):  # the module-level function, inside a run
        def process(self, event: hookline.Event) -> None:
            seen.append(process_flags.is_enabled("shop.layered"))

    def build(value: str) -> hookline.Pipeline:
        config = Config(flags={"shop.layered": value})
        objects = [("shop", Declare()), ("shop", Tagged), ("shop", Asks)]
        return hookline.Pipeline(load_objects(objects, config), config)

    on, off = build("on"), build("off")  # built one after the other: each keeps its own
    event = {"event_id": "e", "user_id": "u1", "kind": "view", "ts": 1}
    assert on.process(event).tags == ["layered"]
    assert off.process(event).tags == []
    with process_flags.enabled("shop.layered"):  # a scope applies to every pipeline
        assert off.process(event).tags == ["layered"]
    assert [row["value"] for row in on.flags.describe() if row["name"] == "shop.layered"] == [
        True]
    source = tmp_path / "in.jsonl"
    source.write_text('{"event_id": "r1", "user_id": "u1", "kind": "view", "ts": 1}\n')
    seen.clear()
    hookline.run([str(source)], db=str(tmp_path / "on.db"), pipeline=on, config=Config())
    hookline.run([str(source)], db=str(tmp_path / "off.db"), pipeline=off, config=Config())
    assert seen == [True, False]
    assert process_flags.current() is process_flags.default_flags  # no run: the process's


def test_an_input_cannot_name_its_own_variants() -> None:
    """``variants`` records which flagged stages ran on an event: the pipeline's record, not
    the input's (a line claiming ``"variants": ["a"]`` would put itself into a variant)."""
    class Declare:
        @hookimpl
        def hookline_flags(self) -> list[dict[str, Any]]:
            return [{"name": "team.try", "default": True}]

    class Gated(hookline.Stage, phase="enrich", name="gated", flag="team.try"):
        def process(self, event: hookline.Event) -> None:
            pass

    pipeline = hookline.Pipeline.from_plugins([("team", Declare()), ("team2", Gated)])
    event = pipeline.make_event({"event_id": "e1", "user_id": "u1", "kind": "view", "ts": 1,
                                 "variants": ["team.gated", "someone.else"]})
    assert event.variants == []
    for line in ("null", "[1]", '"text"', "7"):  # not an object: still the schema's error
        with pytest.raises(ValidationError):
            pipeline.from_dict(json.loads(line))

