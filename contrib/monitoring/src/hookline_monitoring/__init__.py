"""hookline-monitoring: per-phase event counts, errors and latency in the run report.

Installed next to hookline, this package is found through its entry point
``monitoring = "hookline_monitoring"`` in the group ``hookline.plugins``. It wraps the
three phases (``hookline_validate``, ``hookline_enrich``, ``hookline_score``) with pluggy
wrappers that time every call, resets its :class:`Monitor` when a run starts, and puts
a summary into ``report.sections["monitoring"]`` when the run ends.
"""

from __future__ import annotations

from hookline_monitoring._hooks import (
    MONITOR,
    hookline_enrich,
    hookline_run_end,
    hookline_run_start,
    hookline_score,
    hookline_validate,
)
from hookline_monitoring._monitor import Monitor, PhaseStats

#: The hookline plugin API this plugin is written for (checked when it is loaded).
HOOKLINE_API = 1

__all__ = [
    "HOOKLINE_API",
    "MONITOR",
    "Monitor",
    "PhaseStats",
    "hookline_enrich",
    "hookline_run_end",
    "hookline_run_start",
    "hookline_score",
    "hookline_validate",
]
