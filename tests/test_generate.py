"""The synthetic event generator behind ``hookline generate`` and ``hookline run --demo``."""

from __future__ import annotations

import io
import itertools
import json
import math
import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookline._generate import (
    ATTACK_LABELS,
    BANNED_USERS,
    BASE_TS,
    INVALID_KINDS,
    GeneratedLine,
    GenerateStats,
    generate_labeled,
    generate_lines,
    write_jsonl,
)

KINDS = {"view", "click", "add_to_cart", "purchase", "refund", "signup"}
FREE_KINDS = {"view", "click", "signup"}
PRICED_KINDS = {"add_to_cart", "purchase", "refund"}
CURRENCIES = {"USD", "EUR", "GBP", "JPY", "CAD", "XTS", "XXX"}
REQUIRED = ("event_id", "user_id", "kind", "ts")
FIELDS = {*REQUIRED, "amount", "currency", "tags", "properties"}


def schema_problem(line: str) -> str | None:
    """Why ``line`` breaks the default schema (written out in plain Python), or None."""
    try:
        event = json.loads(line)
    except ValueError:
        return "not JSON"
    if type(event) is not dict:
        return "not an object"
    if set(event) - FIELDS:
        return f"unknown keys {sorted(set(event) - FIELDS)}"
    for name in REQUIRED:
        if name not in event:
            return f"missing {name}"
    for name in ("event_id", "user_id", "kind"):
        if type(event[name]) is not str or not event[name]:
            return f"{name} is not a non-empty string"
    if type(event["ts"]) is not int or event["ts"] <= 0:
        return "ts is not a positive int"
    amount = event.get("amount", 0)
    if type(amount) not in (int, float) or math.isnan(amount) or amount < 0:
        return "amount is not a number >= 0"
    currency = event.get("currency", "USD")
    if type(currency) is not str or not re.fullmatch("[A-Z]{3}", currency):
        return "currency is not a 3-letter code"
    tags = event.get("tags", [])
    if type(tags) is not list or not all(type(tag) is str for tag in tags):
        return "tags is not a list of str"
    if type(event.get("properties", {})) is not dict:
        return "properties is not an object"
    return None


def labeled(n: int = 20_000, invalid_rate: float = 0.2, seed: int = 11) -> list[GeneratedLine]:
    return list(generate_labeled(n, invalid_rate=invalid_rate, seed=seed))


def valid_events(lines: list[GeneratedLine]) -> Iterator[dict[str, Any]]:
    return (json.loads(line.text) for line in lines if line.invalid_kind is None)


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_the_same_lines() -> None:
    first = list(generate_lines(3000, invalid_rate=0.2, seed=42))
    assert list(generate_lines(3000, invalid_rate=0.2, seed=42)) == first


def test_different_seeds_give_different_events() -> None:
    def without_ids(seed: int) -> list[dict[str, Any]]:
        events = [json.loads(line) for line in generate_lines(500, invalid_rate=0, seed=seed)]
        return [{k: v for k, v in e.items() if k != "event_id"} for e in events]

    a, b = without_ids(1), without_ids(2)
    assert sum(x != y for x, y in zip(a, b)) > 450


def test_output_does_not_depend_on_or_disturb_the_global_rng() -> None:
    random.seed(1)
    state = random.getstate()
    first = list(generate_lines(500, invalid_rate=0.2, seed=5))
    assert random.getstate() == state
    random.seed(2)
    assert list(generate_lines(500, invalid_rate=0.2, seed=5)) == first


def test_generate_lines_is_generate_labeled_without_labels() -> None:
    lines = labeled(2000, 0.3, seed=9)
    assert list(generate_lines(2000, invalid_rate=0.3, seed=9)) == [x.text for x in lines]


# --- counts and arguments ------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 7, 1000])
@pytest.mark.parametrize("rate", [0.0, 0.05, 0.2, 1.0])
def test_exactly_n_lines_and_exactly_the_requested_share_invalid(n: int, rate: float) -> None:
    lines = list(generate_labeled(n, invalid_rate=rate, seed=3))
    assert len(lines) == n
    assert sum(x.invalid_kind is not None for x in lines) == round(n * rate)
    assert all("\n" not in x.text for x in lines)


