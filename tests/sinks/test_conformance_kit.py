"""The conformance kit works for a plugin's sink, the way its author runs it, and it fails a
sink that breaks the promise: each broken sink here fails the test of its fault."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from hookline.testing import SinkConformance, write_installed

#: A plugin offering the SQLite sink under a scheme of its own, and three broken variants.
SINKS = '''
from typing import Any

import hookline
from hookline import DefaultEvent
from hookline._sinks.sqlite import SQLiteSink
from hookline.sinks import SinkBatch


class Plain(SQLiteSink):
    """A plugin's sink that keeps every promise (the SQLite sink itself)."""


class NonAtomic(Plain):
    """Commits the checkpoint and the state before the rest, in a transaction of their own."""

    def commit(self, batch: SinkBatch) -> None:
        super().commit(SinkBatch([], [], batch.checkpoint, batch.state, outputs=batch.outputs))
        super().commit(SinkBatch(batch.rows, batch.dead_letters, None,
                                 replayed=batch.replayed, aggregations=batch.aggregations))


class IgnoresFields(Plain):
    """Stores the default fields only, whatever the plugins add."""

    def __init__(self, url: str, event_class: Any, *, run_id: str = "") -> None:
        super().__init__(url, DefaultEvent, run_id=run_id)


class ForgetsIds(Plain):
    """Never finds an event id already stored: the stages see duplicates again."""

    def seen_ids(self, event_ids: Any) -> set[str]:
        return set()

    def existing_ids(self, event_ids: Any) -> set[str]:
        return set()


@hookline.hookimpl
def hookline_sinks() -> dict[str, Any]:
    return {"plain": Plain, "nonatomic": NonAtomic, "ignoresfields": IgnoresFields,
            "forgetsids": ForgetsIds}
'''

TESTS = '''
import itertools

import pytest

from hookline.testing import SinkConformance


def urls(scheme, folder):
    numbers = itertools.count()
    return lambda: f"{scheme}:///{folder}/db-{next(numbers)}.db"


class Kit(SinkConformance):
    sink_plugins = ("mysinks",)
    events = 3000
    batch_size = 300


class TestPlain(Kit):
    @pytest.fixture
    def new_sink_url(self, tmp_path):
        return urls("plain", tmp_path)


class TestNonAtomic(Kit):
    @pytest.fixture
    def new_sink_url(self, tmp_path):
        return urls("nonatomic", tmp_path)


class TestIgnoresFields(Kit):
    @pytest.fixture
    def new_sink_url(self, tmp_path):
        return urls("ignoresfields", tmp_path)


class TestForgetsIds(Kit):
    @pytest.fixture
    def new_sink_url(self, tmp_path):
        return urls("forgetsids", tmp_path)
'''


def test_the_kit_passes_a_good_plugin_sink_and_fails_each_broken_one(tmp_path: Path) -> None:
    write_installed(tmp_path / "site", "mysinks", SINKS)
    (tmp_path / "test_my_sinks.py").write_text(textwrap.dedent(TESTS))
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("HOOKLINE_", "PYTEST_"))}
    env.update(PYTHONPATH=str(tmp_path / "site"), HOOKLINE_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA",
         "test_my_sinks.py", "-k", "TestPlain or failed_commit or new_field or run_twice"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    failed = set(re.findall(r"^FAILED test_my_sinks\.py::(\w+::\w+)", done.stdout, re.M))
    assert {"TestNonAtomic::test_a_failed_commit_leaves_nothing",
            "TestIgnoresFields::test_a_new_field_becomes_a_column",
            "TestForgetsIds::test_an_input_run_twice_adds_nothing"} <= failed, done.stdout
    # every test of the good sink ran and passed, the real runs and the kill included
    passed = set(re.findall(r"^PASSED test_my_sinks\.py::TestPlain::(\w+)", done.stdout, re.M))
    assert passed == {name for name in dir(SinkConformance) if name.startswith("test_")}, (
        done.stdout)
