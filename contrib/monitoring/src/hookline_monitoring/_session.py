"""One run's monitoring: its settings, its endpoint, its spans, its alerts.

A :class:`Session` starts with the run (``hookline_run_start``), takes each committed batch
(``hookline_batch_committed``) and ends with the run (``hookline_run_end``). It lives in the
process that started the run, which is where hookline calls those hooks and where it merges
what worker processes did: every figure it exports is the run's, whatever the executor.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from hookline.errors import AlertFailed, ConfigError
from hookline.metrics import prometheus_counter

from hookline_monitoring import _phases
from hookline_monitoring._alerts import Alerts
from hookline_monitoring._figures import Tracker
from hookline_monitoring._prometheus import Endpoint
from hookline_monitoring._settings import NAME, settings_of
from hookline_monitoring._tracing import Tracing, open_tracing

log = logging.getLogger("hookline.monitoring")


class Session:
    """The monitoring of the run ``run`` (a ``hookline_run_start`` argument), from its start.

    Raises ConfigError when the settings are wrong or ``/metrics`` cannot listen where they
    say (the run then stops before its first batch).
    """

    def __init__(self, run: Any) -> None:
        self.run_id: str = run.run_id
        self.settings = settings_of(run.config)
        self.tracker = Tracker()
        self.alerts = Alerts(self.settings, self.run_id)
        self.report: Any = None  # the run's report and stage statistics, from the first
        self.stats: Any = None  # committed batch on
        self.sample_every: int = run.config.get("sample_every", 16)
        #: Each phase's stages (``_phases.stages_by_phase``), from the first committed batch.
        self.phase_stages: dict[str, list[str]] = {}
        self.endpoint = self._listen()
        self.tracing: Tracing | None = None
        self.tracing_state = "off: tracing = false"
        if self.settings.tracing:
            self.tracing, self.tracing_state = open_tracing(run, self.tracker.started_ns)

    def _listen(self) -> Endpoint | None:
        port, host = self.settings.prometheus_port, self.settings.prometheus_host
        if port is None:
            return None
        try:
            endpoint = Endpoint(host, port)
        except OSError as exc:
            raise ConfigError(
                f"[settings.{NAME}] prometheus_port = {port}: cannot serve /metrics on "
                f"{host}:{port}: {exc.strerror or exc}; choose a free port (0: any), or "
                "remove prometheus_port") from None
        log.info("serving %s during run %s", endpoint.url, self.run_id,
                 extra={"run_id": self.run_id, "url": endpoint.url})
        return endpoint

    def batch(self, report: Any, pipeline: Any) -> None:
        """Take a committed batch: its spans, the alerts it fires (each passed to
        ``hookline_alert``), the new ``/metrics`` text. With ``fail_on_alert``, an alert ends
        the run here: AlertFailed."""
        self.report, self.stats = report, pipeline.stats
        self.sample_every = pipeline.stats.sample_every
        if not self.phase_stages:
            self.phase_stages = _phases.stages_by_phase(pipeline)
        figures = self.tracker.batch(report, pipeline.stats)
        if figures is None:
            return
        if self.tracing is not None:
            self.tracing.batch(figures, report.plugins)
        fired = self.alerts.check(figures)
        for alert in fired:
            pipeline.hook.hookline_alert(alert=alert)
        self._publish(report)
        if fired and self.settings.fail_on_alert:
            raise AlertFailed(fired[0].message, figures.number)

    def _publish(self, report: Any) -> None:
        if self.endpoint is not None:
            self.endpoint.publish(self.exposition(report))

    def exposition(self, report: Any) -> str:
        """The run's exposition, as ``--metrics-file`` has it, each phase's counts and the
        alerts fired so far."""
        fired = dict.fromkeys(self.alerts.names, 0)
        for alert in self.alerts.fired:
            fired[alert.name] += 1
        text: str = report.prometheus(self.stats)
        text += _phases.exposition(self._phase_counts(()))
        return text + prometheus_counter(
            "hookline_monitoring_alerts_total", "Alerts fired during the run, by threshold.",
            fired, label="alert")

    def close(self, error: str | None = None) -> None:
        """End the run's span (in error with ``error``: the run stopped on it) and stop
        serving ``/metrics``. Closing twice does nothing more."""
        if self.tracing is not None:
            self.tracing.end(self.report, error)
            self.tracing = None
        if self.endpoint is not None:
            self.endpoint.close()
            self.endpoint = None

    def end(self, report: Any) -> dict[str, Any]:
        """Close the session at the run's end; the report's ``monitoring`` section."""
        url = None if self.endpoint is None else self.endpoint.url
        self.report = report
        self._publish(report)  # the end's figures (timed() ones merged from workers)
        self.close()
        return {
            "batches": self.tracker.batches,
            "alerts": [alert.message for alert in self.alerts.fired] or "none",
            "prometheus": f"served {url} during the run" if url else "off",
            "tracing": self.tracing_state,
            **_phases.summary(report.phase_stats, self._phase_counts(report.phase_stats),
                              self.sample_every),
        }

    def _phase_counts(self, phases: Iterable[str]) -> dict[str, _phases.PhaseCounts]:
        """Each phase's counts so far; before the first committed batch nothing was counted,
        and ``phases`` get zeros."""
        if self.stats is None:
            return {phase: _phases.PhaseCounts(0, 0, 0, 0) for phase in phases}
        return _phases.counts(self.stats, self.phase_stages)
