"""The built-in SQLite sink passes the sink conformance kit (``hookline.testing``), the same
tests a plugin author runs against their own sink."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from hookline.testing import SinkConformance


class TestSQLiteSink(SinkConformance):
    @pytest.fixture
    def new_sink_url(self, tmp_path: Path) -> Callable[[], str]:
        numbers = itertools.count()
        return lambda: f"sqlite:///{tmp_path}/conformance-{next(numbers)}.db"


class TestSQLiteSinkByPath(SinkConformance):
    """A plain path is the same sink (``--db hookline.db``)."""

    events = 5_000

    @pytest.fixture
    def new_sink_url(self, tmp_path: Path) -> Callable[[], str]:
        numbers = itertools.count()
        return lambda: str(tmp_path / f"conformance-{next(numbers)}.db")
