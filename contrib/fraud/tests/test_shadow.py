"""Shadow mode: ``fraud.shadow`` for every rule, ``fraud.shadow.<rule>`` for one."""

from __future__ import annotations

from typing import Any

import hookline
import pytest
from conftest import FraudFactory
from hookline.testing import EventFactory, PipelineFactory, RunReporter

import hookline_fraud
from hookline_fraud import RULES

T0 = 1_767_225_600_000


def one_per_rule(make_event: EventFactory) -> dict[str, dict[str, Any]]:
    """An event each rule refuses by default (``eve`` blocked), and only that rule."""
    return {
        "blocked_currency": make_event(user_id="a", currency="XTS"),
        "blocked_user": make_event(user_id="eve", kind="view"),
        "amount_limit": make_event(user_id="b", amount=9_000),
        "sequence": make_event(user_id="c", kind="refund", amount=10),
        "velocity": make_event(user_id="d", ts=T0 - 3_600_000),  # older than d's latest
    }


def test_shadow_mode_lets_every_rule_record_instead_of_refusing(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    events = one_per_rule(make_event)
    enforcing = fraud(blocked_users=["eve"])
    enforcing.process(make_event(user_id="d", ts=T0))
    assert {rule: enforcing.reject(event).stage for rule, event in events.items()} == {
        rule: f"fraud.{rule}" for rule in events}
    shadow = fraud(blocked_users=["eve"], flags={"fraud.shadow": "on"})
    shadow.process(make_event(user_id="d", ts=T0))
    for rule, event in events.items():
        passed = shadow.process(event)
        assert (passed.fraud_shadow, passed.risk) == ([rule], 1.0)
    assert set(events) == set(RULES)


def test_one_rule_in_shadow_mode_the_others_enforce(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    rules = fraud(flags={"fraud.shadow.velocity": "on"})
    burst = [rules.process(make_event(user_id="u1", ts=T0 + k)) for k in range(12)]
    assert [event.fraud_shadow for event in burst] == [None] * 10 + [["velocity"]] * 2
    assert rules.reject(make_event(currency="XXX")).stage == "fraud.blocked_currency"


def test_every_shadowed_rule_is_listed_once(fraud: FraudFactory, make_event: EventFactory) -> None:
    rules = fraud(blocked_users=["eve"], flags={"fraud.shadow": "on"})
    event = rules.process(make_event(user_id="eve", currency="XTS", kind="refund", amount=9_000))
    assert event.fraud_shadow == ["blocked_currency", "blocked_user", "amount_limit", "sequence"]
    for k in range(12):  # the 11th and 12th past two velocity limits: listed once
        event = rules.process(make_event(user_id="f", ts=T0 + k, amount=2_000))
    assert event.fraud_shadow == ["velocity"]


def test_a_shadow_rollout_is_per_user_and_stable(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    rules = fraud(flags={"fraud.shadow.sequence": 0.5})
    decided = {}
    for n in range(200):
        user = f"u{n}"
        refund = make_event(user_id=user, kind="refund", amount=5)
        try:
            decided[user] = rules.process(refund).fraud_shadow == ["sequence"]
        except hookline.Reject:
            decided[user] = False
        again = make_event(user_id=user, kind="refund", amount=5)
        try:
            assert rules.process(again).fraud_shadow == ["sequence"] and decided[user]
        except hookline.Reject:
            assert not decided[user]
    assert 60 < sum(decided.values()) < 140


@pytest.mark.parametrize("flag", ["fraud.shadow", *(f"fraud.shadow.{rule}" for rule in RULES)])
def test_each_shadow_flag_is_declared_and_off_by_default(
    make_pipeline: PipelineFactory, flag: str
) -> None:
    flags = make_pipeline(hookline_fraud).flags
    assert flags.value(flag) == (False, "default")
    assert not flags.is_enabled(flag)


def test_a_run_stores_what_shadowed_rules_would_have_refused(
    make_pipeline: PipelineFactory, make_event: EventFactory, run_report: RunReporter
) -> None:
    pipeline = make_pipeline(hookline_fraud, flags={"fraud.shadow": "on"})
    result = run_report(pipeline, [make_event(kind="view"), make_event(currency="XTS"),
                                   make_event(user_id="u2", kind="refund", amount=10)])
    assert result.report.accepted == 3
    assert result.query("SELECT kind, currency, risk, fraud_shadow FROM events ORDER BY ts") == [
        ("view", "USD", 0.0, None),
        ("purchase", "XTS", 1.0, '["blocked_currency"]'),
        ("refund", "USD", 1.0, '["sequence"]'),
    ]
