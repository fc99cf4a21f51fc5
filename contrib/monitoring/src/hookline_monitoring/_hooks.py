"""The hook implementations: a timing wrapper per phase, and the run's lifecycle.

The wrappers run for every event, wherever the events are processed (in worker processes
under ``--executor process``), and do the least they can (see ``_phases.timing_wrapper``).
The lifecycle hooks run once per run, or once per committed batch, in the process that
started the run: they hold the run's :class:`Session` in ``run.state["monitoring"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import hookline

from hookline_monitoring import _phases
from hookline_monitoring._session import Session
from hookline_monitoring._settings import NAME

#: The session of the run in progress in this process: a run stopped by an exception never
#: reaches ``hookline_run_end``, so the next run closes what it left open (its port).
_open: list[Session] = []


def _phase_wrapper(phase: str) -> Callable[[Any], Generator[None, Any, Any]]:
    """The hook implementation ``hookline_<phase>(event)``, timing the phase."""
    wrapper = _phases.timing_wrapper(*_phases.phase_series(phase))
    name = f"hookline_{phase}"
    wrapper.__name__ = wrapper.__qualname__ = name
    wrapper.__doc__ = f"Time the {phase} phase of each event; count its errors."
    return hookline.hookimpl(wrapper=True)(wrapper)


hookline_validate = _phase_wrapper("validate")
hookline_enrich = _phase_wrapper("enrich")
hookline_score = _phase_wrapper("score")


@hookline.hookimpl
def hookline_run_start(run: Any) -> None:
    """Start the run's session: settings, ``/metrics``, the run's span, phases from zero."""
    while _open:
        _open.pop().close(error="the run stopped on an error before its end")
    session = Session(run)
    _open.append(session)
    run.state[NAME] = session


@hookline.hookimpl
def hookline_batch_committed(run: Any, report: Any, pipeline: Any) -> None:
    """Spans, alerts and ``/metrics`` for the batch just committed."""
    session = run.state[NAME]
    try:
        session.batch(report, pipeline)
    except BaseException as exc:  # AlertFailed, or an alert receiver's error: the run stops
        session.close(error=f"{type(exc).__name__}: {exc}")
        _open.remove(session)
        raise


@hookline.hookimpl
def hookline_run_end(run: Any, report: Any) -> None:
    """Close the session and put its summary into ``report.sections["monitoring"]``."""
    session = run.state[NAME]
    report.sections[NAME] = session.end(report)
    _open.remove(session)
