"""The installed distribution: what ``pip install hookline-monitoring`` gives a user."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import hookline
from hookline.config import Config

import hookline_monitoring

HOOKS = {
    "hookline_validate",
    "hookline_enrich",
    "hookline_score",
    "hookline_run_start",
    "hookline_run_end",
}


def test_entry_point_loads_the_plugin_with_its_hooks() -> None:
    (entry_point,) = metadata.entry_points(group="hookline.plugins", name="monitoring")
    assert entry_point.value == "hookline_monitoring"
    assert entry_point.load() is hookline_monitoring
    pipeline = hookline.Pipeline.from_entry_points(Config(plugins=("monitoring",)))
    (record,) = pipeline.plugins.loaded()
    assert record.distribution == "hookline-monitoring"
    assert set(record.hooks) == HOOKS
    assert record.stages == []


def test_distribution_requires_hookline_and_ships_py_typed() -> None:
    requires = metadata.requires("hookline-monitoring") or []
    assert any(req.replace(" ", "").startswith("hookline>=0.2") for req in requires)
    assert (Path(hookline_monitoring.__file__).parent / "py.typed").is_file()
