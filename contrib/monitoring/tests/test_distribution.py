"""The installed distribution: what ``pip install hookline-monitoring`` gives a user."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import hookline
import pytest
from hookline.config import Config
from hookline.errors import BrokenPlugins
from hookline.testing import AssertContract

import hookline_monitoring

#: The lifecycle hooks only: no phase hook, so nothing of the plugin runs per event.
HOOKS = {
    "hookline_run_start",
    "hookline_batch_committed",
    "hookline_run_end",
}


def test_entry_point_loads_the_plugin_with_its_hooks() -> None:
    (entry_point,) = metadata.entry_points(group="hookline.plugins", name="monitoring")
    assert entry_point.value == "hookline_monitoring"
    assert entry_point.load() is hookline_monitoring
    pipeline = hookline.Pipeline.from_entry_points(Config(plugins=("monitoring",)))
    (record,) = pipeline.plugins.loaded()
    assert (record.distribution, record.version) == ("hookline-monitoring", "0.3.0")
    assert set(record.hooks) == HOOKS
    assert record.stages == []


def test_the_plugin_satisfies_the_contract(assert_contract: AssertContract) -> None:
    assert_contract(hookline_monitoring)


def test_distribution_requires_hookline_and_ships_py_typed() -> None:
    requires = metadata.requires("hookline-monitoring") or []
    assert any(req.replace(" ", "").startswith("hookline>=0.3") for req in requires)
    assert any(req.replace(" ", "").startswith("opentelemetry-sdk") and "extra" in req
               for req in requires), "opentelemetry-sdk is an extra, not a dependency"
    assert (Path(hookline_monitoring.__file__).parent / "py.typed").is_file()


@pytest.mark.parametrize(("table", "problem"), [
    ({"prometheus_prot": 9464}, "unknown key(s) prometheus_prot"),
    ({"prometheus_port": 70000}, "prometheus_port"),
    ({"max_dead_letter_ratio": 2}, "max_dead_letter_ratio"),
    ({"stage_max_p99_ms": {"fraud.velocity": "fast"}}, "stage_max_p99_ms"),
])
def test_wrong_settings_stop_the_run_before_it_starts(table: dict[str, object],
                                                     problem: str) -> None:
    config = Config(plugins=("monitoring",), plugin_settings={"monitoring": table})
    with pytest.raises(BrokenPlugins) as refused:
        hookline.Pipeline.from_entry_points(config)
    assert "[settings.monitoring]" in str(refused.value)
    assert problem in str(refused.value)


def test_settings_it_declares_load() -> None:
    config = Config(plugins=("monitoring",), plugin_settings={"monitoring": {
        "prometheus_port": 9464, "max_stage_p99_ms": 50, "stage_max_p99_ms": {"a.b": 200},
        "fail_on_alert": True}})
    (record,) = hookline.Pipeline.from_entry_points(config).plugins.loaded()
    assert record.name == "monitoring"
