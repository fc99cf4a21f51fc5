"""Alert thresholds, checked on each committed batch's figures.

An alert fires once per breach: when a figure goes over its threshold (under, for the
events-per-second floor), not again while it stays there, and again after a batch where it
came back. Each threshold is one setting; a per-stage threshold is checked for each stage that
ran in the batch, a stage's own value (``stage_max_*``) taking the place of the common one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from hookline_monitoring._figures import BatchFigures, StageFigures
from hookline_monitoring._settings import Settings

log = logging.getLogger("hookline.monitoring")


@dataclass(frozen=True)
class Alert:
    """A threshold a batch's figure crossed: what ``hookline_alert`` implementations receive.

    ``name`` is the threshold's setting, ``stage`` the stage for a per-stage one (else None),
    ``value`` and ``threshold`` are in the setting's unit, ``message`` says it with the
    figures, ``batch`` is the batch's number in the run (from 1).
    """

    name: str
    stage: str | None
    value: float
    threshold: float
    message: str
    batch: int
    run_id: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pct(share: float) -> str:
    return f"{share:.1%}"


class Alerts:
    """The thresholds of a run and which of them are breached now."""

    def __init__(self, settings: Settings, run_id: str) -> None:
        self.settings = settings
        self.run_id = run_id
        self.breached: set[tuple[str, str | None]] = set()
        #: Every alert of the run, in order.
        self.fired: list[Alert] = []

    @property
    def names(self) -> list[str]:
        """The thresholds that are set."""
        settings = self.settings
        return [name for name, on in (
            ("max_dead_letter_ratio", settings.max_dead_letter_ratio is not None),
            ("max_stage_error_rate", settings.max_stage_error_rate is not None
             or bool(settings.stage_max_error_rate)),
            ("max_stage_p99_ms", settings.max_stage_p99_ms is not None
             or bool(settings.stage_max_p99_ms)),
            ("min_events_per_s", settings.min_events_per_s is not None)) if on]

    def check(self, batch: BatchFigures) -> list[Alert]:
        """The alerts this batch fires; a breach that ends is logged as resolved."""
        fired = []
        for name, stage, value, threshold, breached, message in self._figures(batch):
            key = (name, stage)
            if breached and key not in self.breached:
                self.breached.add(key)
                alert = Alert(name, stage, value, threshold, message, batch.number, self.run_id)
                fired.append(alert)
                log.warning("alert: %s", message,
                            extra={"run_id": self.run_id, "alert": alert.as_dict()})
            elif not breached and key in self.breached:
                self.breached.discard(key)
                log.info("%s is back within %s in batch %d",
                         stage or "the run", name, batch.number,
                         extra={"run_id": self.run_id, "alert": name, "stage": stage})
        self.fired += fired
        return fired

    def _figures(self, batch: BatchFigures
                 ) -> Iterator[tuple[str, str | None, float, float, bool, str]]:
        """(threshold name, stage, value, threshold, breached, message) of each figure that
        has a threshold and a value in this batch."""
        settings, number = self.settings, batch.number
        limit = settings.max_dead_letter_ratio
        if limit is not None and batch.read:
            value = batch.dead_letter_ratio
            yield ("max_dead_letter_ratio", None, value, limit, value > limit,
                   f"dead-letter ratio {_pct(value)} in batch {number} ({batch.dead_lettered:,} "
                   f"of {batch.read:,} events), over max_dead_letter_ratio {_pct(limit)}")
        floor = settings.min_events_per_s
        if floor is not None and batch.read and batch.seconds > 0:
            value = batch.events_per_s
            yield ("min_events_per_s", None, value, floor, value < floor,
                   f"{value:,.0f} events/s in batch {number} ({batch.read:,} events in "
                   f"{batch.seconds:.2f} s), under min_events_per_s {floor:,}")
        for stage in batch.stages.values():
            yield from self._stage_figures(stage, number)

    def _stage_figures(self, stage: StageFigures, number: int
                       ) -> Iterator[tuple[str, str | None, float, float, bool, str]]:
        settings, name = self.settings, stage.name
        limit = settings.stage_max_error_rate.get(name, settings.max_stage_error_rate)
        if limit is not None:
            value = stage.error_rate
            yield ("max_stage_error_rate", name, value, limit, value > limit,
                   f"stage {name}: error rate {_pct(value)} in batch {number} "
                   f"({stage.errors:,} errors in ~{stage.calls:,} calls), over "
                   f"max_stage_error_rate {_pct(limit)}")
        limit = settings.stage_max_p99_ms.get(name, settings.max_stage_p99_ms)
        p99 = stage.latency_ms(0.99)
        if limit is not None and p99 is not None:
            yield ("max_stage_p99_ms", name, p99, limit, p99 > limit,
                   f"stage {name}: p99 latency {p99:.4g} ms in batch {number} (of "
                   f"{stage.latency.count:,} sampled calls), over max_stage_p99_ms {limit:,} ms")
