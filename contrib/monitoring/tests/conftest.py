"""The fixtures: the plugin to monitor (in hand, or installed the way pip leaves one) and
OpenTelemetry's in-memory exporter.

The events come from hookline's pytest plugin (``make_event``), the pipelines from
``make_pipeline`` and ``hookline.Pipeline.from_entry_points``: hookline's public API only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import hookline
import pytest
from _support import GATE
from hookline.testing import write_installed


@pytest.fixture
def gate(hookline_registry: hookline.Registry) -> ModuleType:
    """The gate plugin as a module in hand, its stages in the test's own registry."""
    module = ModuleType("gate_plugin_in_hand")
    exec(compile(GATE, "<gate plugin>", "exec"), module.__dict__)
    return module


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The gate plugin installed (distribution ``gate-plugin`` 1.0) in a folder on the path of
    this process and of the processes it starts, with a discovery cache of the test's own."""
    folder = write_installed(tmp_path / "site", "gate", GATE, version="1.0")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", str(folder))
    monkeypatch.setenv("HOOKLINE_CACHE_DIR", str(tmp_path / "cache"))
    return folder


@pytest.fixture(scope="session")
def span_exporter() -> Any:
    """OpenTelemetry's SDK, set up by the application (this test process) with an in-memory
    exporter: the global tracer provider, which the plugin then uses."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.fixture
def spans(span_exporter: Any) -> Iterator[Any]:
    """The in-memory exporter, emptied before and after the test."""
    span_exporter.clear()
    yield span_exporter
    span_exporter.clear()
