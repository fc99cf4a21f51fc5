"""What the executor tests' own plugins share: an aggregation of a plugin's own, which the
process and Dask executors must merge from their workers' partials as inline computes it."""

from __future__ import annotations

from string import Template

_BY_CURRENCY = Template('''
class ByCurrency:
    """Events and the largest amount per currency: an aggregation the plugin adds."""

    table = "$table"
    columns = ("currency", "events", "largest")
    combine = {"largest": "max"}

    def __init__(self):
        self.groups = {}

    def update(self, event):
        events, largest = self.groups.get(event.currency, (0, 0.0))
        self.groups[event.currency] = (events + 1, max(largest, event.amount))

    def merge(self, other):
        for key, (events, largest) in other.groups.items():
            mine = self.groups.get(key, (0, 0.0))
            self.groups[key] = (mine[0] + events, max(mine[1], largest))
        return self

    def rows(self):
        return [(key, *values) for key, values in self.groups.items()]


@hookline.hookimpl
def hookline_aggregations():
    return [ByCurrency()]
''')


def by_currency(table: str) -> str:
    """A plugin module's source text (it imports ``hookline``) for an aggregation into
    ``table``: events and the largest amount per currency, the largest merged by ``max``."""
    return _BY_CURRENCY.substitute(table=table)
