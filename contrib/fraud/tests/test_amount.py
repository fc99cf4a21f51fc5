"""``fraud.amount_limit``: one event's amount against the limits of its kind and currency."""

from __future__ import annotations

import pytest
from conftest import FraudFactory
from hookline.errors import PluginError
from hookline.testing import EventFactory


def test_a_purchase_over_5000_usd_is_refused_by_default(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    rejected = fraud().reject(make_event(user_id="u42", amount=5_000.01))
    assert rejected.reason == ("amount_limit: purchase of 5,000.01 USD for user u42, "
                               "limit 5,000.00 USD")
    assert rejected.stage == "fraud.amount_limit"
    assert fraud().reason(make_event(kind="refund", amount=7_500)).startswith(
        "amount_limit: refund of 7,500.00 USD")


def test_a_purchase_at_the_limit_passes_with_its_risk(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    assert fraud().process(make_event(amount=5_000)).risk == 1.0
    assert fraud().process(make_event(amount=3_000)).risk == 0.6
    # Under risk_from (half the limit by default) a rule does not count as close.
    assert fraud().process(make_event(amount=2_000)).risk == 0.0
    assert fraud(risk_from=0.1).process(make_event(amount=2_000)).risk == 0.4


def test_amounts_in_other_currencies_are_converted_with_the_rates(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    rules = fraud()
    assert rules.reason(make_event(user_id="u7", amount=800_000, currency="JPY")) == (
        "amount_limit: purchase of 800,000.00 JPY (5,333.33 USD) for user u7, "
        "limit 5,000.00 USD")
    assert rules.process(make_event(amount=700_000, currency="JPY")).risk == 0.9333
    # Own rates, and limits written in euros: the default table is relative, so it still fits.
    assert fraud(rates={"EUR": 1.0, "SEK": 10.0}).reason(make_event(
        amount=60_000, currency="SEK")).endswith("(6,000.00 USD) for user user-1, "
                                                 "limit 5,000.00 USD")
    in_euros = fraud(limits_currency="EUR", max_amount={"purchase": 100})
    assert in_euros.reason(make_event(amount=110)) == (
        "amount_limit: purchase of 110.00 USD (101.20 EUR) for user user-1, limit 100.00 EUR")
    assert in_euros.process(make_event(amount=100, currency="EUR")).risk == 1.0
    # A currency the table does not list counts one for one.
    assert fraud(rates={}).reason(make_event(amount=6_000, currency="JPY")).startswith(
        "amount_limit: purchase of 6,000.00 JPY (6,000.00 USD)")


def test_a_limit_per_currency_is_in_that_currencys_units(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    rules = fraud(max_amount_by_currency={"JPY": 100_000})
    assert rules.reason(make_event(user_id="u3", kind="add_to_cart", amount=150_000,
                                   currency="JPY")) == (
        "amount_limit: add_to_cart of 150,000.00 JPY for user u3, limit 100,000.00 JPY")
    assert rules.process(make_event(amount=90_000, currency="JPY")).risk == 0.9
    assert rules.process(make_event(amount=4_000, currency="USD")).risk == 0.8


def test_kinds_without_a_limit_are_not_limited(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    assert fraud().process(make_event(kind="add_to_cart", amount=1e6)).risk == 0.0
    rules = fraud(max_amount={"add_to_cart": 100}, velocity=[])
    assert rules.process(make_event(amount=1e6, currency="USD", kind="purchase")).amount == 1e6
    assert rules.reason(make_event(kind="add_to_cart", amount=101)).startswith("amount_limit:")


def test_bad_limits_are_refused_with_the_setting(fraud: FraudFactory) -> None:
    with pytest.raises(PluginError, match=r"max_amount\.purchase: must be > 0"):
        fraud(max_amount={"purchase": 0})
    with pytest.raises(PluginError, match=r"rates\.JPY: must be > 0"):
        fraud(rates={"JPY": -150})
    with pytest.raises(PluginError, match=r"max_amount_by_currency\.yen<key>: must match"):
        fraud(max_amount_by_currency={"yen": 10})
    with pytest.raises(PluginError, match=r"risk_from: must be ≤ 1"):
        fraud(risk_from=2)
