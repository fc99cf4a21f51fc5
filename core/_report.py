"""The run report: what came in, where each event went, and how the run ended.

The counts always add up: ``read == accepted + dropped + dead_lettered + duplicates``. The
report is printed at the end of ``hookline run`` (:meth:`Report.format`, or JSON with
:meth:`Report.as_dict`), stored in the database's ``runs`` table, and read back by
``hookline runs RUN_ID`` (:meth:`Report.from_dict`). What it stores stays small whatever the
input: reasons are grouped into categories (at most :data:`MAX_REASONS`), inputs are listed up
to :data:`MAX_INPUTS`, and nothing in it is per event.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._stats import Stats

__all__ = ["EXIT_ABORTED", "EXIT_ALERT", "EXIT_BROKEN_PLUGINS", "EXIT_DATABASE",
           "EXIT_DEAD_LETTERS", "EXIT_INTERRUPTED", "EXIT_PROBLEM", "EXIT_USAGE", "MAX_INPUTS",
           "MAX_REASONS", "OTHER_REASONS", "Report", "Rollouts", "Run", "ended_by"]

#: The exit status of each way a command ends (docs/cli.md). A run stores its own in its
#: report, so ``hookline runs`` shows how each past run ended.
EXIT_PROBLEM, EXIT_USAGE, EXIT_DEAD_LETTERS, EXIT_ABORTED = 1, 2, 3, 4
EXIT_BROKEN_PLUGINS, EXIT_DATABASE, EXIT_ALERT, EXIT_INTERRUPTED = 5, 6, 7, 130

#: Dead-letter reason categories a report keeps; the rest are counted under OTHER_REASONS.
MAX_REASONS = 50
OTHER_REASONS = "(other reasons)"
#: Inputs a stored report lists one by one (a glob may name thousands of files).
MAX_INPUTS = 50

#: Where dead letters written before any stage come from, in the order a line meets them.
_BEFORE_STAGES = ("parse", "schema", "dedupe")


def ended_by(error: BaseException) -> tuple[str, int]:
    """The status words and exit status of a run that ``error`` ended."""
    from .errors import AlertFailed, DatabaseError, RunAborted, UsageError

    if isinstance(error, RunAborted):
        return f"aborted by {error.stage}", EXIT_ABORTED
    if isinstance(error, AlertFailed):
        return "stopped on an alert", EXIT_ALERT
    if isinstance(error, DatabaseError):
        return "database error", EXIT_DATABASE
    if isinstance(error, UsageError):
        return "usage error", EXIT_USAGE
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED
    return f"failed: {type(error).__name__}", EXIT_PROBLEM


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
    """Counts of one run: ``read == accepted + dropped + dead_lettered + duplicates``."""

    run_id: str = ""
    read: int = 0
    accepted: int = 0
    dropped: int = 0
    #: Lines stored in ``dead_letters`` for a reason of their own (duplicates are not here).
    dead_lettered: int = 0
    #: Lines whose ``event_id`` was stored already (or came earlier in the run): set aside
    #: before any stage, counted here, and stored in ``dead_letters`` only when
    #: ``duplicates_stored`` (``--duplicates dead-letter``).
    duplicates: int = 0
    duplicates_stored: bool = False
    duration_s: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)
    stages: Counter[str] = field(default_factory=Counter)
    plugins: list[dict[str, Any]] = field(default_factory=list)
    #: Plugins add their own summaries here in ``hookline_run_end``.
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    interrupted: bool = False
    #: Stages taken out of the run by the circuit breaker, in order.
    quarantined: list[str] = field(default_factory=list)
    #: Per stage, in pipeline order: calls, errors, rejected, dropped, p50/p99 latency (see
    #: hookline._stats).
    stage_stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Per phase with stages: the sampled latency of the whole phase for one event
    #: (``timed``, ``mean_us``, ``p50_us``, ``p99_us``, ``max_us``; see hookline._stats).
    phase_stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Where the batches ran: ``name`` (inline, process, dask) and what that executor tells
    #: (dask: ``scheduler``, ``cluster``, ``workers``, ``events_by_worker``, ``dashboard``).
    executor: dict[str, Any] = field(default_factory=dict)
    #: Each input: ``name``, ``from_line`` (committed before this run), ``to_line`` (after
    #: it) and ``read`` (the events this run read from it).
    inputs: list[dict[str, Any]] = field(default_factory=list)
    #: The flags the run evaluated: ``name``, ``value``, ``source``, ``key``, ``evaluations``,
    #: ``on``, and for a rollout ``users`` and ``users_on`` (of the accepted events' users).
    flags: list[dict[str, Any]] = field(default_factory=list)
    #: How the run ended (``completed``, ``interrupted``, ``aborted by STAGE``…) and the exit
    #: status ``hookline run`` gives for it.
    status: str = ""
    exit_status: int = 0
    started_at: float = 0.0
    #: The inputs whose events ``--reprocess`` deleted before the run read them again.
    reprocessed: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[dict[str, Any]]:
        """The selected plugins that failed to load, which the run went without
        (``--allow-broken-plugins``): the first thing the report says."""
        return [p for p in self.plugins if p["status"] == "failed"]

    @property
    def balanced(self) -> bool:
        return self.read == self.accepted + self.dropped + self.dead_lettered + self.duplicates

    @property
    def dead_letter_ratio(self) -> float:
        return self.dead_lettered / self.read if self.read else 0.0

    def add_reason(self, category: str, count: int = 1) -> None:
        """Count ``count`` dead letters under ``category``; past :data:`MAX_REASONS`
        categories, a new one is counted under :data:`OTHER_REASONS` (a report's size does
        not grow with the input)."""
        reasons = self.reasons
        if category not in reasons and len(reasons) >= MAX_REASONS:
            category = OTHER_REASONS
        reasons[category] += count

    def as_dict(self) -> dict[str, Any]:
        """The whole report as JSON-ready data (``--format json``; what ``runs`` stores)."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "exit_status": self.exit_status,
            "started_at": round(self.started_at, 3),
            "missing_plugins": [{key: p[key] for key in ("name", "distribution", "version",
                                                         "error")} for p in self.missing],
            "inputs": self.inputs[:MAX_INPUTS],
            "inputs_total": len(self.inputs),
            "reprocessed": self.reprocessed,
            "read": self.read,
            "accepted": self.accepted,
            "dropped": self.dropped,
            "dead_lettered": self.dead_lettered,
            "duplicates": self.duplicates,
            "duplicates_stored": self.duplicates_stored,
            "balanced": self.balanced,
            "duration_s": round(self.duration_s, 3),
            "dead_letter_reasons": dict(self.reasons.most_common()),
            "dead_letters_by_stage": dict(self.stages.most_common()),
            "plugins": self.plugins,
            "sections": self.sections,
            "interrupted": self.interrupted,
            "quarantined": self.quarantined,
            "stages": self.stage_stats,
            "phases": self.phase_stats,
            "flags": self.flags,
            "executor": self.executor,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        """The report :meth:`as_dict` gave (as ``runs`` stored it); keys a run of an older
        hookline did not store take their defaults."""
        report = cls()
        for name in ("run_id", "status", "exit_status", "started_at", "read", "accepted",
                     "dropped", "dead_lettered", "duplicates", "duplicates_stored",
                     "duration_s", "plugins", "sections", "interrupted", "quarantined",
                     "executor", "inputs", "flags", "reprocessed"):
            if name in data:
                setattr(report, name, data[name])
        report.reasons = Counter(data.get("dead_letter_reasons", {}))
        report.stages = Counter(data.get("dead_letters_by_stage", {}))
        report.stage_stats = dict(data.get("stages", {}))
        report.phase_stats = dict(data.get("phases", {}))
        return report

    def where(self, *, short: bool = False) -> str:
        """Where the batches ran, for the report (``short``: for the progress line), or ""
        for an executor that has nothing to tell (inline)::

            executor dask on tcp://127.0.0.1:40123 (LocalCluster, 2 workers)
        """
        info = self.executor
        counts: dict[str, int] = info.get("events_by_worker") or {}
        if "scheduler" not in info:
            return ""
        if short:
            shares = " + ".join(f"{count:,}" for count in counts.values())
            return f"  [{info['name']}, {info.get('workers', 0)} workers: {shares}]"
        text = (f"executor {info['name']} on {info['scheduler']} ({info.get('cluster', '')}, "
                f"{info.get('workers', 0)} workers)")
        if info.get("dashboard"):
            text += f", dashboard {info['dashboard']}"
        return text + "".join(f"\n    {worker:<34} {count:>10,} events"
                              for worker, count in counts.items())

    def prometheus(self, stats: Stats | None = None) -> str:
        """The run's figures in the Prometheus text format, what ``--metrics-file`` writes:
        ``stats``' per-stage families, the events by outcome, the dead letters by reason
        category, and what ``timed()`` behaviours measured (when any module uses them).

        Written by :mod:`hookline.metrics`' writers; the counts only grow during a run, so
        the text taken after any batch is a valid scrape of counters.
        """
        from .metrics import prometheus_counter

        text = stats.prometheus() if stats is not None else ""
        text += prometheus_counter(
            "hookline_events_total", "Events read, by where they ended (the four add up to "
            "the events read).", {"accepted": self.accepted, "dropped": self.dropped,
                                  "dead_lettered": self.dead_lettered,
                                  "duplicate": self.duplicates}, label="outcome")
        text += prometheus_counter(
            "hookline_dead_letters_total", "Dead letters, by reason category (as the report "
            "groups them).", dict(sorted(self.reasons.items())), label="reason")
        behaviors = sys.modules.get("hookline.behaviors")
        if behaviors is not None and any(  # a timed() behaviour recorded a call
                series["calls"] or series["errors"]
                for series in behaviors.DEFAULT_METRICS.snapshot().values()):
            text += behaviors.DEFAULT_METRICS.prometheus_text(prefix="hookline_timed")
        return text

    @property
    def nothing_new(self) -> bool:
        """Whether every input was committed to its end before: the run read nothing (its
        report is then a line per input)."""
        return (not self.read and bool(self.inputs) and not self.missing
                and len(self.unchanged()) == len(self.inputs))

    def unchanged(self) -> list[str]:
        """A line for each input the run found nothing new in (all committed before)."""
        return [f"nothing new in {item['name']}: committed up to line {item['to_line']:,}"
                for item in self.inputs if not item["read"] and item["from_line"]]

    def format(self) -> str:
        """The report as printed at the end of ``hookline run``, in the order the events
        went: the inputs, the outcomes, the stages in pipeline order, the reasons, the flags,
        then the plugins' sections. A run that found nothing new says so in a line per
        input."""
        unchanged = self.unchanged()
        if self.nothing_new:
            return "\n".join(f"hookline run {self.run_id}: {line}" for line in unchanged)
        rate = self.read / self.duration_s if self.duration_s > 0 else 0.0
        lines = [
            f"hookline run {self.run_id}: {self.read:,} events read in {self.duration_s:.2f} s"
            f" ({rate:,.0f}/s)" + ("  [interrupted: resumable]" if self.interrupted else ""),
            *(f"  {line}" for line in unchanged),
            *(f"  reprocessed {name}: its earlier events, dead letters, aggregates and state "
              "were deleted first" for name in self.reprocessed),
            *(f"  MISSING plugin {p['name']} ({_origin(p)}): failed to load, the run went on "
              f"without it: " + str(p["error"]).replace("\n", "\n      ") for p in self.missing),
            f"  accepted       {self.accepted:>10,}",
            f"  dropped        {self.dropped:>10,}",
            f"  dead-lettered  {self.dead_lettered:>10,}",
            f"  duplicates     {self.duplicates:>10,}" + (
                "  (stored in dead_letters: --duplicates dead-letter)"
                if self.duplicates and self.duplicates_stored else
                "  (event_id stored before: counted, not stored again)"
                if self.duplicates else ""),
            f"  {'= read' if self.balanced else '!= read (BUG)'}         {self.read:>10,}",
        ]
        if self.where():
            lines.append(f"  {self.where()}")
        if self.stages:
            lines.append("  dead letters by stage:")
            lines += [f"    {stage:<28} {count:>10,}"
                      for stage, count in _in_order(self.stages, self.stage_stats)]
        if self.stage_stats:
            lines.append("  stages, in pipeline order:")
            lines.append(f"    {'stage':<28}{'calls':>11}{'errors':>8}{'rejected':>10}"
                         f"{'dropped':>9}{'p50 µs':>9}{'p99 µs':>9}")
            for name, s in self.stage_stats.items():
                calls = f"{'' if s['calls_exact'] else '~'}{s['calls']:,}"
                lines.append(f"    {name:<28}{calls:>11}{s['errors']:>8,}{s['rejected']:>10,}"
                             f"{s.get('dropped', 0):>9,}{_us(s['p50_us']):>9}"
                             f"{_us(s['p99_us']):>9}"
                             + ("  QUARANTINED" if s["quarantined"] else ""))
            if not all(s["calls_exact"] for s in self.stage_stats.values()):
                lines.append("    (~: estimated from the timed calls: the calls were not counted)")
        if self.reasons:
            lines.append("  top dead-letter reasons:")
            for reason, count in self.reasons.most_common(8):
                lines.append(f"    {count:>10,}  {reason[:100]}")
            if len(self.reasons) > 8:
                rest = sum(count for _, count in self.reasons.most_common()[8:])
                lines.append(f"    {rest:>10,}  ({len(self.reasons) - 8} more categories)")
        if self.flags:
            lines.append("  flags:")
            width = max(len(flag["name"]) for flag in self.flags)
            lines += [f"    {flag['name']:<{width}}  {_flag_line(flag)}" for flag in self.flags]
        loaded = [p["name"] for p in self.plugins if p["status"] == "loaded"]
        lines.append(f"  plugins: {', '.join(loaded) or 'none'}"
                     + (f"; missing: {', '.join(p['name'] for p in self.missing)}"
                        if self.missing else ""))
        for name, section in sorted(self.sections.items()):
            lines.append(f"  [{name}]")
            lines += [f"    {line}" for line in _section(section)]
        return "\n".join(lines)


