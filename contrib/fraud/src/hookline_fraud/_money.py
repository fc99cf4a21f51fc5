"""Amounts compared across currencies: the rates the rules convert with, and how reasons show
money.

A limit such as "10,000 in purchases per hour" is written in one currency, ``limits_currency``
(US dollars by default). An event's amount is converted into it with ``rates``: how many units
of each currency one common unit is worth. The rates are relative to each other, so changing
``limits_currency`` to ``EUR`` keeps the default table right. A currency the table does not
list counts one unit as one unit of ``limits_currency``.
"""

from __future__ import annotations

from types import MappingProxyType

from hookline import fields

from hookline_fraud._rule import RuleSettings

__all__ = ["DEFAULT_RATES", "Money", "MoneySettings", "money"]

#: Rough units of each currency per US dollar. Fraud limits need the order of magnitude, not
#: the day's rate: a purchase of 150,000 JPY is about 1,000 USD. Set your own in ``rates``.
DEFAULT_RATES: MappingProxyType[str, float] = MappingProxyType({
    "USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 150.0, "CAD": 1.36, "AUD": 1.52,
    "CHF": 0.88, "CNY": 7.2, "HKD": 7.8, "SGD": 1.34, "INR": 83.0, "KRW": 1350.0,
    "SEK": 10.5, "NOK": 10.6, "DKK": 6.9, "PLN": 4.0, "CZK": 23.0, "HUF": 360.0,
    "BRL": 5.0, "MXN": 17.0, "ZAR": 18.5, "TRY": 32.0, "NZD": 1.64, "ILS": 3.7,
})

_CODE = "[A-Z]{3}"


class MoneySettings(RuleSettings):
    """Settings of the rules that compare amounts with a limit."""

    limits_currency = fields.String(pattern=_CODE, default="USD", description=(
        "the currency money limits are written in"))
    rates = fields.Mapping(
        keys=fields.String(pattern=_CODE),
        values=fields.Number(minimum=0, exclusive_minimum=True),
        default=lambda: dict(DEFAULT_RATES),
        description="units of each currency per common unit (a currency not listed: 1)",
    )


class Money:
    """Converts amounts into ``limits_currency`` (built once per stage from its settings)."""

    __slots__ = ("_divisors", "currency")

    def __init__(self, settings: MoneySettings) -> None:
        rates: dict[str, float] = settings.rates
        self.currency: str = settings.limits_currency
        base = rates.get(self.currency, 1.0)
        #: amount / divisor is the amount in limits_currency (a rate, when base is 1).
        self._divisors = {code: rate / base for code, rate in rates.items()}

    def convert(self, amount: float, currency: str) -> float:
        """``amount`` of ``currency`` in ``limits_currency``."""
        return amount / self._divisors.get(currency, 1.0)

    def show(self, amount: float, currency: str) -> str:
        """``amount`` of ``currency`` as a reason shows it, with its value in
        ``limits_currency`` when that is another currency: ``25,000.00 EUR (27,173.91 USD)``."""
        if currency == self.currency:
            return money(amount, currency)
        return f"{money(amount, currency)} ({money(self.convert(amount, currency), self.currency)})"


def money(amount: float, currency: str) -> str:
    """``12,000.00 USD``."""
    return f"{amount:,.2f} {currency}"
