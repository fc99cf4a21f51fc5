"""OpenTelemetry spans: one per run, one per batch under it, one per stage under its batch.

Nothing happens without ``opentelemetry-sdk``: this module imports it only when a run starts,
and a missing SDK turns tracing off. Where the spans go is OpenTelemetry's business:

* the tracer provider the application set (``trace.set_tracer_provider``, or
  ``opentelemetry-instrument hookline run …``), when it is the SDK's;
* otherwise one made from the SDK's standard environment variables, once per process:
  ``OTEL_SDK_DISABLED``, ``OTEL_TRACES_EXPORTER`` (default ``otlp``; ``console``, ``none``,
  or any exporter a package registers in the entry point group
  ``opentelemetry_traces_exporter``), ``OTEL_SERVICE_NAME`` (default ``hookline``),
  ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``, and each exporter's own
  (``OTEL_EXPORTER_OTLP_ENDPOINT``…), with the SDK's batching processor.

A stage's span summarises the stage's work in its batch, from hookline's stage statistics:
its counts are exact, its timing comes from the sampled calls (one event in
``sample_every``). It exists in each batch the stage ran in, starts with its batch and lasts
the stage's estimated time in it (capped at the batch's end; none without a sampled call).
Its attributes name the stage's plugin, distribution and version. The batch and stage spans
are made when the batch is committed, with the times it ran: the same spans whichever
executor processed it.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

from hookline_monitoring._figures import BatchFigures, StageFigures

log = logging.getLogger("hookline.monitoring")

#: The instrumentation scope of the spans.
SCOPE = "hookline-monitoring"


def _version() -> str:
    try:
        return metadata.version("hookline-monitoring")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "0"


@functools.cache
def _provider_from_environment(exporters: str | None, disabled: bool) -> tuple[Any, str]:
    """A tracer provider sending to the exporters ``OTEL_TRACES_EXPORTER`` names (None: unset,
    so ``otlp`` if it is installed), or None, and what to say about it. Made once per process
    (per value of the variables): its exporters and their threads live as long as the
    process. An exporter named but not installed is warned about; the default is not."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if disabled:
        return None, "off: OTEL_SDK_DISABLED=true"
    names = [name.strip() for name in (exporters or "otlp").split(",") if name.strip()]
    if not names or names == ["none"]:
        return None, "off: OTEL_TRACES_EXPORTER=none"
    installed = {ep.name: ep for ep in metadata.entry_points(
        group="opentelemetry_traces_exporter")}
    found = [name for name in names if name in installed]
    for name in names:
        if exporters is not None and name not in installed and name != "none":
            log.warning("OTEL_TRACES_EXPORTER names the exporter %r, which no installed package "
                        "provides (installed: %s)%s", name, ", ".join(sorted(installed)) or "none",
                        "; pip install opentelemetry-exporter-otlp" if name == "otlp" else "")
    if not found:
        return None, (f"off: no installed exporter of OTEL_TRACES_EXPORTER={exporters}"
                      if exporters is not None else "off: OTEL_TRACES_EXPORTER is not set and "
                      "the default exporter, otlp, is not installed")
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "hookline"}))
    provider = TracerProvider(resource=resource)
    for name in found:
        provider.add_span_processor(BatchSpanProcessor(installed[name].load()()))
    return provider, f"on: {', '.join(found)} (OTEL_TRACES_EXPORTER)"


def open_tracing(run: Any, started_ns: int) -> tuple[Tracing | None, str]:
    """The tracing of a run that started at ``started_ns`` (epoch ns), or None, and what to
    say about it in the report."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        return None, "off: opentelemetry-sdk is not installed"
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        described = "on: the application's tracer provider"
    else:
        provider, described = _provider_from_environment(
            os.environ.get("OTEL_TRACES_EXPORTER"),
            os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true")
        if provider is None:
            return None, described
    return Tracing(provider, run, started_ns), described


def _attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    """``hookline.<key>`` attributes, the None values left out (OpenTelemetry refuses them)."""
    return {f"hookline.{key}": value for key, value in values.items() if value is not None}


class Tracing:
    """The spans of one run."""

    def __init__(self, provider: Any, run: Any, started_ns: int) -> None:
        from opentelemetry import trace

        self._trace = trace
        self.provider = provider
        self.tracer = provider.get_tracer(SCOPE, _version())
        attributes = _attributes({"run_id": run.run_id, "inputs": list(run.inputs),
                                  "db": run.db})
        self.run_span = self.tracer.start_span("hookline run", start_time=started_ns,
                                               attributes=attributes)
        self._context = trace.set_span_in_context(self.run_span)

    def batch(self, figures: BatchFigures, plugins: Sequence[Mapping[str, Any]]) -> None:
        """The span of a committed batch, and one per stage that ran in it."""
        span = self.tracer.start_span(
            f"hookline batch {figures.number}", context=self._context,
            start_time=figures.start_ns, attributes=_attributes({
                "batch": figures.number, "read": figures.read, "accepted": figures.accepted,
                "dropped": figures.dropped, "dead_lettered": figures.dead_lettered,
                "events_per_s": round(figures.events_per_s, 1)}))
        inside = self._trace.set_span_in_context(span)
        for stage in figures.stages.values():
            self._stage(stage, figures, inside, _origin(stage.name, plugins))
        span.end(end_time=figures.end_ns)

    def _stage(self, stage: StageFigures, figures: BatchFigures, context: Any,
               origin: Mapping[str, Any]) -> None:
        sampled = stage.latency.count
        spent_ns = stage.latency.sum_ns * figures.sample_every
        p50, p99 = stage.latency_ms(0.5), stage.latency_ms(0.99)
        span = self.tracer.start_span(
            f"stage {stage.name}", context=context, start_time=figures.start_ns,
            attributes=_attributes({
                "stage": stage.name, **origin, "calls": stage.calls, "errors": stage.errors,
                "rejected": stage.rejected, "dropped": stage.dropped, "sampled_calls": sampled,
                "sample_every": figures.sample_every, "time_ms": round(spent_ns / 1e6, 3),
                "p50_ms": None if p50 is None else round(p50, 4),
                "p99_ms": None if p99 is None else round(p99, 4)}))
        span.end(end_time=min(figures.start_ns + spent_ns, figures.end_ns))

    def end(self, report: Any, error: str | None = None) -> None:
        """End the run's span with the run's counts (``report``; None before any batch), its
        status an error with ``error``, and send what waits to be sent."""
        from opentelemetry.trace import Status, StatusCode

        if report is not None:
            self.run_span.set_attributes(_attributes({
                "read": report.read, "accepted": report.accepted, "dropped": report.dropped,
                "dead_lettered": report.dead_lettered, "interrupted": report.interrupted}))
        if error is not None:
            self.run_span.set_status(Status(StatusCode.ERROR, error))
        self.run_span.end()
        self.provider.force_flush()


def _origin(stage: str, plugins: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The plugin, distribution, version and phase of a stage, from the report's plugins."""
    plugin = stage.partition(".")[0]
    for record in plugins:
        if record["name"] == plugin:
            phase = next((s["phase"] for s in record.get("stages", ()) if s["name"] == stage),
                         None)
            return {"plugin": plugin, "distribution": record.get("distribution"),
                    "version": record.get("version"), "phase": phase}
    return {"plugin": plugin}
