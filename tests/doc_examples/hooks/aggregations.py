"""Offer an extra aggregation (reserved: hookline does not call this hook yet)."""

from collections import Counter
from typing import Any

import hookline


class CountByCurrency:
    table = "agg_by_currency"

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def update(self, event: Any) -> None:
        self.counts[event.currency] += 1

    def merge(self, other: "CountByCurrency") -> "CountByCurrency":
        self.counts.update(other.counts)
        return self


@hookline.hookimpl
def hookline_aggregations() -> list[Any]:
    return [CountByCurrency()]
