"""``fraud.amount_limit``: one event's amount against a limit for its kind and its currency.

``max_amount`` holds a limit per kind, in ``limits_currency`` (the event's amount converted
with ``rates``); ``max_amount_by_currency`` a limit per currency, in that currency's own units.
An event over either is refused:

    amount_limit: purchase of 25,000.00 EUR (27,173.91 USD) for user u42, limit 5,000.00 USD
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from hookline import fields

from hookline_fraud._money import Money, MoneySettings, money
from hookline_fraud._rule import Rule

__all__ = ["DEFAULT_MAX_AMOUNT", "AmountLimit"]

#: The largest purchase and the largest refund one event may carry, in ``limits_currency``.
DEFAULT_MAX_AMOUNT: MappingProxyType[str, float] = MappingProxyType(
    {"purchase": 5_000.0, "refund": 5_000.0})

_LIMIT = fields.Number(minimum=0, exclusive_minimum=True)


class AmountLimit(Rule, phase="validate", name="amount_limit"):
    """Reject an event whose amount is over the limit of its kind or of its currency."""

    class Settings(MoneySettings):
        """``max_amount``, ``max_amount_by_currency`` (and the money settings)."""

        max_amount = fields.Mapping(
            keys=fields.String(min_length=1), values=_LIMIT,
            default=lambda: dict(DEFAULT_MAX_AMOUNT),
            description="per kind, the largest amount of one event, in limits_currency")
        max_amount_by_currency = fields.Mapping(
            keys=fields.String(pattern="[A-Z]{3}"), values=_LIMIT, default=dict,
            description="per currency, the largest amount of one event, in its own units")

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        self._money = Money(self.settings)
        self._by_kind: dict[str, float] = dict(self.settings.max_amount)
        self._by_currency: dict[str, float] = dict(self.settings.max_amount_by_currency)

    def process(self, event: Any) -> None:
        """Refuse the event when its amount is over a limit; else raise its risk when the
        amount came close to one."""
        amount = event.amount
        if not amount:
            return
        currency = event.currency
        by_currency = self._by_currency.get(currency)
        by_kind = self._by_kind.get(event.kind)
        ratio = 0.0
        if by_currency is not None:
            if amount > by_currency:
                self.refuse(event, f"{event.kind} of {money(amount, currency)} for user "
                            f"{event.user_id}, limit {money(by_currency, currency)}")
                return
            ratio = amount / by_currency
        if by_kind is not None:
            value = self._money.convert(amount, currency)
            if value > by_kind:
                self.refuse(event, f"{event.kind} of {self._money.show(amount, currency)} for "
                            f"user {event.user_id}, limit {money(by_kind, self._money.currency)}")
                return
            ratio = max(ratio, value / by_kind)
        self.came_close(event, ratio)