def test_invalid_share_for_20000_lines_at_the_default_rate() -> None:
    lines = list(generate_labeled(20_000, seed=4))
    share = sum(x.invalid_kind is not None for x in lines) / len(lines)
    assert share == pytest.approx(0.05, abs=0.005)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=300),
    rate=st.floats(min_value=0.0, max_value=1.0),
    seed=st.integers(min_value=-(2**63), max_value=2**63),
)
def test_labels_agree_with_the_schema_for_any_arguments(n: int, rate: float, seed: int) -> None:
    lines = list(generate_labeled(n, invalid_rate=rate, seed=seed))
    assert len(lines) == n
    assert sum(x.invalid_kind is not None for x in lines) == int(n * rate + 0.5)
    for line in lines:
        assert (schema_problem(line.text) is None) == (line.invalid_kind is None), line


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": -1}, "n must be"),
        ({"n": 2.5}, "n must be"),
        ({"n": 10, "invalid_rate": 1.5}, "invalid_rate"),
        ({"n": 10, "invalid_rate": -0.1}, "invalid_rate"),
        ({"n": 10, "invalid_rate": math.nan}, "invalid_rate"),
        ({"n": 10, "invalid_rate": "0.1"}, "invalid_rate"),
        ({"n": 10, "seed": "42"}, "seed"),
    ],
)
def test_bad_arguments_fail_at_the_call_not_at_the_first_line(
    kwargs: dict[str, Any], message: str
) -> None:
    n = kwargs.pop("n")
    with pytest.raises(ValueError, match=message):
        generate_lines(n, **kwargs)
    with pytest.raises(ValueError, match=message):
        write_jsonl(io.StringIO(), n, **kwargs)


def test_lines_stream_without_materialising_n() -> None:
    lines = generate_lines(10**12, seed=1)
    assert json.loads(next(lines))["ts"] > BASE_TS


# --- valid events --------------------------------------------------------------------------


def test_valid_lines_follow_the_default_schema_and_invalid_ones_break_it() -> None:
    for line in labeled():
        assert (schema_problem(line.text) is None) == (line.invalid_kind is None), line


def test_valid_events_look_like_real_traffic() -> None:
    lines = labeled()
    events = list(valid_events(lines))
    assert len(events) == 16_000
    for event in events:
        assert list(event) == [
            "event_id", "user_id", "kind", "ts", "amount", "currency", "tags", "properties",
        ]  # fmt: skip
        assert re.fullmatch(r"u\d{6}", event["user_id"])
        assert event["kind"] in KINDS
        assert event["currency"] in CURRENCIES
        amount = event["amount"]
        if event["kind"] in FREE_KINDS:
            assert amount == 0
        else:
            assert amount > 0
            assert round(amount, 2) == amount
            assert event["currency"] != "JPY" or type(amount) is int
        tags = event["tags"]
        assert len(tags) <= 3
        assert len(set(tags)) == len(tags)
        assert {"page", "device"} <= set(event["properties"])
    kinds = Counter(e["kind"] for e in events)
    assert kinds.most_common(1)[0][0] == "view"
    assert set(kinds) == KINDS
    assert kinds["purchase"] > kinds["refund"] > 0
    tag_counts = Counter(len(e["tags"]) for e in events)
    assert set(tag_counts) == {0, 1, 2, 3}
    assert any("campaign" in e["properties"] for e in events)


def test_valid_lines_are_compact_canonical_json() -> None:
    for line in labeled(5000):
        if line.invalid_kind is None:
            assert json.dumps(json.loads(line.text), separators=(",", ":")) == line.text


def test_event_ids_are_unique_and_timestamps_increase() -> None:
    events = list(valid_events(labeled()))
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids)
    ts = [e["ts"] for e in events]
    assert ts[0] > BASE_TS
    assert all(a < b for a, b in itertools.pairwise(ts))


