"""Synthetic analytics events: the data behind ``hookline generate`` and ``hookline run --demo``.

The generator streams JSONL lines that look like a real event feed: a few hot users and a
long tail, mostly views and clicks with the occasional purchase or refund, log-normal prices,
a handful of currencies (including the ``XTS``/``XXX`` codes the fraud plugin blocks by
default), tags and free-form properties. A chosen share of the lines is broken on purpose,
each in one of :data:`INVALID_KINDS` ways a real producer breaks its output, so that every
path of a pipeline (accepted, rejected by the schema, dead-lettered) gets exercised.
A refund never takes back more than its user has bought: a refund that would is generated as
a purchase instead, so that clean traffic never looks like the fraud it is not.

With ``attack_rate``, some valid lines are replaced by the events of injected attacks, each
labeled (:data:`ATTACK_LABELS`), so that fraud rules can be tested against known answers:
bursts of purchases from one user, purchases adding up to too much in an hour, one purchase
over the limit, events of blocked users, refunds without purchases. They are built against
the default rules of hookline-fraud (see ``hookline generate`` in docs/cli.md).

Everything is drawn from one ``random.Random(seed)`` (and the attacks from a second one, so
that the traffic around them is the same with or without them): the same ``(n, invalid_rate,
attack_rate, seed)`` always gives the same lines (across Python versions as far as
``random.Random`` itself is reproducible), and nothing is kept in memory per line (one number
per user who bought something), so ``n`` can be as large as the disk allows.

>>> lines = list(generate_lines(3, seed=7, invalid_rate=0.0))
>>> [json.loads(line)["event_id"] for line in lines]
['evt-7-00000000', 'evt-7-00000001', 'evt-7-00000002']
"""

from __future__ import annotations

import json
import math
import os
import random
from bisect import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import accumulate, combinations
from typing import Any, NamedTuple, TextIO

__all__ = [
    "ATTACK_LABELS",
    "BANNED_USERS",
    "BASE_TS",
    "INVALID_KINDS",
    "GenerateStats",
    "GeneratedLine",
    "demo_input",
    "generate_labeled",
    "generate_lines",
    "write_jsonl",
]

#: Timestamp of the first event, in epoch milliseconds (2026-01-01T00:00:00Z).
BASE_TS = 1_767_225_600_000

_Event = dict[str, Any]

#: ``json.dumps(obj, separators=(",", ":"))``, without building an encoder per call.
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=True).encode

# --- the shape of valid traffic -----------------------------------------------------------

_KINDS = ("view", "click", "add_to_cart", "purchase", "refund", "signup")
_KIND_CUM = list(accumulate((0.55, 0.25, 0.09, 0.06, 0.01, 0.04)))
_PRICED_KINDS = frozenset(("add_to_cart", "purchase", "refund"))

_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CAD", "XTS", "XXX")
_CURRENCY_CUM = list(accumulate((0.55, 0.20, 0.12, 0.06, 0.065, 0.0025, 0.0025)))
#: Units of the currency per US dollar, to make a price look local (JPY has no minor unit).
#: The same rates as hookline-fraud's defaults, which compare amounts in US dollars.
_FX = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 150.0, "CAD": 1.36, "XTS": 1.0, "XXX": 1.0}
#: The test codes hookline-fraud blocks by default: its rules never see these events.
_BLOCKED_CURRENCIES = frozenset(("XTS", "XXX"))

_TAG_VOCABULARY = ("beta", "mobile", "new_user", "promo", "returning", "sale", "vip", "web")
#: Every set of 0 to 3 distinct tags, grouped by size, so a draw is two index lookups.
_TAG_SETS = tuple(tuple(combinations(_TAG_VOCABULARY, k)) for k in range(4))
_TAG_COUNT_CUM = list(accumulate((0.40, 0.35, 0.17, 0.08)))

