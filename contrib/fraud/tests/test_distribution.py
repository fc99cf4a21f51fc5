"""The installed distribution: what ``pip install hookline-fraud`` gives a user."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import hookline
from hookline.config import Config

import hookline_fraud


def test_entry_point_names_the_package() -> None:
    (entry_point,) = metadata.entry_points(group="hookline.plugins", name="fraud")
    assert entry_point.value == "hookline_fraud"
    assert entry_point.load() is hookline_fraud
    pipeline = hookline.Pipeline.from_entry_points(Config(plugins=("fraud",)))
    (record,) = pipeline.plugins.loaded()
    assert record.distribution == "hookline-fraud"
    assert [(stage.qualname, stage.phase) for stage in record.stages] == [
        ("fraud.blocked_currency", "validate")
    ]


def test_distribution_requires_hookline_and_ships_py_typed() -> None:
    requires = metadata.requires("hookline-fraud") or []
    assert any(req.replace(" ", "").startswith("hookline>=0.1") for req in requires)
    assert (Path(hookline_fraud.__file__).parent / "py.typed").is_file()
