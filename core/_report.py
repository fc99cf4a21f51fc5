"""The run report: what came in and where each event went. The counts always add up."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Report", "Run"]


@dataclass
class Run:
    """What lifecycle hooks receive about the run in progress."""

    run_id: str
    inputs: list[str]
    db: str
    config: dict[str, Any]
    started_at: float = field(default_factory=time.time)
    #: Free space for plugins (``run.state["monitoring"] = ...``).
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """Counts of one run: ``read == accepted + dropped + dead_lettered``."""

    run_id: str = ""
    read: int = 0
    accepted: int = 0
    dropped: int = 0
    dead_lettered: int = 0
    duration_s: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)
    stages: Counter[str] = field(default_factory=Counter)
    plugins: list[dict[str, Any]] = field(default_factory=list)
    #: Plugins add their own summaries here in ``hookline_run_end``.
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    interrupted: bool = False
    #: Stages taken out of the run by the circuit breaker, in order.
    quarantined: list[str] = field(default_factory=list)
    #: Per stage: calls, errors, rejected, dropped, p50/p99 latency (see hookline._stats).
    stage_stats: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def missing(self) -> list[dict[str, Any]]:
        """The selected plugins that failed to load, which the run went without
        (``--allow-broken-plugins``): the first thing the report says."""
        return [p for p in self.plugins if p["status"] == "failed"]

    @property
    def balanced(self) -> bool:
        return self.read == self.accepted + self.dropped + self.dead_lettered

    @property
    def dead_letter_ratio(self) -> float:
        return self.dead_lettered / self.read if self.read else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "missing_plugins": [{key: p[key] for key in ("name", "distribution", "version",
                                                         "error")} for p in self.missing],
            "read": self.read,
            "accepted": self.accepted,
            "dropped": self.dropped,
            "dead_lettered": self.dead_lettered,
            "balanced": self.balanced,
            "duration_s": round(self.duration_s, 3),
            "dead_letter_reasons": dict(self.reasons.most_common()),
            "dead_letters_by_stage": dict(self.stages.most_common()),
            "plugins": self.plugins,
            "sections": self.sections,
            "interrupted": self.interrupted,
            "quarantined": self.quarantined,
            "stages": self.stage_stats,
        }

    def format(self) -> str:
        """The report as printed at the end of ``hookline run``."""
        rate = self.read / self.duration_s if self.duration_s > 0 else 0.0
        lines = [
            f"hookline run {self.run_id}: {self.read:,} events read in {self.duration_s:.2f} s"
            f" ({rate:,.0f}/s)" + ("  [interrupted: resumable]" if self.interrupted else ""),
            *(f"  MISSING plugin {p['name']} ({_origin(p)}): failed to load, the run went on "
              f"without it: " + str(p["error"]).replace("\n", "\n      ") for p in self.missing),
            f"  accepted       {self.accepted:>10,}",
            f"  dropped        {self.dropped:>10,}",
            f"  dead-lettered  {self.dead_lettered:>10,}",
            f"  {'= read' if self.balanced else '!= read (BUG)'}         {self.read:>10,}",
        ]
        if self.stages:
            lines.append("  dead letters by stage:")
            lines += [f"    {stage:<28} {count:>8,}" for stage, count in self.stages.most_common()]
        if self.stage_stats:
            lines.append(f"  {'stage':<30}{'calls':>10}{'errors':>8}{'rejected':>10}"
                         f"{'p50 µs':>9}{'p99 µs':>9}")
            for name, s in self.stage_stats.items():
                calls = f"{'' if s['calls_exact'] else '~'}{s['calls']:,}"
                lines.append(f"    {name:<28}{calls:>10}{s['errors']:>8,}{s['rejected']:>10,}"
                             f"{_us(s['p50_us']):>9}{_us(s['p99_us']):>9}"
                             + ("  QUARANTINED" if s["quarantined"] else ""))
        if self.reasons:
            lines.append("  top dead-letter reasons:")
            for reason, count in self.reasons.most_common(8):
                lines.append(f"    {count:>8,}  {reason[:100]}")
        loaded = [p["name"] for p in self.plugins if p["status"] == "loaded"]
        lines.append(f"  plugins: {', '.join(loaded) or 'none'}"
                     + (f"; missing: {', '.join(p['name'] for p in self.missing)}"
                        if self.missing else ""))
        for name, section in sorted(self.sections.items()):
            lines.append(f"  [{name}]")
            for key, value in section.items():
                lines.append(f"    {key}: {value}")
        return "\n".join(lines)


def _origin(plugin: dict[str, Any]) -> str:
    if plugin["distribution"]:
        return f"{plugin['distribution']} {plugin['version']}"
    return str(plugin["module"])


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"
