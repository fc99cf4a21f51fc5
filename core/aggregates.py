"""Aggregates: per-user and per-kind counts, amount sums, min/max and score means.

Each is a partial that merges with another in any order (associative and commutative), so
batches, worker processes and Dask partitions can each build their own and combine them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["AGGREGATE_TABLES", "Aggregates", "GroupStats"]

#: table name -> the event field it groups by
AGGREGATE_TABLES = {"agg_by_user": "user_id", "agg_by_kind": "kind"}


@dataclass
class GroupStats:
    """Running totals for one group."""

    count: int = 0
    amount_sum: float = 0.0
    amount_min: float | None = None
    amount_max: float | None = None
    score_sum: float = 0.0
    score_count: int = 0

    def add(self, amount: float, score: float | None) -> None:
        self.count += 1
        self.amount_sum += amount
        if self.amount_min is None or amount < self.amount_min:
            self.amount_min = amount
        if self.amount_max is None or amount > self.amount_max:
            self.amount_max = amount
        if score is not None:
            self.score_sum += score
            self.score_count += 1

    def merge(self, other: GroupStats) -> None:
        self.count += other.count
        self.amount_sum += other.amount_sum
        for name, pick in (("amount_min", min), ("amount_max", max)):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None:
                setattr(self, name, theirs if mine is None else pick(mine, theirs))
        self.score_sum += other.score_sum
        self.score_count += other.score_count

    @property
    def score_mean(self) -> float | None:
        return self.score_sum / self.score_count if self.score_count else None


class Aggregates:
    """The partial aggregates of some events, one table of groups per grouping field."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Any, GroupStats]] = {t: {} for t in AGGREGATE_TABLES}

    def add(self, event: Any) -> None:
        values = event.__dict__
        amount = values.get("amount") or 0
        score = values.get("score")
        for table, key_field in AGGREGATE_TABLES.items():
            groups = self.tables[table]
            key = values[key_field]
            stats = groups.get(key)
            if stats is None:
                stats = groups[key] = GroupStats()
            stats.add(amount, score)

    def merge(self, other: Aggregates) -> Aggregates:
        for table, groups in other.tables.items():
            mine = self.tables.setdefault(table, {})
            for key, stats in groups.items():
                if key in mine:
                    mine[key].merge(stats)
                else:
                    mine[key] = GroupStats(**vars(stats))
        return self

    def rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        for key, s in self.tables[table].items():
            yield (key, s.count, s.amount_sum, s.amount_min, s.amount_max, s.score_sum,
                   s.score_count)
