"""``hookline ranking experiment``: how each scorer's users did, read from a database.

Per variant (the ``score_model`` of the stored events): its users, its events, the mean
score, and the purchase conversion, the share of its users with at least one purchase among
their events of that variant. The user is the unit: the flag puts users, not events, in the
experiment, and one user's events are not independent of each other.

The 95 % confidence interval of a conversion is Wilson's score interval, which stays inside
[0, 1] and is right for small counts and for shares near 0 or 1, where the textbook
``p ± 1.96·sqrt(p(1-p)/n)`` is not. The interval of the difference between two conversions is
Newcombe's hybrid score interval (method 10 of Newcombe 1998), built from the two Wilson
intervals: for ``d = p1 - p2``, ``[d - sqrt((p1-l1)² + (u2-p2)²), d + sqrt((u1-p1)² +
(p2-l2)²)]``.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from hookline_ranking._features import PURCHASE
from hookline_ranking._fields import CONTROL, FRESHNESS

#: The standard normal quantile of a two-sided 95 % interval.
Z95 = 1.959963984540054


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval of the share ``successes / trials`` (``trials`` > 0)."""
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(p1: float, interval1: tuple[float, float], p2: float,
             interval2: tuple[float, float]) -> tuple[float, float]:
    """Newcombe's hybrid score interval of ``p1 - p2``, from each share's Wilson interval."""
    (l1, u1), (l2, u2) = interval1, interval2
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


@dataclass(frozen=True)
class Variant:
    """One scorer's share of the experiment."""

    name: str
    users: int
    events: int
    mean_score: float
    #: Users with at least one purchase among their events of this variant.
    converted: int
    conversion: float
    conversion_low: float
    conversion_high: float


@dataclass(frozen=True)
class Difference:
    """``treatment`` minus ``control``: mean score, and conversion with its interval."""

    treatment: str
    control: str
    mean_score: float
    conversion: float
    conversion_low: float
    conversion_high: float


@dataclass(frozen=True)
class Readout:
    """What ``hookline ranking experiment`` prints."""

    database: str
    variants: list[Variant]
    difference: Difference | None
    #: Users with events of both variants (the rollout changed during the experiment).
    users_in_both: int
    #: Stored events without a ``score_model`` (stored before the plugin scored them).
    unscored_events: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        lines = [f"ranking experiment in {self.database} (95 % confidence intervals)"]
        if not self.variants:
            lines.append("no scored events: run events through hookline with hookline-ranking "
                         "installed first")
            return "\n".join(lines)
        lines.append(f"{'variant':<10} {'users':>9} {'events':>11} {'mean score':>11} "
                     f"{'conversion':>11}  95 % CI")
        for v in self.variants:
            lines.append(f"{v.name:<10} {v.users:>9,} {v.events:>11,} {v.mean_score:>11.6f} "
                         f"{_percent(v.conversion):>11}  [{_percent(v.conversion_low)}, "
                         f"{_percent(v.conversion_high)}]")
        d = self.difference
        if d is None:
            lines.append("difference: needs events of both control and freshness "
                         "(turn the flag ranking.experimental on for a share of users)")
        else:
            lines.append(f"{d.treatment} - {d.control}: mean score {d.mean_score:+.6f}, "
                         f"conversion {_points(d.conversion)} points (95 % CI "
                         f"{_points(d.conversion_low)} to {_points(d.conversion_high)})")
        if self.users_in_both:
            lines.append(f"warning: {self.users_in_both:,} users have events of both variants "
                         "(the rollout changed during the experiment); each counts in both")
        if self.unscored_events:
            lines.append(f"note: {self.unscored_events:,} events have no score_model and are "
                         "not counted")
        return "\n".join(lines)


def _percent(share: float) -> str:
    return f"{100 * share:.2f} %"


def _points(share: float) -> str:
    return f"{100 * share:+.2f}"


def read(connection: sqlite3.Connection, database: str) -> Readout:
    """The experiment's readout from the ``events`` table of ``connection``."""
    converted = dict(connection.execute(
        "SELECT score_model, COUNT(DISTINCT user_id) FROM events "
        "WHERE score_model IS NOT NULL AND kind = ? GROUP BY score_model", (PURCHASE,)))
    variants = []
    for name, users, events, mean_score in connection.execute(
            "SELECT score_model, COUNT(DISTINCT user_id), COUNT(*), AVG(score) FROM events "
            "WHERE score_model IS NOT NULL GROUP BY score_model"):
        bought = converted.get(name, 0)
        low, high = wilson(bought, users)
        variants.append(Variant(name, users, events, mean_score or 0.0, bought, bought / users,
                                low, high))
    order = {CONTROL: 0, FRESHNESS: 1}
    variants.sort(key=lambda v: (order.get(v.name, 2), v.name))
    by_name = {v.name: v for v in variants}
    difference = None
    if CONTROL in by_name and FRESHNESS in by_name:
        t, c = by_name[FRESHNESS], by_name[CONTROL]
        low, high = newcombe(t.conversion, (t.conversion_low, t.conversion_high),
                             c.conversion, (c.conversion_low, c.conversion_high))
        difference = Difference(FRESHNESS, CONTROL, t.mean_score - c.mean_score,
                                t.conversion - c.conversion, low, high)
    (both,), (unscored,) = (
        connection.execute("SELECT COUNT(*) FROM (SELECT user_id FROM events WHERE score_model "
                           "IS NOT NULL GROUP BY user_id HAVING COUNT(DISTINCT score_model) > 1)"
                           ).fetchone(),
        connection.execute("SELECT COUNT(*) FROM events WHERE score_model IS NULL").fetchone())
    return Readout(database, variants, difference, both, unscored)
