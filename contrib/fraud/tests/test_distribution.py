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
    # In the order they run: the plugin's own hookline_validate (#1, clearing risk and
    # fraud_shadow), the block lists, ..., what the user bought last.
    assert [(stage.qualname, stage.phase, stage.position) for stage in record.stages] == [
        ("fraud.blocked_currency", "validate", 2), ("fraud.blocked_user", "validate", 3),
        ("fraud.amount_limit", "validate", 4), ("fraud.velocity", "validate", 5),
        ("fraud.sequence", "validate", 6),
    ]
    assert set(record.hooks) == {"hookline_event_fields", "hookline_flags", "hookline_validate"}
    assert {stage.qualname for stage in record.stages} == {
        f"fraud.{rule}" for rule in hookline_fraud.RULES}


def test_distribution_requires_hookline_and_ships_py_typed() -> None:
    requires = metadata.requires("hookline-fraud") or []
    assert any(req.replace(" ", "").startswith("hookline>=0.3") for req in requires)
    assert (Path(hookline_fraud.__file__).parent / "py.typed").is_file()
