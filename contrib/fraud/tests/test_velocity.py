"""``fraud.velocity``: events and money per user per kind in sliding windows of event time."""

from __future__ import annotations

import json
from typing import Any

import hookline
import pytest
from conftest import Fraud, FraudFactory
from hookline.errors import PluginError
from hookline.testing import EventFactory, PipelineFactory, RunReporter

import hookline_fraud
from hookline_fraud import MAX_ENTRIES

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, in epoch ms


def at(seconds: float) -> int:
    return T0 + round(seconds * 1000)


def outcomes(rules: Fraud, events: list[dict[str, Any]]) -> list[str]:
    """Per event: ``"ok <risk>"`` or the reason it was refused."""
    found = []
    for event in events:
        try:
            found.append(f"ok {rules.process(event).risk}")
        except hookline.Reject as rejected:
            found.append(rejected.reason)
    return found


def test_the_eleventh_purchase_in_a_minute_is_refused_and_risk_rises_before(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    purchases = [make_event(user_id="u42", ts=at(5 * k), amount=1) for k in range(12)]
    assert outcomes(fraud(), purchases) == [
        "ok 0.0", "ok 0.0", "ok 0.0", "ok 0.0", "ok 0.5", "ok 0.6", "ok 0.7", "ok 0.8",
        "ok 0.9", "ok 1.0",
        "velocity: 11 purchases in 60 s for user u42, limit 10",
        "velocity: 12 purchases in 60 s for user u42, limit 10",
    ]
    rules = fraud()
    for k in range(10):
        rules.process(make_event(ts=at(k)))
    assert rules.reject(make_event(ts=at(10))).stage == "fraud.velocity"


def test_the_window_slides_with_event_time_and_counts_refused_attempts(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    rules = fraud()
    burst = [make_event(user_id="u1", ts=at(k)) for k in range(15)]  # 1 s apart
    assert [o.startswith("ok") for o in outcomes(rules, burst)] == [True] * 10 + [False] * 5
    # At 60.5 s the burst's first event has left the window (60 s, ending at the event):
    # 14 left, refused ones included, plus this one.
    assert outcomes(rules, [make_event(user_id="u1", ts=at(60.5))]) == [
        "velocity: 15 purchases in 60 s for user u1, limit 10"]
    assert outcomes(rules, [make_event(user_id="u1", ts=at(200))]) == ["ok 0.0"]


def test_users_and_kinds_are_counted_apart(fraud: FraudFactory, make_event: EventFactory) -> None:
    rules = fraud()
    for k in range(10):
        rules.process(make_event(user_id="u1", ts=at(k)))
    assert rules.process(make_event(user_id="u2", ts=at(11))).risk == 0.0
    assert rules.process(make_event(user_id="u1", kind="view", ts=at(11))).risk == 0.0
    assert rules.reason(make_event(user_id="u1", ts=at(12))).startswith("velocity: 11 purchases")


def test_money_per_hour_is_limited_in_the_limits_currency(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    purchases = [make_event(user_id="u9", ts=at(600 * k), amount=3_680, currency="EUR")
                 for k in range(4)]  # 4,000 USD each
    assert outcomes(fraud(), purchases) == [  # (0.8: 4,000 is 80 % of one purchase's limit)
        "ok 0.8", "ok 0.8", "velocity: 12,000.00 USD in purchases in 3600 s for user u9, "
        "limit 10,000.00 USD", "velocity: 16,000.00 USD in purchases in 3600 s for user u9, "
        "limit 10,000.00 USD"]
    rules = fraud()
    outcomes(rules, purchases)
    # An hour after the second purchase, the two refused attempts (8,000) are still in the
    # window: 2,100 more is over.
    assert outcomes(rules, [make_event(user_id="u9", ts=at(4_200.5), amount=2_100)]) == [
        "velocity: 10,100.00 USD in purchases in 3600 s for user u9, limit 10,000.00 USD"]
    assert outcomes(rules, [make_event(user_id="u9", ts=at(5_400.5), amount=100)]) == [
        "ok 0.0"]


def test_own_limits_for_several_kinds(fraud: FraudFactory, make_event: EventFactory) -> None:
    rules = fraud(velocity=[
        {"kind": "add_to_cart", "window": 10, "max_count": 2},
        {"kind": "signup", "window": 86_400, "max_count": 1},
        {"kind": "purchase", "window": 0.5, "max_count": 1, "max_amount": 20},
    ])
    carts = [make_event(kind="add_to_cart", ts=at(k)) for k in range(3)]
    assert outcomes(rules, carts)[-1] == "velocity: 3 add_to_carts in 10 s for user user-1, limit 2"
    assert outcomes(rules, [make_event(kind="signup", ts=at(0)),
                            make_event(kind="signup", ts=at(80_000))])[-1].startswith(
        "velocity: 2 signups in 86400 s")
    buys = [make_event(ts=at(100), amount=15), make_event(ts=at(100.2), amount=1),
            make_event(ts=at(200), amount=21)]
    assert outcomes(rules, buys)[1:] == [
        "velocity: 2 purchases in 0.5 s for user user-1, limit 1",
        "velocity: 21.00 USD in purchases in 0.5 s for user user-1, limit 20.00 USD"]


def test_a_late_event_within_the_tolerance_is_judged_on_its_own_window(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    rules = fraud(velocity=[{"kind": "purchase", "window": 10, "max_count": 2}])
    assert outcomes(rules, [
        make_event(ts=at(100)), make_event(ts=at(105)),
        make_event(ts=at(96)),   # late by 9 s: its window (86, 96] holds itself only
        make_event(ts=at(106)),  # (96, 106]: 100, 105 and itself
        make_event(ts=at(104)),  # late, (94, 104]: 96, 100 and itself
    ]) == ["ok 0.5", "ok 1.0", "ok 0.5",
           "velocity: 3 purchases in 10 s for user user-1, limit 2",
           "velocity: 3 purchases in 10 s for user user-1, limit 2"]


def test_an_event_older_than_the_tolerance_is_refused_and_not_counted(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    rules = fraud()
    rules.process(make_event(user_id="u42", ts=at(100)))
    assert rules.reason(make_event(user_id="u42", ts=at(39))) == (
        f"velocity: purchase at ts {at(39)} for user u42 is 61 s older than the user's latest "
        "purchase, tolerance 60 s")
    assert rules.process(make_event(user_id="u42", ts=at(40))).risk == 0.0  # 60 s: tolerated
    strict = fraud(late_tolerance=0)
    strict.process(make_event(ts=at(10)))
    assert strict.reason(make_event(ts=at(9.999))).endswith("0.001 s older than the user's "
                                                            "latest purchase, tolerance 0 s")
    assert strict.process(make_event(ts=at(10))).risk == 0.0  # the same time is not older


def state_of(result: Any, user: str) -> Any:
    [(value,)] = result.query("SELECT value FROM stage_state WHERE stage = 'fraud.velocity' "
                              "AND key = ?", user)
    return json.loads(value)


def test_state_holds_across_runs_and_keeps_only_what_the_windows_need(
    make_pipeline: PipelineFactory, make_event: EventFactory, run_report: RunReporter
) -> None:
    pipeline = make_pipeline(hookline_fraud)
    first = run_report(pipeline, [make_event(user_id="u5", ts=at(k), amount=2) for k in range(6)])
    assert first.report.accepted == 6
    assert state_of(first, "u5") == {"purchase": [[at(k) for k in range(6)], [1] * 6, [2.0] * 6]}
    second = run_report(make_pipeline(hookline_fraud),  # a new process would start like this
                        [make_event(user_id="u5", ts=at(10 + k)) for k in range(6)],
                        db=first.db)
    assert (second.report.accepted, second.report.dead_lettered) == (4, 2)
    assert [row["reason"] for row in second.dead_letters] == [
        "velocity: 11 purchases in 60 s for user u5, limit 10",
        "velocity: 12 purchases in 60 s for user u5, limit 10"]
    # Two hours on, only the window and the tolerance before the latest event are kept.
    third = run_report(make_pipeline(hookline_fraud),
                       [make_event(user_id="u5", ts=at(7_200)), make_event(user_id="u5",
                                                                            ts=at(7_201))],
                       db=first.db)
    assert third.report.accepted == 2
    assert state_of(third, "u5") == {"purchase": [[at(7_200), at(7_201)], [1, 1], [10.0, 10.0]]}


def test_state_stays_bounded_and_counts_stay_exact(
    fraud: FraudFactory, make_pipeline: PipelineFactory, make_event: EventFactory,
    run_report: RunReporter,
) -> None:
    limits = [{"kind": "purchase", "window": 3_600, "max_count": MAX_ENTRIES + 50}]
    events = [make_event(user_id="bot", ts=at(k), amount=1) for k in range(MAX_ENTRIES + 60)]
    pipeline = make_pipeline(hookline_fraud, settings={"fraud": {"velocity": limits}})
    result = run_report(pipeline, events)
    assert result.report.accepted == MAX_ENTRIES + 50  # the merged entries still count
    assert result.dead_letters[0]["reason"] == (
        f"velocity: {MAX_ENTRIES + 51} purchases in 3600 s for user bot, limit {MAX_ENTRIES + 50}")
    times, counts, amounts = state_of(result, "bot")["purchase"]
    assert len(times) == len(counts) == len(amounts) == MAX_ENTRIES
    assert sum(counts) == MAX_ENTRIES + 60 and sum(amounts) == MAX_ENTRIES + 60
    assert times[-1] == at(MAX_ENTRIES + 59) and times == sorted(times)


def test_a_limit_without_a_maximum_is_refused_when_the_pipeline_is_built(
    fraud: FraudFactory,
) -> None:
    with pytest.raises(PluginError, match=r"fraud\.velocity.*velocity #2 \(click, 60 s\): give "
                                          r"max_count, max_amount or both"):
        fraud(velocity=[{"kind": "purchase", "window": 1, "max_count": 1},
                        {"kind": "click", "window": 60}])
    with pytest.raises(PluginError, match=r"velocity\[0\]\.windw: is not a field"):
        fraud(velocity=[{"kind": "purchase", "windw": 60, "max_count": 1}])
    with pytest.raises(PluginError, match=r"velocity\[0\]\.window: must be > 0"):
        fraud(velocity=[{"kind": "purchase", "window": 0, "max_count": 1}])


def test_no_limits_no_velocity(fraud: FraudFactory, make_event: EventFactory) -> None:
    rules = fraud(velocity=[])
    assert all(rules.process(make_event(ts=at(0))).risk == 0.0 for _ in range(20))
