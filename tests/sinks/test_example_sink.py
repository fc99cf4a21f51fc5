"""The plugin guide's example sink (tests/doc_examples/hooks/sinks.py), installed as a plugin,
passes the conformance kit: what the guide shows is a working sink."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from hookline.testing import SinkConformance, write_installed

EXAMPLE = Path(__file__).resolve().parents[1] / "doc_examples" / "hooks" / "sinks.py"


class TestExampleSink(SinkConformance):
    sink_plugins = ("jsonfile",)
    events = 5_000

    @pytest.fixture
    def site(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        site = tmp_path / "site"
        write_installed(site, "jsonfile", EXAMPLE.read_text(encoding="utf-8"))
        monkeypatch.syspath_prepend(str(site))
        monkeypatch.setenv("HOOKLINE_CACHE_DIR", str(tmp_path / "cache"))
        return site

    @pytest.fixture
    def new_sink_url(self, tmp_path: Path, site: Path) -> Callable[[], str]:
        numbers = itertools.count()
        return lambda: f"jsonfile://{tmp_path}/db-{next(numbers)}.json"

    @pytest.fixture
    def sink_environment(self, site: Path) -> Mapping[str, str]:
        return {"PYTHONPATH": str(site)}
