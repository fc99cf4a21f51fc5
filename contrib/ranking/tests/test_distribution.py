"""The installed distribution: what ``pip install hookline-ranking`` gives a user."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import hookline
from hookline.config import Config

import hookline_ranking


def test_entry_point_loads_the_fields_the_stages_and_the_commands() -> None:
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
    assert {"hookline_commands", "hookline_event_fields", "hookline_flags"} <= set(record.hooks)
    assert {"score", "score_model"} <= set(pipeline.event_class.__fields__)


def test_distribution_declares_its_dependencies_and_ships_its_data() -> None:
    requires = [req.replace(" ", "") for req in metadata.requires("hookline-ranking") or []]
    assert any(req.startswith("hookline>=0.3") for req in requires)
    assert any(req.startswith("numpy>=1.24") and 'extra=="train"' in req for req in requires)
    folder = Path(hookline_ranking.__file__).parent
    assert (folder / "py.typed").is_file()
    assert (folder / "default_model.json").is_file()
    assert hookline_ranking.default_model().training["held_out_auc"]["control"] > 0.5