def test_event_ids_differ_between_seeds() -> None:
    a = {json.loads(line)["event_id"] for line in generate_lines(200, invalid_rate=0, seed=1)}
    b = {json.loads(line)["event_id"] for line in generate_lines(200, invalid_rate=0, seed=2)}
    assert not a & b


def test_users_are_skewed_like_real_traffic() -> None:
    events = list(valid_events(labeled(20_000, 0.0)))
    per_user = Counter(e["user_id"] for e in events)
    assert 500 <= len(per_user) <= 2000  # about n/10 users exist; most of them show up
    top = per_user.most_common(len(per_user) // 10)
    assert sum(count for _, count in top) > 0.3 * len(events)
    assert per_user.most_common(1)[0][1] < 0.2 * len(events)  # hot, but not one bot


def test_at_least_100_users_for_small_runs() -> None:
    users = {json.loads(line)["user_id"] for line in generate_lines(1000, invalid_rate=0)}
    assert len(users) > 60
    assert all(int(user[1:]) < 100 for user in users)


def test_currencies_are_mostly_major_with_a_few_blocked_test_codes() -> None:
    events = list(valid_events(labeled(40_000, 0.0)))
    currencies = Counter(e["currency"] for e in events)
    assert currencies.most_common(1)[0][0] == "USD"
    assert set(currencies) == CURRENCIES
    blocked = (currencies["XTS"] + currencies["XXX"]) / len(events)
    assert 0.002 < blocked < 0.01


# --- invalid lines -------------------------------------------------------------------------


def test_every_invalid_kind_appears_at_rate_0_2() -> None:
    kinds = Counter(x.invalid_kind for x in labeled() if x.invalid_kind is not None)
    assert set(kinds) == set(INVALID_KINDS)
    assert len(INVALID_KINDS) >= 15


@pytest.mark.parametrize("kind", INVALID_KINDS)
def test_each_invalid_kind_is_the_failure_it_names(kind: str) -> None:
    texts = [x.text for x in labeled(4000, 1.0, seed=2) if x.invalid_kind == kind]
    assert texts
    for text in texts:
        problem = schema_problem(text)
        assert problem is not None
        assert EXPECTED_PROBLEM[kind].search(problem), (kind, problem, text)


EXPECTED_PROBLEM = {
    kind: re.compile(pattern)
    for kind, pattern in {
        "malformed_json": "not JSON",
        "truncated_line": "not JSON",
        "missing_event_id": "missing event_id",
        "missing_user_id": "missing user_id",
        "missing_kind": "missing kind",
        "missing_ts": "missing ts",
        "null_required_field": "(event_id|user_id|kind) is not|ts is not",
        "amount_as_string": "amount",
        "amount_bool": "amount",
        "negative_amount": "amount",
        "nan_amount": "amount",
        "ts_as_iso_string": "ts is not",
        "ts_in_seconds_float": "ts is not",
        "nonpositive_ts": "ts is not",
        "user_id_as_int": "user_id is not",
        "empty_user_id": "user_id is not",
        "bad_currency": "currency",
        "tags_as_string": "tags",
        "non_str_tag": "tags",
        "properties_not_object": "properties",
        "unknown_field": "unknown keys",
        "not_an_object": "not an object",
    }.items()
}


def test_every_invalid_kind_has_an_expected_problem() -> None:
    assert set(EXPECTED_PROBLEM) == set(INVALID_KINDS)


def test_specific_realistic_failures() -> None:
    texts = [x.text for x in labeled(6000, 1.0, seed=8)]
    assert any('"amount":NaN' in t for t in texts)
    assert any('"amount":true' in t or '"amount":false' in t for t in texts)
    assert any(re.search(r'"amount":"\d+\.\d\d"', t) for t in texts)
    assert any(re.search(r'"ts":"2026-01-01T\d\d:\d\d:\d\d\.\d{3}Z"', t) for t in texts)
    assert any(re.search(r'"user_id":\d+,', t) for t in texts)
    assert any('"currency":"usd"' in t or '"currency":"EURO"' in t for t in texts)
    assert any(t.startswith("[{") for t in texts)


# --- writing -------------------------------------------------------------------------------


def test_write_jsonl_to_a_path_writes_the_generated_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    stats = write_jsonl(path, 3000, invalid_rate=0.2, seed=6)
    lines = labeled(3000, 0.2, seed=6)
    assert path.read_bytes() == "".join(f"{x.text}\n" for x in lines).encode()
    expected = Counter(x.invalid_kind for x in lines if x.invalid_kind is not None)
    assert stats == GenerateStats(
        total=3000, valid=2400, invalid=600, invalid_by_kind=dict(expected)
    )
    assert list(stats.invalid_by_kind) == [k for k in INVALID_KINDS if k in expected]


def test_write_jsonl_to_a_stream_leaves_it_open() -> None:
    stream = io.StringIO()
    stats = write_jsonl(stream, 100, invalid_rate=0.0, seed=1)
    assert not stream.closed
    assert stream.getvalue().splitlines() == list(generate_lines(100, invalid_rate=0.0, seed=1))
    assert stats == GenerateStats(total=100, valid=100, invalid=0, invalid_by_kind={})


# --- against the real schema ---------------------------------------------------------------


def test_default_event_accepts_every_valid_line_and_rejects_every_invalid_one() -> None:
    from hookline import DefaultEvent, ValidationError

    for line in labeled():
        try:
            data = json.loads(line.text)
        except ValueError:
            assert line.invalid_kind is not None, line
            continue
        if line.invalid_kind is None:
            event = DefaultEvent.from_dict(data)
            assert event.to_dict() == data
        else:
            with pytest.raises(ValidationError):
                DefaultEvent.from_dict(data)


# --- refunds and injected attacks ----------------------------------------------------------

#: Units per US dollar, as the generator prices (and hookline-fraud converts by default).
FX = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 150.0, "CAD": 1.36}


