"""``fraud.velocity``: how many events, and how much money, one user sends of one kind within a
sliding window of event time.

Each limit of ``velocity`` names a kind, a window in seconds and a ``max_count``, a
``max_amount`` (in ``limits_currency``) or both. An event is judged on the window that ends at
its own timestamp, itself included; past a limit it is refused::

    velocity: 12 purchases in 60 s for user u42, limit 10
    velocity: 10,450.00 USD in purchases in 3600 s for user u42, limit 10,000.00 USD

Every event the rule sees counts, the ones it refuses included: a burst stays refused until
it slows down, not every other event.

**State.** Per user, per kind with a limit: the timestamps, counts and amounts (in
``limits_currency``) of the events of the longest window plus the tolerance, oldest first, in
``self.state`` (hookline commits it with each batch, so it holds across batches, runs, resumed
runs and executors). Entries older than that are pruned when the user's next event of the
kind arrives, and at most :data:`MAX_ENTRIES` are kept: past it the two oldest merge into one
at the later timestamp, which can only keep money and events in a window longer, never drop
them.

**Late events.** The events of a user arrive in time order, mostly. One older than the user's
latest event of its kind by up to ``late_tolerance`` seconds is put in its place and judged on
its own window; one older than that is refused, as an event time the rule cannot trust::

    velocity: purchase at ts 1767225600000 for user u42 is 95 s older than the user's latest
    purchase, tolerance 60 s
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

import hookline
from hookline import fields

from hookline_fraud._money import Money, MoneySettings, money
from hookline_fraud._rule import Rule, plural, seconds

__all__ = ["DEFAULT_VELOCITY", "MAX_ENTRIES", "Limit", "Velocity"]

#: The defaults catch obvious abuse: more than 10 purchases by one user in a minute, more
#: than 10,000 (``limits_currency``) in purchases by one user in an hour.
DEFAULT_VELOCITY: tuple[dict[str, Any], ...] = (
    {"kind": "purchase", "window": 60, "max_count": 10},
    {"kind": "purchase", "window": 3600, "max_amount": 10_000},
)

#: The most entries kept per user and kind (see the module docstring).
MAX_ENTRIES = 500


class Limit(hookline.Settings):
    """One limit of ``velocity`` (a table of ``[[settings.fraud.velocity]]``)."""

    kind = fields.String(min_length=1)
    window = fields.Number(minimum=0, exclusive_minimum=True)
    max_count = fields.Integer(minimum=1, optional=True)
    max_amount = fields.Number(minimum=0, exclusive_minimum=True, optional=True)


#: One limit, compiled: window in ms, max_count, max_amount, the window as reasons show it.
_Compiled = tuple[int, "int | None", "float | None", str]


class Velocity(Rule, phase="validate", name="velocity"):
    """Refuse a user's event past the count or amount limit of its kind's windows."""

    class Settings(MoneySettings):
        """``velocity`` and ``late_tolerance`` (and the money settings)."""

        velocity = fields.List(
            fields.Nested(Limit), default=lambda: [dict(limit) for limit in DEFAULT_VELOCITY],
            description="limits: kind, window (s), max_count and/or max_amount")
        late_tolerance = fields.Number(minimum=0, default=60, description=(
            "seconds an event may be older than its user's latest of its kind"))

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        self._money = Money(self.settings)
        self._tolerance = round(self.settings.late_tolerance * 1000)
        self._tolerance_text = seconds(self.settings.late_tolerance)
        self._limits: dict[str, tuple[_Compiled, ...]] = {}
        for index, limit in enumerate(self.settings.velocity, 1):
            if limit.max_count is None and limit.max_amount is None:
                raise ValueError(f"velocity #{index} ({limit.kind}, {seconds(limit.window)}): "
                                 "give max_count, max_amount or both")
            compiled = (round(limit.window * 1000), limit.max_count, limit.max_amount,
                        seconds(limit.window))
            self._limits[limit.kind] = (*self._limits.get(limit.kind, ()), compiled)
        #: Per kind, how far back from a user's latest event the entries are needed.
        self._horizons = {kind: max(limit[0] for limit in limits) + self._tolerance
                          for kind, limits in self._limits.items()}

    def process(self, event: Any) -> None:
        """Count the event in its user's windows and refuse it past a limit (see the module
        docstring); else raise its risk when a window came close to its limit."""
        kind = event.kind
        limits = self._limits.get(kind)
        if limits is None:
            return
        user, ts = event.user_id, event.ts
        windows = self.state.get(user)
        if windows is None:
            windows = self.state[user] = {}
        series = windows.get(kind)
        if series is None:
            series = windows[kind] = [[], [], []]
        times, counts, amounts = series
        if times:
            latest = times[-1]
            if ts < latest - self._tolerance:
                self.refuse(event, f"{kind} at ts {ts} for user {user} is "
                            f"{seconds((latest - ts) / 1000)} older than the user's latest "
                            f"{kind}, tolerance {self._tolerance_text}")
                return  # shadowed: let through, not counted
            cut = bisect_right(times, max(ts, latest) - self._horizons[kind])
            if cut:
                del times[:cut], counts[:cut], amounts[:cut]
        value = round(self._money.convert(event.amount, event.currency), 2)
        if not times or ts >= times[-1]:
            times.append(ts)
            counts.append(1)
            amounts.append(value)
            end = len(times)
        else:  # late, within the tolerance: in its place
            end = bisect_right(times, ts)
            times.insert(end, ts)
            counts.insert(end, 1)
            amounts.insert(end, value)
            end += 1
        if len(times) > MAX_ENTRIES:  # merge the two oldest, at the later time
            counts[1] += counts[0]
            amounts[1] = round(amounts[1] + amounts[0], 2)
            del times[0], counts[0], amounts[0]
            end = max(end - 1, 1)
        self._judge(event, kind, user, ts, limits, times, counts, amounts, end)

    def _judge(self, event: Any, kind: str, user: str, ts: int,
               limits: tuple[_Compiled, ...], times: list[int], counts: list[int],
               amounts: list[float], end: int) -> None:
        """Check each limit on the window ending at ``ts`` (entries ``[start, end)``)."""
        ratio = 0.0
        for window, max_count, max_amount, shown in limits:
            start = bisect_right(times, ts - window, 0, end)
            if max_count is not None:
                count = sum(counts[start:end])
                if count > max_count:
                    self.refuse(event, f"{count} {plural(kind)} in {shown} for user {user}, "
                                f"limit {max_count}")
                    return
                ratio = max(ratio, count / max_count)
            if max_amount is not None:
                spent = sum(amounts[start:end])
                if spent > max_amount:
                    currency = self._money.currency
                    self.refuse(event, f"{money(spent, currency)} in {plural(kind)} in {shown} "
                                f"for user {user}, limit {money(max_amount, currency)}")
                    return
                ratio = max(ratio, spent / max_amount)
        self.came_close(event, ratio)
