"""``fraud.blocked_currency`` and ``fraud.blocked_user``: block lists, inline and from files."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FraudFactory
from hookline.errors import PluginError
from hookline.testing import EventFactory

from hookline_fraud import normalize_codes


@pytest.mark.parametrize("currency", ["XTS", "XXX"])
def test_a_blocked_currency_is_rejected_with_its_reason(
    fraud: FraudFactory, make_event: EventFactory, currency: str
) -> None:
    rejected = fraud().reject(make_event(currency=currency))
    assert rejected.reason == f"blocked_currency: currency {currency!r} is blocked"
    assert rejected.stage == "fraud.blocked_currency"


@pytest.mark.parametrize("currency", ["USD", "EUR", "GBP"])
def test_an_allowed_event_passes_unchanged_with_no_risk(
    fraud: FraudFactory, make_event: EventFactory, currency: str
) -> None:
    data = make_event(currency=currency, tags=["web"])
    assert fraud().process(data).to_dict() == {**data, "risk": 0.0, "fraud_shadow": None}


def test_settings_replace_the_currency_block_list(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    rules = fraud(blocked=["eur", " gbp "])
    for currency in ("EUR", "GBP"):
        assert rules.reason(make_event(currency=currency)) == (
            f"blocked_currency: currency {currency!r} is blocked")
    assert rules.process(make_event(currency="XTS")).currency == "XTS"  # replaced, not extended
    assert fraud(blocked=[]).process(make_event(currency="XXX")).currency == "XXX"


def test_block_lists_from_files_add_to_the_inline_ones(
    fraud: FraudFactory, make_event: EventFactory, tmp_path: Path
) -> None:
    users = tmp_path / "users.txt"
    users.write_text("# from the chargeback report\nu-13\n\n  mallory  \n", encoding="utf-8")
    currencies = tmp_path / "currencies.txt"
    currencies.write_text("xau\n", encoding="utf-8")
    rules = fraud(blocked_users=["eve"], blocked_users_file=str(users),
                  blocked_file=str(currencies))
    for user in ("eve", "u-13", "mallory"):
        rejected = rules.reject(make_event(user_id=user, kind="view"))
        assert rejected.reason == f"blocked_user: user {user} is blocked"
        assert rejected.stage == "fraud.blocked_user"
    assert rules.reason(make_event(currency="XAU")) == "blocked_currency: currency 'XAU' is blocked"
    assert rules.reason(make_event(currency="XTS")).startswith("blocked_currency:")
    # Comments are not users, and user ids are compared as they are.
    for user in ("# from the chargeback report", "Mallory", "u-1"):
        assert rules.process(make_event(user_id=user)).user_id == user


def test_a_blocked_users_purchase_is_refused_as_blocked_before_any_other_rule(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    rules = fraud(blocked_users=["eve"])
    event = make_event(user_id="eve", amount=90_000, currency="XTS")
    assert rules.reject(event).stage == "fraud.blocked_currency"  # the first block list
    event = make_event(user_id="eve", amount=90_000)
    assert rules.reject(event).stage == "fraud.blocked_user"  # not amount_limit


def test_a_block_list_file_that_cannot_be_read_stops_the_build(
    fraud: FraudFactory, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(PluginError, match=r"fraud\.blocked_user.*blocked_users_file: cannot "
                                          r"read the block list '.*nope\.txt'"):
        fraud(blocked_users_file=str(missing))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PluginError, match=r"blocked_file: cannot read the block list"):
        fraud(blocked_file=str(binary))


def test_risk_and_shadow_values_the_input_carries_are_discarded(
    fraud: FraudFactory, make_event: EventFactory
) -> None:
    event = fraud().process(make_event(kind="view", risk=0.9, fraud_shadow=["velocity"]))
    assert (event.risk, event.fraud_shadow) == (0.0, None)


def test_invalid_settings_are_refused_when_the_pipeline_is_built(fraud: FraudFactory) -> None:
    with pytest.raises(PluginError, match=r"fraud\.blocked_currency.*blocked: must be a list"):
        fraud(blocked="XTS")
    with pytest.raises(PluginError, match=r"unknown key.*blockd"):
        fraud(blockd=["XTS"])
    with pytest.raises(PluginError, match=r"blocked_users\[1\]: must not be empty"):
        fraud(blocked_users=["eve", ""])


def test_normalize_codes_upper_cases_and_strips() -> None:
    assert normalize_codes(["xts", " XXX ", "Eur"]) == frozenset({"XTS", "XXX", "EUR"})
    assert normalize_codes([]) == frozenset()