_DEVICES = ("ios", "android", "desktop", "desktop", "tablet")
_CAMPAIGNS = ("spring_sale", "newsletter", "retargeting", "black_friday", "referral")
_PAGES = ("/", "/search", "/category/shoes", "/category/books", "/category/garden", "/deals")
_ELEMENTS = ("buy_button", "banner", "nav_link", "recommendation", "search_result")
_N_SKUS = 500
#: The vocabularies above hold no character JSON escapes, so a value is quoted by writing
#: it between quotes; tests check every generated line equals ``json.dumps`` of its parse.
_TAG_SETS_JSON = tuple(tuple(_encode(list(tags)) for tags in sets) for sets in _TAG_SETS)
_CAMPAIGN_JSON = tuple(f',"campaign":"{campaign}"' for campaign in _CAMPAIGNS)

#: Mean gap between two events, in milliseconds; each gap is uniform in [1, 2 * mean).
_MEAN_GAP_MS = 250
#: Head offset of the user popularity law: larger flattens the hottest users.
_USER_HEAD = 2.0

_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S"


def _power_law_index(rng: random.Random, size: int, head: float) -> int:
    """Draw an index in ``[0, size)`` with probability roughly proportional to ``1/(i + head)``.

    Inverse-CDF sampling of the continuous law: O(1) time and memory, no table of weights.
    """
    ratio = (size + head) / head
    return min(int(head * ratio ** rng.random() - head), size - 1)


def _user_scatter(rng: random.Random, n_users: int) -> tuple[int, int]:
    """Draw ``(a, b)`` so that ``(rank * a + b) % n_users`` maps popularity rank to user number.

    With ``gcd(a, n_users) == 1`` the map is a bijection: every user number stays in
    ``[0, n_users)``, but the busiest user is not always ``u000000``.
    """
    a = rng.randrange(1, n_users)
    while math.gcd(a, n_users) != 1:
        a += 1
    return a, rng.randrange(n_users)


def _price(rng: random.Random, kind: str, currency: str) -> float | int:
    """A log-normal price (median about 25 USD) in ``currency``, with the minor unit it uses."""
    usd = rng.lognormvariate(3.2, 0.9)
    if kind == "refund":
        usd *= 0.6
    local = usd * _FX[currency]
    if currency == "JPY":
        return max(1, round(local))
    return max(0.01, round(local, 2))


def _properties(rng: random.Random, kind: str, device: str) -> str:
    """Free-form context of one event (page, device, kind-specific details), as JSON."""
    rand = rng.random
    if kind in _PRICED_KINDS:
        sku = f"sku-{_power_law_index(rng, _N_SKUS, 5.0):04d}"
        page = "/checkout" if kind == "purchase" else f"/product/{sku}"
        quantity = 1 if rand() < 0.8 else 2 + int(rand() * 3)
        details = f'"page":"{page}","sku":"{sku}","quantity":{quantity}'
    elif kind == "signup":
        details = '"page":"/signup"'
    else:
        details = f'"page":"{_PAGES[int(rand() * len(_PAGES))]}"'
        if kind == "click":
            details += f',"element":"{_ELEMENTS[int(rand() * len(_ELEMENTS))]}"'
    r = rand()
    campaign = _CAMPAIGN_JSON[int(r / 0.15 * len(_CAMPAIGNS))] if r < 0.15 else ""
    return f'{{"device":"{device}",{details}{campaign}}}'


# --- the ways real producers break their output -------------------------------------------
#
# Each corruption takes the rng and a freshly parsed valid event (which it may mutate) and
# returns the broken line. The names are the public INVALID_KINDS, in this order.


def _malformed_json(rng: random.Random, event: _Event) -> str:
    """Structurally broken JSON: a lost brace or comma, a trailing comma, or a Python repr."""
    line = _encode(event)
    variant = rng.randrange(5)
    if variant == 0:
        return line[1:]  # lost the opening brace
    if variant == 1:
        return line + "}"  # one brace too many
    if variant == 2:
        return line.replace(',"user_id"', '"user_id"', 1)  # lost a comma
    if variant == 3:
        return line[:-1] + ",}"  # trailing comma
    return repr(event)  # str(dict) written instead of json.dumps(dict)


def _truncated_line(rng: random.Random, event: _Event) -> str:
    """A valid line cut short, as a writer killed mid-line or a full disk leaves it."""
    line = _encode(event)
    return line[: rng.randrange(1, len(line) - 1)]


