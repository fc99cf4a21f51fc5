"""Add an aggregation: events and amount per currency, in the table agg_by_currency."""

from collections import Counter
from typing import Any

import hookline


class ByCurrency:
    table = "agg_by_currency"
    columns = ("currency", "events", "amount", "largest")
    combine = {"largest": "max"}  # the other columns add up ("sum", the default)

    def __init__(self) -> None:
        self.events: Counter[str] = Counter()
        self.amount: Counter[str] = Counter()
        self.largest: dict[str, float] = {}

    def update(self, event: Any) -> None:
        self.events[event.currency] += 1
        self.amount[event.currency] += event.amount
        self.largest[event.currency] = max(self.largest.get(event.currency, 0.0), event.amount)

    def merge(self, other: "ByCurrency") -> "ByCurrency":
        self.events.update(other.events)
        self.amount.update(other.amount)
        for currency, amount in other.largest.items():
            self.largest[currency] = max(self.largest.get(currency, 0.0), amount)
        return self

    def rows(self) -> list[tuple[str, int, float, float]]:
        return [(currency, count, self.amount[currency], self.largest[currency])
                for currency, count in self.events.items()]


@hookline.hookimpl
def hookline_aggregations() -> list[Any]:
    return [ByCurrency()]  # a fresh, empty partial each time: one per batch