class Rollouts:
    """The users behind a run's rollout flags, for the report's share of users.

    A rollout is decided per user (per value of the flag's key field), so the share that
    counts is of users, not of events: a few busy users in the rollout make the share of
    events stray far from the target. The run feeds each committed batch's rows; the distinct
    keys of the accepted events are kept, at most :attr:`LIMIT` per key field (past it the
    share is of the first ones seen: the decision is a hash, so they are a fair sample).
    """

    LIMIT = 200_000

    def __init__(self, rollouts: Iterable[tuple[str, float, str]], columns: Sequence[str]
                 ) -> None:
        #: (flag, share, key field) of each rollout whose key is a column of the rows.
        self.rollouts = [(name, share, key) for name, share, key in rollouts if key in columns]
        self.keys: dict[str, set[Any]] = {key: set() for _, _, key in self.rollouts}
        self._at = {key: list(columns).index(key) for key in self.keys}

    def add(self, rows: Sequence[tuple[Any, ...]]) -> None:
        for key, seen in self.keys.items():
            if len(seen) < self.LIMIT:
                at = self._at[key]
                seen.update(row[at] for row in rows)

    def shares(self) -> dict[str, tuple[int, int]]:
        """``{flag: (users on, users)}`` of each rollout."""
        from .flags import bucket

        found = {}
        for name, share, key in self.rollouts:
            users = self.keys[key]
            found[name] = (sum(bucket(name, user) < share for user in users), len(users))
        return found


