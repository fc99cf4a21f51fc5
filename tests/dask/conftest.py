"""Fixtures of the Dask executor's tests: generated inputs, the inline run every other run is
compared with, and clusters started by the tests (helpers in ``_dask_support``).

Everything here starts real processes: the tests are ``integration`` tests (run once, in
tox's ``integration`` environment, which installs the ``dask`` extra and the contrib wheels).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _dask_support import PLUGINS, RUN_OPTIONS, Cluster, hookline_run, site_with_tally, succeeded

from hookline._generate import write_jsonl
from hookline.testing import database_content

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if str(HERE) in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _requirements() -> None:
    """The integration environment installs Dask and the contrib wheels: without them these
    tests fail, saying what is missing."""
    import distributed  # noqa: F401
    import hookline_fraud  # noqa: F401
    import hookline_monitoring  # noqa: F401
    import hookline_ranking  # noqa: F401


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the runs run: its hookline.toml times the stateful stage (``timed()``)."""
    folder = tmp_path_factory.mktemp("dask")
    (folder / "hookline.toml").write_text('[behaviors]\n"tally.count" = ["timed()"]\n')
    return folder


@pytest.fixture(scope="session")
def environment(work: Path) -> dict[str, str]:
    """What every process of these tests runs with: the tests' plugin on PYTHONPATH, the
    plugins selected, a discovery cache of their own."""
    site = site_with_tally(work / "site", "2.0")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("HOOKLINE_", "DASK_"))}
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")])),
               HOOKLINE_PLUGINS=PLUGINS, HOOKLINE_CACHE_DIR=str(work / "cache"))
    return env


@pytest.fixture(scope="session")
def events_100k(work: Path) -> Path:
    path = work / "events-100k.jsonl"
    write_jsonl(path, 100_000, invalid_rate=0.03, seed=15)
    return path


@pytest.fixture(scope="session")
def inline_100k(events_100k: Path, environment: dict[str, str], work: Path
                ) -> dict[str, list[tuple[Any, ...]]]:
    """The database the inline run leaves: what every executor must leave."""
    succeeded(hookline_run(str(events_100k), "--db", "inline-100k.db", *RUN_OPTIONS,
                           env=environment, cwd=work))
    content = database_content(work / "inline-100k.db")
    assert content["stage_state"] and content["agg_tally_currency"]
    refused = [row for row in content["dead_letters"] if row[2] == "tally.count"]
    assert refused, "the stateful stage must decide something for the comparison to matter"
    return content


@pytest.fixture
def cluster(environment: dict[str, str], tmp_path: Path) -> Iterator[Cluster]:
    started = Cluster(environment, tmp_path)
    try:
        yield started
    finally:
        started.stop()
