"""The hook implementations: the run's lifecycle, nothing per event.

They run once per run, or once per committed batch, in the process that started the run, and
hold the run's :class:`Session` in ``run.state["monitoring"]``. The phase timings are
hookline's own (see ``_phases``): the plugin implements no phase hook, so it adds nothing to
the cost of an event.
"""

from __future__ import annotations

from typing import Any

import hookline

from hookline_monitoring._session import Session
from hookline_monitoring._settings import NAME

#: The session of the run in progress in this process: a run stopped by an exception never
#: reaches ``hookline_run_end``, so the next run closes what it left open (its port).
_open: list[Session] = []


@hookline.hookimpl
def hookline_run_start(run: Any) -> None:
    """Start the run's session: settings, ``/metrics``, the run's span."""
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
