"""The hook implementations: a timing wrapper per phase and the run lifecycle hooks.

The wrappers run for every event, so they do the least they can (see ``timing_wrapper``):
two clock reads and a few integer updates, plus a dictionary update when the phase
raises. ``Reject`` and ``Drop`` are counted as outcomes and re-raised unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import hookline

from hookline_monitoring._monitor import Monitor, timing_wrapper

#: The monitor of this process, reset when a run starts.
MONITOR = Monitor()


def _phase_wrapper(phase: str) -> Callable[[Any], Generator[None, Any, Any]]:
    """Return the hook implementation ``hookline_<phase>(event)``, timing into ``MONITOR``."""
    wrapper = timing_wrapper(MONITOR[phase])
    name = f"hookline_{phase}"
    wrapper.__name__ = wrapper.__qualname__ = name
    wrapper.__doc__ = f"Time the {phase} phase of each event; count how it ended."
    return hookline.hookimpl(wrapper=True)(wrapper)


hookline_validate = _phase_wrapper("validate")
hookline_enrich = _phase_wrapper("enrich")
hookline_score = _phase_wrapper("score")


@hookline.hookimpl
def hookline_run_start(run: Any) -> None:
    """Start each run from zero."""
    MONITOR.reset()


@hookline.hookimpl
def hookline_run_end(run: Any, report: Any) -> None:
    """Put the per-phase summary into ``report.sections["monitoring"]``.

    Events accepted while this process timed no phase means the phases ran in worker
    processes (``hookline run --executor process``), whose counters stay there: the section
    says so instead of showing zeros.
    """
    summary = MONITOR.summary()
    if report.accepted and not any(phase["events"] for phase in summary.values()):
        report.sections["monitoring"] = {
            "note": "the phases ran in worker processes (--executor process), where their "
                    "timings stay; run inline to see them"}
        return
    report.sections["monitoring"] = summary
