"""hookline-monitoring: a run's figures exported to Prometheus and OpenTelemetry, and alerts.

Installed next to hookline, this package is found through its entry point
``monitoring = "hookline_monitoring"`` in the group ``hookline.plugins``. It

* after each committed batch (``hookline_batch_committed``), with the figures hookline keeps
  for the whole run: serves them on ``/metrics`` when ``prometheus_port`` is set, sends a
  span for the batch and each of its stages when ``opentelemetry-sdk`` is installed, and
  checks the alert thresholds, calling ``hookline_alert`` for each alert;
* adds a ``monitoring`` section to the run report (``hookline_run_end``), with each phase's
  figures: its events, errors, rejections and drops (its stages' counts, exact) and its
  latency on the events hookline samples (one in ``sample_every``).

It implements no phase hook: nothing of it runs per event. The phase timings are those
hookline takes itself on its sampled events (``report.phase_stats``, and
``hookline_phase_latency_seconds`` on ``/metrics``).

Its settings are the table ``[settings.monitoring]`` (:class:`Settings`).
"""

from __future__ import annotations

from hookline_monitoring._alerts import Alert
from hookline_monitoring._hooks import (
    hookline_batch_committed,
    hookline_run_end,
    hookline_run_start,
)
from hookline_monitoring._settings import Settings

#: The hookline plugin API this plugin is written for (checked when it is loaded).
HOOKLINE_API = 1

__all__ = [
    "HOOKLINE_API",
    "Alert",
    "Settings",
    "hookline_batch_committed",
    "hookline_run_end",
    "hookline_run_start",
]