def _missing(name: str) -> Callable[[random.Random, _Event], str]:
    def corrupt(rng: random.Random, event: _Event) -> str:
        del event[name]
        return _encode(event)

    corrupt.__doc__ = f"The required field {name!r} is absent."
    return corrupt


def _null_required_field(rng: random.Random, event: _Event) -> str:
    """A required field is ``null``, as an export of a SQL NULL column produces."""
    event[rng.choice(("event_id", "user_id", "kind", "ts"))] = None
    return _encode(event)


def _amount_as_string(rng: random.Random, event: _Event) -> str:
    """The amount is a string (``"12.50"``), as a CSV round trip or a form post leaves it."""
    event["amount"] = f"{_price(rng, 'purchase', 'USD'):.2f}"
    return _encode(event)


def _ts_as_iso_string(rng: random.Random, event: _Event) -> str:
    """The timestamp is an ISO-8601 string instead of epoch milliseconds."""
    ts: int = event["ts"]
    moment = datetime.fromtimestamp(ts // 1000, tz=timezone.utc)
    event["ts"] = f"{moment.strftime(_ISO_FORMAT)}.{ts % 1000:03d}Z"
    return _encode(event)


def _ts_in_seconds_float(rng: random.Random, event: _Event) -> str:
    """The timestamp is float seconds (``time.time()``) instead of integer milliseconds."""
    event["ts"] = event["ts"] / 1000
    return _encode(event)


def _user_id_as_int(rng: random.Random, event: _Event) -> str:
    """The user id is a number (a database key) instead of a string."""
    event["user_id"] = int(event["user_id"][1:])
    return _encode(event)


def _tags_as_string(rng: random.Random, event: _Event) -> str:
    """The tags are one comma-separated string instead of a list."""
    event["tags"] = ",".join(event["tags"]) or "promo"
    return _encode(event)


def _amount_bool(rng: random.Random, event: _Event) -> str:
    """The amount is a boolean, which is not a number even though Python says bool is an int."""
    event["amount"] = rng.random() < 0.5
    return _encode(event)


def _negative_amount(rng: random.Random, event: _Event) -> str:
    """The amount is negative: a refund recorded as a signed value."""
    event["amount"] = -_price(rng, "refund", "USD")
    return _encode(event)


def _nan_amount(rng: random.Random, event: _Event) -> str:
    """The amount is the literal ``NaN``, which Python's json writes and reads by default."""
    event["amount"] = math.nan
    return _encode(event)


def _nonpositive_ts(rng: random.Random, event: _Event) -> str:
    """The timestamp is zero or negative: an unset clock or a sign bug."""
    event["ts"] = 0 if rng.random() < 0.5 else -event["ts"]
    return _encode(event)


def _empty_user_id(rng: random.Random, event: _Event) -> str:
    """The user id is the empty string: an anonymous visitor sent without an id."""
    event["user_id"] = ""
    return _encode(event)


def _bad_currency(rng: random.Random, event: _Event) -> str:
    """The currency is not a 3-letter uppercase code: lower case, a name, a symbol."""
    event["currency"] = rng.choice(("usd", "eur", "EURO", "US", "$", "dollar"))
    return _encode(event)


def _unknown_field(rng: random.Random, event: _Event) -> str:
    """An extra top-level key that the schema does not declare (a typo or a new producer)."""
    name, value = rng.choice(
        (("userId", event["user_id"]), ("timestamp", event["ts"]), ("debug", True))
    )
    event[name] = value
    return _encode(event)


def _not_an_object(rng: random.Random, event: _Event) -> str:
    """Valid JSON that is not an object: a batch array, a bare string, a number or null."""
    variant = rng.randrange(4)
    if variant == 0:
        return _encode([event])
    if variant == 1:
        return _encode(event["event_id"])
    if variant == 2:
        return str(event["ts"])
    return "null"


def _non_str_tag(rng: random.Random, event: _Event) -> str:
    """One tag is not a string (a number, null or an object)."""
    event["tags"] = [*event["tags"], rng.choice((7, None, {"name": "promo"}))]
    return _encode(event)


def _properties_not_object(rng: random.Random, event: _Event) -> str:
    """The properties are double-encoded: a JSON string holding the object, or a list."""
    props = event["properties"]
    event["properties"] = _encode(props) if rng.random() < 0.5 else list(props.items())
    return _encode(event)


_CORRUPTIONS: dict[str, Callable[[random.Random, _Event], str]] = {
    "malformed_json": _malformed_json,
    "truncated_line": _truncated_line,
    "missing_event_id": _missing("event_id"),
    "missing_user_id": _missing("user_id"),
    "missing_kind": _missing("kind"),
    "missing_ts": _missing("ts"),
    "null_required_field": _null_required_field,
    "amount_as_string": _amount_as_string,
    "amount_bool": _amount_bool,
    "negative_amount": _negative_amount,
    "nan_amount": _nan_amount,
    "ts_as_iso_string": _ts_as_iso_string,
    "ts_in_seconds_float": _ts_in_seconds_float,
    "nonpositive_ts": _nonpositive_ts,
    "user_id_as_int": _user_id_as_int,
    "empty_user_id": _empty_user_id,
    "bad_currency": _bad_currency,
    "tags_as_string": _tags_as_string,
    "non_str_tag": _non_str_tag,
    "properties_not_object": _properties_not_object,
    "unknown_field": _unknown_field,
    "not_an_object": _not_an_object,
}

#: Names of the ways a generated line can be invalid, in a fixed order.
INVALID_KINDS: tuple[str, ...] = tuple(_CORRUPTIONS)

_CORRUPTION_LIST = tuple(_CORRUPTIONS.values())


# --- injected attacks -----------------------------------------------------------------------
#
# Each attack is a generator of the events that replace the next valid lines, one per line, at
# those lines' positions and timestamps: (user, kind, amount, currency, label). They are built
# against the default rules of hookline-fraud: at most 10 purchases per user per minute, at
# most 10,000 USD in purchases per user per hour, at most 5,000 USD for one purchase or refund,
# no refund over what the user has bought. Blocked users are no default: the events of
# BANNED_USERS are refused once those users are on hookline-fraud's ``blocked_users``.

#: What ``GeneratedLine.attack`` and the line's ``properties.injected`` say of a line of an
#: attack: ``burst`` (a purchase past the tenth of a burst in a minute), ``spend`` (a purchase
#: that takes its user past 10,000 USD in an hour), ``amount`` (one purchase over 5,000 USD),
#: ``blocked_user``, ``refund`` (a refund by a user who bought nothing), ``blocked_currency``
#: (the ``XTS``/``XXX`` events of the traffic); ``burst_lead`` and ``spend_lead`` are the
#: events of an attack the limits let through (a burst's first ten purchases).
ATTACK_LABELS = ("burst", "burst_lead", "spend", "spend_lead", "amount", "blocked_user",
                 "refund", "blocked_currency")

#: The users whose events the ``blocked_user`` attacks send.
BANNED_USERS = tuple(f"banned-{k:02d}" for k in range(10))

_Spec = tuple[str, str, "float | int", str, str]


def _burst(rng: random.Random, user: str) -> Iterator[_Spec]:
    """11 to 20 small purchases on consecutive lines (seconds apart): past the tenth, refused."""
    for k in range(11 + rng.randrange(10)):
        yield user, "purchase", round(rng.uniform(5, 50), 2), "USD", (
            "burst" if k >= 10 else "burst_lead")


def _spend(rng: random.Random, user: str) -> Iterator[_Spec]:
    """Purchases of 2,000 to 4,900 USD (each under the limit of one) until they add up to over
    10,000 USD: that one and the next are refused."""
    total, over = 0.0, 0
    while over < 2:
        amount = round(rng.uniform(2_000, 4_800), 2)
        if abs(total + amount - 10_000) < 50:  # no total a rounding error away from the limit
            amount += 100
        total += amount
        over += total > 10_000
        yield user, "purchase", amount, "USD", "spend" if total > 10_000 else "spend_lead"


def _amount(rng: random.Random, user: str) -> Iterator[_Spec]:
    """One purchase worth 6,000 to 60,000 USD, in a major currency."""
    currency = _CURRENCIES[rng.randrange(5)]
    local = rng.uniform(6_000, 60_000) * _FX[currency]
    amount = round(local) if currency == "JPY" else round(local, 2)
    yield user, "purchase", amount, currency, "amount"


def _blocked_user(rng: random.Random, user: str) -> Iterator[_Spec]:
    """One to three events (views, clicks, purchases) of one of :data:`BANNED_USERS`."""
    banned = BANNED_USERS[rng.randrange(len(BANNED_USERS))]
    for _ in range(1 + rng.randrange(3)):
        kind = ("view", "click", "purchase")[rng.randrange(3)]
        amount = round(rng.uniform(5, 200), 2) if kind == "purchase" else 0
        yield banned, kind, amount, "USD", "blocked_user"


def _refund(rng: random.Random, user: str) -> Iterator[_Spec]:
    """A refund of 10 to 500 USD by a user who bought nothing."""
    yield user, "refund", round(rng.uniform(10, 500), 2), "USD", "refund"


_ATTACKS = (_burst, _spend, _amount, _blocked_user, _refund)
#: About how many lines one attack replaces, on average (to turn a share of lines into a
#: chance of starting an attack).
_MEAN_ATTACK_LINES = (15.5 + 4.3 + 1 + 2 + 1) / len(_ATTACKS)


def _attack_line(event_id: str, ts: int, spec: _Spec) -> str:
    user, kind, amount, currency, label = spec
    page = "/checkout" if kind == "purchase" else "/orders" if kind == "refund" else "/"
    return (f'{{"event_id":"{event_id}","user_id":"{user}","kind":"{kind}","ts":{ts},'
            f'"amount":{amount!r},"currency":"{currency}","tags":[],"properties":'
            f'{{"device":"desktop","page":"{page}","injected":"{label}"}}}}')


# --- public API -----------------------------------------------------------------------------


class GeneratedLine(NamedTuple):
    """One generated line and, when it was broken on purpose, how."""

    text: str
    """The JSONL line, without its trailing newline."""
    invalid_kind: str | None
    """``None`` for a valid event, else one of :data:`INVALID_KINDS`."""
    attack: str | None = None
    """For a line of an injected attack, one of :data:`ATTACK_LABELS`; else ``None``."""


@dataclass
class GenerateStats:
    """What :func:`write_jsonl` wrote. ``valid + invalid == total``."""

    total: int = 0
    valid: int = 0
    invalid: int = 0
    invalid_by_kind: dict[str, int] = field(default_factory=dict)
    """Count per invalid kind that occurred, in :data:`INVALID_KINDS` order."""
    attacks: int = 0
    """Lines of injected attacks (valid lines: counted in ``valid`` too)."""
    attacks_by_label: dict[str, int] = field(default_factory=dict)
    """Count per attack label that occurred, in :data:`ATTACK_LABELS` order."""


def _check_arguments(n: int, invalid_rate: float, seed: int, attack_rate: float = 0.0) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    for name, rate in (("invalid_rate", invalid_rate), ("attack_rate", attack_rate)):
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise ValueError(f"{name} must be a number in [0, 1], got {rate!r}")
        if not 0.0 <= rate <= 1.0:  # also rejects NaN
            raise ValueError(f"{name} must be in [0, 1], got {rate!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")


def generate_labeled(
    n: int, *, invalid_rate: float = 0.05, seed: int = 0, attack_rate: float = 0.0
) -> Iterator[GeneratedLine]:
    """Yield ``n`` lines, each with the kind of damage done to it (``None`` when valid) and,
    for a line of an injected attack, its label.

    Exactly ``n * invalid_rate`` lines (rounded half up) are invalid, at positions and of
    kinds drawn from the seeded rng; valid lines carry unique ``event_id`` values
    ``evt-<seed>-<i:08x>`` and strictly increasing ``ts``. About a share ``attack_rate`` of the
    lines are replaced by the events of attacks (the same positions stay invalid, and the
    other lines are the same as without attacks, but for their ``XTS``/``XXX`` events, which
    are labeled ``blocked_currency``, and a refund no longer covered because an attack
    replaced its user's purchase, which becomes a purchase). Arguments are checked at the
    call, before the first line is made.

    Raises:
        ValueError: ``n`` is negative, a rate is outside ``[0, 1]``, or an argument has the
            wrong type.
    """
    _check_arguments(n, invalid_rate, seed, attack_rate)
    return _generate(n, invalid_rate, seed, attack_rate)


def _generate(n: int, invalid_rate: float, seed: int, attack_rate: float
              ) -> Iterator[GeneratedLine]:
    rng = random.Random(seed)
    rand = rng.random
    n_users = max(100, n // 10)
    scatter_a, scatter_b = _user_scatter(rng, n_users)
    user_ratio = (n_users + _USER_HEAD) / _USER_HEAD
    kinds, kind_cum, priced = _KINDS, _KIND_CUM, _PRICED_KINDS
    currencies, currency_cum = _CURRENCIES, _CURRENCY_CUM
    tag_sets, tag_count_cum = _TAG_SETS_JSON, _TAG_COUNT_CUM
    devices, n_devices = _DEVICES, len(_DEVICES)
    corruptions, n_corruptions = _CORRUPTION_LIST, len(_CORRUPTION_LIST)
    invalid_left = int(n * invalid_rate + 0.5)
    ts = BASE_TS
    fx, blocked = _FX, _BLOCKED_CURRENCIES
    #: Per user, the value in USD of what they bought and did not get refunded.
    bought: dict[int, float] = {}
    attack_rng = random.Random(f"hookline-attacks-{seed}")  # the traffic's draws stay as they are
    attack_start = attack_rate / _MEAN_ATTACK_LINES
    attack: Iterator[_Spec] | None = None
    attackers = 0

    for i in range(n):
        ts += 1 + int(rand() * (2 * _MEAN_GAP_MS - 1))
        rank = min(int(_USER_HEAD * user_ratio ** rand() - _USER_HEAD), n_users - 1)
        user = (rank * scatter_a + scatter_b) % n_users
        kind = kinds[bisect(kind_cum, rand())]
        currency = currencies[bisect(currency_cum, rand())]
        amount = _price(rng, kind, currency) if kind in priced else 0
        if (kind == "refund" and currency not in blocked
                and amount / fx[currency] > bought.get(user, 0.0) - 0.01):
            kind = "purchase"  # more than the user bought (a cent to spare): a purchase
        tag_set = tag_sets[bisect(tag_count_cum, rand())]
        tags = tag_set[int(rand() * len(tag_set))]
        properties = _properties(rng, kind, devices[rank % n_devices])
        # The line is written directly (what json.dumps would give, several times faster);
        # only the few lines to break are parsed back into a dict to be damaged.
        line = (
            f'{{"event_id":"evt-{seed}-{i:08x}","user_id":"u{user:06d}",'
            f'"kind":"{kind}","ts":{ts},"amount":{amount!r},"currency":"{currency}",'
            f'"tags":{tags},"properties":{properties}}}'
        )
        # Selection sampling (Knuth's algorithm S): exactly `invalid_left` of the remaining
        # lines are chosen, each with equal chance, without knowing their positions upfront.
        if invalid_left and rand() * (n - i) < invalid_left:
            invalid_left -= 1
            k = int(rand() * n_corruptions)
            yield GeneratedLine(corruptions[k](rng, json.loads(line)), INVALID_KINDS[k])
            continue
        if attack_rate:
            if attack is None and attack_rng.random() < attack_start:
                attackers += 1
                attack = _ATTACKS[attack_rng.randrange(len(_ATTACKS))](
                    attack_rng, f"attacker-{attackers:06d}")
            spec = None if attack is None else next(attack, None)
            if spec is not None:
                yield GeneratedLine(_attack_line(f"evt-{seed}-{i:08x}", ts, spec), None, spec[4])
                continue
            attack = None
        if currency in blocked:
            if not attack_rate:
                yield GeneratedLine(line, None)
                continue
            line = f'{line[:-2]},"injected":"blocked_currency"}}}}'
            yield GeneratedLine(line, None, "blocked_currency")
            continue
        if kind == "purchase":
            bought[user] = bought.get(user, 0.0) + amount / fx[currency]
        elif kind == "refund":
            bought[user] -= amount / fx[currency]
        yield GeneratedLine(line, None)


def generate_lines(n: int, *, invalid_rate: float = 0.05, seed: int = 0,
                   attack_rate: float = 0.0) -> Iterator[str]:
    """Yield ``n`` JSONL lines (without trailing newlines), a share ``invalid_rate`` invalid.

    Deterministic for a given ``(n, invalid_rate, seed, attack_rate)``; streaming. See
    :func:`generate_labeled` for the same lines together with their labels.

    >>> len(list(generate_lines(10, seed=1)))
    10
    """
    return (line.text for line in generate_labeled(n, invalid_rate=invalid_rate, seed=seed,
                                                   attack_rate=attack_rate))


def write_jsonl(
    target: str | os.PathLike[str] | TextIO,
    n: int,
    *,
    invalid_rate: float = 0.05,
    seed: int = 0,
    attack_rate: float = 0.0,
) -> GenerateStats:
    """Write ``n`` generated lines, each ending in ``"\\n"``, and count what was written.

    ``target`` is a path (created or overwritten, UTF-8) or an open text stream, which is
    written to and left open (``sys.stdout`` works).
    """
    lines = generate_labeled(n, invalid_rate=invalid_rate, seed=seed, attack_rate=attack_rate)
    if isinstance(target, (str, os.PathLike)):
        with open(target, "w", encoding="utf-8", newline="") as stream:
            return _write(lines, stream)
    return _write(lines, target)


def _write(lines: Iterator[GeneratedLine], stream: TextIO) -> GenerateStats:
    counts = dict.fromkeys(INVALID_KINDS, 0)
    labels = dict.fromkeys(ATTACK_LABELS, 0)
    total = 0
    write = stream.write
    for text, invalid_kind, attack in lines:
        write(f"{text}\n")
        total += 1
        if invalid_kind is not None:
            counts[invalid_kind] += 1
        elif attack is not None:
            labels[attack] += 1
    by_kind = {kind: count for kind, count in counts.items() if count}
    by_label = {label: count for label, count in labels.items() if count}
    invalid = sum(by_kind.values())
    return GenerateStats(
        total=total, valid=total - invalid, invalid=invalid, invalid_by_kind=by_kind,
        attacks=sum(by_label.values()), attacks_by_label=by_label,
    )


# --- the demo input, generated once per size and seed -------------------------------------


def demo_input(n: int, *, seed: int = 0, invalid_rate: float = 0.05,
               folder: str | os.PathLike[str] | None = None) -> tuple[str, GenerateStats | None]:
    """The file of ``hookline run --demo``: ``n`` lines of :func:`write_jsonl`, in hookline's
    cache folder (``HOOKLINE_CACHE_DIR``; ``folder`` in its place), generated the first time
    and reused after, so that a second demo run reads the same file (and resumes past what is
    committed) and nothing piles up in the temp folder. Returns the path, and what was written
    (None when the file was there already).

    The file is written under a temporary name beside its final one and renamed when
    complete: an interrupted generation never leaves a partial file to be reused.
    """
    import tempfile

    from ._discovery import cache_dir
    from ._version import __version__

    _check_arguments(n, invalid_rate, seed)
    target = os.path.join(folder if folder is not None else cache_dir(), "demo",
                          f"demo-{__version__}-n{n}-seed{seed}-invalid{invalid_rate:g}.jsonl")
    if os.path.isfile(target):
        return target, None
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".demo-",
                                   suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            stats = _write(generate_labeled(n, invalid_rate=invalid_rate, seed=seed), stream)
        os.replace(partial, target)
    except BaseException:
        os.unlink(partial)
        raise
    return target, stats
