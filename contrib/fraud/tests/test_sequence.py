"""``fraud.sequence``: a refund larger than what the user has bought so far."""

from __future__ import annotations

from conftest import FraudFactory
from hookline.testing import EventFactory, PipelineFactory, RunReporter

import hookline_fraud


def test_a_refund_without_purchases_is_refused(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    rejected = fraud().reject(make_event(user_id="u42", kind="refund", amount=20))
    assert rejected.reason == ("sequence: refund of 20.00 USD for user u42 is larger than the "
                               "user's purchases so far, 0.00 USD")
    assert rejected.stage == "fraud.sequence"


def test_refunds_take_from_what_the_user_bought(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    rules = fraud()
    rules.process(make_event(amount=100))
    assert rules.process(make_event(kind="refund", amount=60)).risk == 0.6
    assert rules.reason(make_event(kind="refund", amount=50)) == (
        "sequence: refund of 50.00 USD for user user-1 is larger than the user's purchases so "
        "far, 40.00 USD")
    assert rules.process(make_event(kind="refund", amount=40)).risk == 1.0  # all that is left
    assert rules.reason(make_event(kind="refund", amount=0.01)).endswith("so far, 0.00 USD")
    assert rules.process(make_event(user_id="u2", kind="refund", amount=0)).risk == 0.0


def test_currencies_are_converted(fraud: FraudFactory, make_event: EventFactory) -> None:
    rules = fraud()
    rules.process(make_event(amount=92, currency="EUR"))  # 100 USD
    rules.process(make_event(kind="refund", amount=7_500, currency="JPY"))  # 50 USD
    assert rules.reason(make_event(kind="refund", amount=40, currency="GBP")) == (
        "sequence: refund of 40.00 GBP (50.63 USD) for user user-1 is larger than the user's "
        "purchases so far, 50.00 USD")


def test_a_purchase_another_rule_refused_is_not_bought(
    make_pipeline: PipelineFactory, make_event: EventFactory, run_report: RunReporter
) -> None:
    purchases = [make_event(user_id="u1", amount=10) for _ in range(11)]  # the 11th: velocity
    refund = make_event(user_id="u1", kind="refund", amount=105)
    result = run_report(make_pipeline(hookline_fraud), [*purchases, refund])
    assert [(row["stage"], row["reason"]) for row in result.dead_letters] == [
        ("fraud.velocity", "velocity: 11 purchases in 60 s for user u1, limit 10"),
        ("fraud.sequence", "sequence: refund of 105.00 USD for user u1 is larger than the "
                           "user's purchases so far, 100.00 USD"),
    ]
    assert result.query("SELECT value FROM stage_state WHERE stage = 'fraud.sequence'") == [
        ("100.0",)]


def test_the_rule_can_be_switched_off(fraud: FraudFactory, make_event: EventFactory) -> None:
    assert fraud(check_refunds=False).process(make_event(kind="refund", amount=20)).risk == 0.0
