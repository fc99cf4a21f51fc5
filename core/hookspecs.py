"""The public contract between hookline and its plugins: markers, then one spec per hook.

Every hook is documented in docs/hooks.md (a test fails when one is missing there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ._schema import Event
    from .fields import Field
    from .sinks import Sink
    from .sources import Source

PROJECT = "hookline"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: The event phases, in pipeline order. Each is a hook with the stage protocol's shape.
PHASES = ("validate", "enrich", "score")


# -- event phases ----------------------------------------------------------------------------


@hookspec
def hookline_validate(event: Event) -> Event | None:
    """Check an event: raise ``Reject(reason)`` to dead-letter it, ``Drop()`` to filter it."""


@hookspec
def hookline_enrich(event: Event) -> Event | None:
    """Add information to an event: assign fields, or return a replacement event."""


@hookspec
def hookline_score(event: Event) -> Event | None:
    """Compute scores for an event: assign fields, or return a replacement event."""


# -- schema, flags and configuration ---------------------------------------------------------


@hookspec
def hookline_event_fields() -> Mapping[str, Field[Any]]:
    """Return extra fields (name to ``hookline.fields`` field) for the pipeline's event schema."""


@hookspec
def hookline_flags() -> Sequence[Mapping[str, Any]]:
    """Return the feature flags this plugin declares, as ``flags.define`` keyword dicts."""


@hookspec
def hookline_configure(config: Mapping[str, Any]) -> None:
    """Receive the run's configuration (read-only) once, after all plugins are loaded."""


# -- lifecycle -------------------------------------------------------------------------------


@hookspec
def hookline_run_start(run: Any) -> None:
    """Called once before the first event of a run; ``run.state`` is yours to keep state in."""


@hookspec
def hookline_batch_committed(run: Any, report: Any, pipeline: Any) -> None:
    """Called after each batch is committed; ``report`` and ``pipeline.stats`` hold the run
    so far."""


@hookspec
def hookline_run_end(run: Any, report: Any) -> None:
    """Called once after the last batch is committed; add to ``report.sections[name]``."""


@hookspec
def hookline_event_rejected(event: Any, reason: str, stage: str | None) -> None:
    """Observe an event that is dead-lettered (``event`` is a read-only mapping view)."""


@hookspec
def hookline_stage_error(stage: str, event: Any, error: BaseException) -> None:
    """Observe an exception a stage raised (``event`` is a read-only mapping view)."""


@hookspec
def hookline_alert(alert: Any) -> None:
    """Observe an alert: a figure of the run crossed a threshold (raised by hookline-monitoring)."""


# -- extension points ------------------------------------------------------------------------


@hookspec
def hookline_sources() -> Mapping[str, type[Source]]:
    """Return source classes by URL scheme or file suffix (``{"kafka": KafkaSource}``,
    ``{".csv": CsvSource}``; see ``hookline.sources``)."""


@hookspec
def hookline_sinks() -> Mapping[str, type[Sink]]:
    """Return sink classes by ``--db`` URL scheme (``{"s3": S3Sink}``; see ``hookline.sinks``)."""


@hookspec
def hookline_aggregations() -> Sequence[Any]:
    """Return fresh partial aggregations (``table``, ``columns``, ``update(event)``,
    ``merge(other)``, ``rows()``; see ``hookline.aggregates``), called once per batch."""


@hookspec
def hookline_commands(cli: Any) -> None:
    """Add subcommands to the ``hookline`` command: ``cli`` is its argparse subparsers object;
    a command's ``handler(args)`` returns the exit status."""


def phase_hook(phase: str) -> str:
    """The hook name of a phase: ``validate`` -> ``hookline_validate``."""
    return f"hookline_{phase}"