def test_a_refund_never_takes_back_more_than_its_user_bought() -> None:
    bought: Counter[str] = Counter()
    refunds = 0
    for event in valid_events(labeled(40_000, 0.05, seed=12)):
        if event["currency"] in ("XTS", "XXX"):
            continue  # refused by hookline-fraud before it counts anything
        value = event["amount"] / FX[event["currency"]]
        if event["kind"] == "purchase":
            bought[event["user_id"]] += value
        elif event["kind"] == "refund":
            refunds += 1
            assert value <= bought[event["user_id"]], event
            bought[event["user_id"]] -= value
    assert refunds > 50


def attacked(n: int = 30_000, rate: float = 0.05, seed: int = 5) -> list[GeneratedLine]:
    return list(generate_labeled(n, invalid_rate=0.05, seed=seed, attack_rate=rate))


def test_attacks_replace_valid_lines_and_leave_the_others_as_they_were() -> None:
    plain, with_attacks = labeled(30_000, 0.05, seed=5), attacked()
    assert len(with_attacks) == len(plain)
    replaced = 0
    for before, after in zip(plain, with_attacks):
        assert after.invalid_kind == before.invalid_kind
        if after.invalid_kind is not None:
            continue
        if after.attack is None:
            if after.text != before.text:
                # a refund of a purchase an attack replaced: not covered, a purchase instead
                old, new = json.loads(before.text), json.loads(after.text)
                assert (old["kind"], new["kind"]) == ("refund", "purchase")
                assert {**old, "kind": "purchase", "properties": new["properties"]} == new
        elif after.attack == "blocked_currency":  # the traffic's own XTS/XXX events, labeled
            assert json.loads(before.text)["currency"] in ("XTS", "XXX")
        else:
            replaced += 1
            old, new = json.loads(before.text), json.loads(after.text)
            assert (new["event_id"], new["ts"]) == (old["event_id"], old["ts"])
    assert 0.5 * 0.05 * 30_000 < replaced < 1.5 * 0.05 * 30_000  # about the share asked for


