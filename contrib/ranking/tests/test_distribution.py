"""The installed distribution: what ``pip install hookline-ranking`` gives a user."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import hookline
from hookline.config import Config

import hookline_ranking


def test_entry_point_loads_the_field_and_the_stage() -> None:
    (entry_point,) = metadata.entry_points(group="hookline.plugins", name="ranking")
    assert entry_point.value == "hookline_ranking"
    assert entry_point.load() is hookline_ranking
    pipeline = hookline.Pipeline.from_entry_points(Config(plugins=("ranking",)))
    (record,) = pipeline.plugins.loaded()
    assert record.distribution == "hookline-ranking"
    assert [(stage.qualname, stage.phase, stage.flag) for stage in record.stages] == [
        ("ranking.score", "score", None),
        ("ranking.freshness", "score", "ranking.experimental"),
    ]
    assert "score" in pipeline.event_class.__fields__


def test_distribution_requires_hookline_and_ships_py_typed() -> None:
    requires = metadata.requires("hookline-ranking") or []
    assert any(req.replace(" ", "").startswith("hookline>=0.1") for req in requires)
    assert (Path(hookline_ranking.__file__).parent / "py.typed").is_file()