def _in_order(counts: Counter[str], stages: Mapping[str, Any]) -> list[tuple[str, int]]:
    """``counts`` by stage in the order a line meets them: parse, schema, dedupe, then the
    stages in pipeline order, then any other."""
    order = {name: at for at, name in enumerate((*_BEFORE_STAGES, *stages))}
    return sorted(counts.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))


def _flag_line(flag: Mapping[str, Any]) -> str:
    """``on for 24.4% of users (61 of 250) and 29.5% of events (2,950 of 10,000); rollout
    25% by user_id, from config`` (a rollout) or ``off for all 467 evaluations, from
    default``."""
    value, evaluations, on = flag["value"], flag["evaluations"], flag["on"]
    origin = f"from {flag['source']}"
    if isinstance(value, bool):
        return f"{'on' if value else 'off'} for all {evaluations:,} evaluations, {origin}"
    events = f"{_share(on, evaluations)} of events ({on:,} of {evaluations:,})"
    if flag.get("users"):
        users = (f"{_share(flag['users_on'], flag['users'])} of users "
                 f"({flag['users_on']:,} of {flag['users']:,}) and ")
    else:
        users = ""
    return f"on for {users}{events}; rollout {value:.0%} by {flag['key']}, {origin}"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _section(section: Mapping[str, Any]) -> list[str]:
    """A plugin's section as lines: a table when every value is a mapping with the same keys
    (a row per key), else ``key: value`` with values formatted (:func:`_value`)."""
    values = list(section.values())
    if values and all(isinstance(value, Mapping) for value in values):
        columns = list(values[0])
        if all(list(value) == columns for value in values):
            width = max(len(str(key)) for key in section)
            cells = [[_value(value[column]) for column in columns] for value in values]
            widths = [max(len(str(column)), *(len(row[at]) for row in cells))
                      for at, column in enumerate(columns)]
            head = "  ".join(f"{column:>{w}}" for column, w in zip(columns, widths))
            lines = [f"{'':<{width}}  {head}"]
            for key, row in zip(section, cells):
                lines.append(f"{key!s:<{width}}  "
                             + "  ".join(f"{cell:>{w}}" for cell, w in zip(row, widths)))
            return lines
    return [f"{key}: {_value(value)}" for key, value in section.items()]


def _value(value: Any) -> str:
    """A value as a person reads it: thousands separated, floats to 3 significant digits
    (at least the units), mappings as ``key value, …``, lists comma-separated."""
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "-"}[value]
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {_value(item)}" for key, item in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(item) for item in value) or "-"
    return str(value)


def _origin(plugin: dict[str, Any]) -> str:
    if plugin["distribution"]:
        return f"{plugin['distribution']} {plugin['version']}"
    return str(plugin["module"])


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"