def test_every_attack_line_carries_its_label_and_every_label_occurs() -> None:
    lines = attacked()
    for line in lines:
        if line.invalid_kind is None:
            injected = json.loads(line.text)["properties"].get("injected")
            assert injected == line.attack, line
    assert {line.attack for line in lines} - {None} == set(ATTACK_LABELS)
    assert all(schema_problem(line.text) is None for line in lines if line.attack)


def by_user(lines: list[GeneratedLine]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The events of each attacker, with their labels, in order."""
    users: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for line in lines:
        if line.attack is not None and line.attack != "blocked_currency":
            event = json.loads(line.text)
            users.setdefault(event["user_id"], []).append((line.attack, event))
    return users


def test_attacks_cross_the_default_fraud_limits_exactly_where_labeled() -> None:
    users = by_user(attacked(60_000, 0.05, seed=8))
    clean = {json.loads(x.text)["user_id"] for x in labeled(60_000, 0.05, seed=8)
             if x.invalid_kind is None}
    seen = Counter()
    for user, events in users.items():
        labels = [label for label, _ in events]
        kinds = {event["kind"] for _, event in events}
        if user in BANNED_USERS:
            assert set(labels) == {"blocked_user"}
            continue
        assert user.startswith("attacker-") and user not in clean
        seen[labels[-1]] += 1
        if labels[-1] == "burst":  # the first ten in a minute pass, the rest do not
            assert labels == ["burst_lead"] * 10 + ["burst"] * (len(labels) - 10)
            assert kinds == {"purchase"}
            assert events[-1][1]["ts"] - events[0][1]["ts"] < 60_000
            assert sum(event["amount"] for _, event in events) < 5_000
        elif labels[-1] == "spend":  # under 10,000 in the hour until the first "spend"
            assert labels[-2:] == ["spend", "spend"] and set(labels[:-2]) == {"spend_lead"}
            amounts = [event["amount"] for _, event in events]
            assert sum(amounts[:-2]) < 10_000 - 40 < 10_000 + 40 < sum(amounts[:-1])
            assert max(amounts) < 5_000 and len(events) < 10
            assert events[-1][1]["ts"] - events[0][1]["ts"] < 3_600_000
        elif labels == ["amount"]:
            event = events[0][1]
            assert event["amount"] / FX[event["currency"]] > 5_000
        else:
            assert labels == ["refund"] and kinds == {"refund"}
    assert set(seen) == {"burst", "spend", "amount", "refund"}


def test_write_jsonl_counts_attack_lines_by_label(tmp_path: Path) -> None:
    stats = write_jsonl(tmp_path / "events.jsonl", 5000, invalid_rate=0.05, seed=2,
                        attack_rate=0.05)
    lines = list(generate_labeled(5000, invalid_rate=0.05, seed=2, attack_rate=0.05))
    expected = Counter(x.attack for x in lines if x.attack is not None)
    assert stats.attacks == sum(expected.values()) > 0
    assert stats.attacks_by_label == dict(expected)
    assert stats.valid + stats.invalid == 5000


@pytest.mark.parametrize("rate", [-0.1, 1.5, math.nan, "0.1", True])
def test_a_bad_attack_rate_fails_at_the_call(rate: Any) -> None:
    with pytest.raises(ValueError, match="attack_rate"):
        generate_lines(10, attack_rate=rate)


def test_the_command_writes_labeled_attacks(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from hookline.cli import main

    path = tmp_path / "attacks.jsonl"
    assert main(["generate", "-n", "3000", "--attacks", "0.05", "--seed", "4",
                 "-o", str(path)]) == 0
    stats = write_jsonl(io.StringIO(), 3000, seed=4, attack_rate=0.05)
    assert capsys.readouterr().err == (f"wrote 3,000 events (150 invalid, {stats.attacks:,} in "
                                       f"attacks) to {path}\n")
    assert path.read_text().splitlines() == list(generate_lines(3000, seed=4, attack_rate=0.05))
