"""``fraud.sequence``: a refund larger than what the user has bought so far.

Per user, ``self.state`` keeps what can still be refunded: the user's purchases so far, in
``limits_currency``, less the refunds let through. A refund over it is refused::

    sequence: refund of 80.00 USD for user u42 is larger than the user's purchases so far,
    25.50 USD

The stage runs last in the ``validate`` phase (``trylast``), so that only a purchase every
rule let through counts as bought. One number per user who has purchased: the state grows
with the users, not with their events.
"""

from __future__ import annotations

from typing import Any

from hookline import fields

from hookline_fraud._money import Money, MoneySettings, money
from hookline_fraud._rule import Rule

__all__ = ["Sequence"]


class Sequence(Rule, phase="validate", name="sequence", trylast=True):
    """Refuse a refund larger than the user's purchases so far (less their refunds)."""

    class Settings(MoneySettings):
        """``check_refunds`` (and the money settings)."""

        check_refunds = fields.Boolean(default=True, description=(
            "refuse a refund larger than the user's purchases so far"))

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        self._money = Money(self.settings)
        self._on = bool(self.settings.check_refunds)

    def process(self, event: Any) -> None:
        """Add a purchase to its user's balance; refuse a refund over it, else take the refund
        off it (and raise the risk of a refund that takes most of it)."""
        kind = event.kind
        if not self._on or (kind != "purchase" and kind != "refund"):
            return
        value = self._money.convert(event.amount, event.currency)
        if not value:
            return
        user = event.user_id
        balance = self.state.get(user, 0.0)
        if kind == "purchase":
            self.state[user] = balance + value
            return
        if value > balance:
            self.refuse(event, f"refund of {self._money.show(event.amount, event.currency)} for "
                        f"user {user} is larger than the user's purchases so far, "
                        f"{money(balance, self._money.currency)}")
            value = balance  # shadowed: let through; nothing is left to refund
        elif balance:
            self.came_close(event, value / balance)
        self.state[user] = balance - value
