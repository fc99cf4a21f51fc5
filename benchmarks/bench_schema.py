"""Building a 6-field event from a dict: hookline against its peers (issue 3).

The event: ``user_id`` a non-empty str, ``amount`` a finite number >= 0, ``currency`` one of
USD/EUR/GBP, ``ts`` an int > 0, ``kind`` a str, ``tags`` a list of str; unknown keys refused.
Each peer expresses those checks its own idiomatic way:

* plain: a class with a hand-written ``__init__`` and no checks, ``Plain(**d)`` (the limit);
* dataclass: ``@dataclass`` with the checks in ``__post_init__``;
* attrs: ``@attrs.define`` with ``attrs.validators``;
* pydantic v2: ``BaseModel.model_validate(d)``, strict, ``extra="forbid"``;
* msgspec: ``msgspec.convert(d, Struct)`` with ``Meta`` constraints;
* hookline: ``class E(hookline.Event)`` with ``hookline.fields``, ``E.from_dict(d)``.

Three paths: valid data; invalid data (``amount = -1``, each peer raising and the benchmark
catching its own error); reading the 6 fields of an existing instance. Before timing, every
peer is checked to accept the valid event with the same values and reject the invalid one, and
a table shows which edge cases each peer accepts (where the peers' checks are not the same).

    python benchmarks/bench_schema.py [--quick] [--json PATH]
"""

# No `from __future__ import annotations`: pydantic and msgspec resolve the annotations of
# the classes defined inside functions below, which string annotations would hide.

import dataclasses
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Case, check, compare, finish, note, parse_args

import hookline
from hookline import fields

NAME = "schema"
PACKAGES = ("hookline", "attrs", "pydantic", "msgspec")

CURRENCIES = ("USD", "EUR", "GBP")
VALID: dict[str, Any] = {
    "user_id": "u-1842",
    "amount": 12.5,  # a float: pydantic and msgspec would store an int as a float
    "currency": "EUR",
    "ts": 1_767_225_600_000,
    "kind": "purchase",
    "tags": ["web", "promo"],
}
INVALID: dict[str, Any] = {**VALID, "amount": -1}
FIELDS = tuple(VALID)

#: Inputs on which strictness differs between libraries: shown, not timed.
EDGE_CASES: dict[str, dict[str, Any]] = {
    "amount=True": {**VALID, "amount": True},
    "amount=inf": {**VALID, "amount": math.inf},
    "amount=nan": {**VALID, "amount": math.nan},
    "amount=3 (int)": {**VALID, "amount": 3},
    "ts=True": {**VALID, "ts": True},
    "user_id=''": {**VALID, "user_id": ""},
    "currency='usd'": {**VALID, "currency": "usd"},
    "tags=['a', 1]": {**VALID, "tags": ["a", 1]},
    "tags=('a',)": {**VALID, "tags": ("a",)},
    "unknown key": {**VALID, "extra": 1},
}


# --------------------------------------------------------------------------------------------
# The peers


class Plain:
    """No checks at all: the cost of building an object with six attributes."""

    def __init__(self, user_id: str, amount: float, currency: str, ts: int, kind: str,
                 tags: list[str]) -> None:
        self.user_id = user_id
        self.amount = amount
        self.currency = currency
        self.ts = ts
        self.kind = kind
        self.tags = tags


@dataclasses.dataclass
class Checked:
    """A dataclass checking in ``__post_init__`` exactly what the hookline schema checks."""

    user_id: str
    amount: float
    currency: str
    ts: int
    kind: str
    tags: list[str]

    def __post_init__(self) -> None:
        if type(self.user_id) is not str or not self.user_id:
            raise ValueError(f"user_id must be a non-empty string, not {self.user_id!r}")
        amount = self.amount
        if not ((type(amount) is int or (type(amount) is float and math.isfinite(amount)))
                and amount >= 0):
            raise ValueError(f"amount must be a finite number >= 0, not {amount!r}")
        if type(self.currency) is not str or self.currency not in CURRENCIES:
            raise ValueError(f"currency must be one of {CURRENCIES}, not {self.currency!r}")
        if type(self.ts) is not int or self.ts <= 0:
            raise ValueError(f"ts must be an int > 0, not {self.ts!r}")
        if type(self.kind) is not str:
            raise ValueError(f"kind must be a string, not {self.kind!r}")
        if type(self.tags) is not list:
            raise ValueError(f"tags must be a list, not {self.tags!r}")
        for tag in self.tags:
            if type(tag) is not str:
                raise ValueError(f"tags must hold strings, not {tag!r}")


class Event(hookline.Event):
    """The hookline schema under test."""

    user_id = fields.String(min_length=1)
    amount = fields.Number(minimum=0)
    currency = fields.Choice(list(CURRENCIES))
    ts = fields.Integer(minimum=1)
    kind = fields.String()
    tags = fields.List(fields.String())


@dataclasses.dataclass
class Peer:
    """One library: how it builds from a dict, which error it raises, how to read a value."""

    name: str
    build: str  # a statement over ``d``, for Case.inline
    namespace: dict[str, Any]
    error: type[BaseException] | None  # None: no checks (plain)

    def make(self, data: dict[str, Any]) -> Any:
        scope = {**self.namespace, "d": data}
        exec(f"result = {self.build}", scope)
        return scope["result"]


def peers() -> tuple[list[Peer], list[str]]:
    """The peers that are installed, and a note for each one skipped."""
    found = [
        Peer("plain", "Plain(**d)", {"Plain": Plain}, None),
        Peer("dataclass", "Checked(**d)", {"Checked": Checked}, ValueError),
    ]
    skipped = []
    for make in (_attrs_peer, _pydantic_peer, _msgspec_peer):
        try:
            found.append(make())
        except ImportError as exc:
            skipped.append(f"{exc.name or exc} is not installed: its rows are skipped")
    found.append(Peer("hookline", "Event.from_dict(d)", {"Event": Event},
                      hookline.ValidationError))
    return found, skipped


def _attrs_peer() -> Peer:
    import attrs
    from attrs import validators as v

    @attrs.define
    class WithValidators:
        user_id: str = attrs.field(validator=v.and_(v.instance_of(str), v.min_len(1)))
        amount: float = attrs.field(validator=v.and_(v.instance_of(float | int), v.ge(0.0)))
        currency: str = attrs.field(validator=v.in_(CURRENCIES))
        ts: int = attrs.field(validator=v.and_(v.instance_of(int), v.gt(0)))
        kind: str = attrs.field(validator=v.instance_of(str))
        tags: list[str] = attrs.field(validator=v.deep_iterable(
            member_validator=v.instance_of(str), iterable_validator=v.instance_of(list)))

    return Peer("attrs", "A(**d)", {"A": WithValidators}, ValueError)


def _pydantic_peer() -> Peer:
    from typing import Annotated, Literal

    import pydantic

    class Model(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(strict=True, extra="forbid")

        user_id: Annotated[str, pydantic.Field(min_length=1)]
        amount: Annotated[float, pydantic.Field(ge=0, allow_inf_nan=False)]
        currency: Literal["USD", "EUR", "GBP"]
        ts: Annotated[int, pydantic.Field(gt=0)]
        kind: str
        tags: list[str]

    return Peer("pydantic v2", "Model.model_validate(d)", {"Model": Model},
                pydantic.ValidationError)


def _msgspec_peer() -> Peer:
    from typing import Annotated, Literal

    import msgspec

    class Struct(msgspec.Struct, forbid_unknown_fields=True):
        user_id: Annotated[str, msgspec.Meta(min_length=1)]
        amount: Annotated[float, msgspec.Meta(ge=0, le=sys.float_info.max)]  # le: no inf
        currency: Literal["USD", "EUR", "GBP"]
        ts: Annotated[int, msgspec.Meta(gt=0)]
        kind: str
        tags: list[str]

    return Peer("msgspec", "convert(d, S)", {"convert": msgspec.convert, "S": Struct},
                msgspec.ValidationError)


# --------------------------------------------------------------------------------------------
# Checks before timing


def verify(found: Sequence[Peer]) -> None:
    """Every peer builds the valid event with the same values and rejects the invalid one."""
    for peer in found:
        built = peer.make(dict(VALID))
        values = {name: getattr(built, name) for name in FIELDS}
        if values != VALID:
            raise AssertionError(f"{peer.name} built {values}, not {VALID}")
        if peer.error is None:
            continue
        try:
            peer.make(dict(INVALID))
        except peer.error:
            pass
        else:
            raise AssertionError(f"{peer.name} accepted amount=-1")


def edge_table(found: Sequence[Peer]) -> str:
    """Which edge cases each checking peer accepts (ok) or rejects (-)."""
    checking = [peer for peer in found if peer.error is not None]
    width = max(len(label) for label in EDGE_CASES)
    lines = [f"{'input':<{width}}  " + "  ".join(f"{p.name:>11}" for p in checking)]
    for label, data in EDGE_CASES.items():
        cells = []
        for peer in checking:
            try:
                peer.make(dict(data))
                cells.append("ok")
            except Exception as exc:  # an unknown keyword is a TypeError for some peers
                if not isinstance(exc, (TypeError, peer.error or TypeError)):
                    raise
                cells.append("-")
        lines.append(f"{label:<{width}}  " + "  ".join(f"{cell:>11}" for cell in cells))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The benchmark


def _read_stmt() -> str:
    return "; ".join(f"o.{name}" for name in FIELDS)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__.partition("\n")[0], argv)
    found, skipped = peers()
    verify(found)
    print("Edge cases accepted (ok) or rejected (-) by each checking peer:")
    print(edge_table(found))
    for text in skipped:
        note(text)
    names = [peer.name for peer in found]
    timing: dict[str, Any] = {"repeats": args.repeats, "min_time": args.min_time}
    with_pydantic: dict[str, str] = {"x hookline": "hookline"}

    valid = compare(
        "Event from a valid dict (ns per event)",
        [Case.inline(p.name, p.build, {**p.namespace, "d": VALID}) for p in found],
        reference="plain", columns=with_pydantic, **timing,
    )

    def rejecting(peer: Peer) -> Case:
        assert peer.error is not None
        stmt = f"try:\n    {peer.build}\nexcept _Error:\n    pass"
        return Case.inline(f"{peer.name} (invalid)", stmt,
                           {**peer.namespace, "d": INVALID, "_Error": peer.error})

    invalid = compare(
        "Event from an invalid dict, amount = -1, error raised and caught (ns per event)",
        [Case.inline("plain (valid)", "Plain(**d)", {"Plain": Plain, "d": VALID}),
         *(rejecting(p) for p in found if p.error is not None)],
        reference="plain (valid)", columns={"x hookline": "hookline (invalid)"}, **timing,
    )

    read = compare(
        "Reading the 6 fields of an instance (ns per 6 reads)",
        [Case.inline(p.name, _read_stmt(), {"o": p.make(dict(VALID))}, unroll=10)
         for p in found],
        reference="plain", **timing,
    )

    # The boundary check of an accepted event (issue 14): one generated call per event that
    # left the stages, against building the event it checks.
    pipeline = hookline.Pipeline.from_plugins([])
    event = pipeline.make_event({"event_id": "e", "user_id": "u", "kind": "k", "ts": 1,
                                 "tags": ["a", "b"], "properties": {"x": 1}})
    boundary = compare(
        "Boundary check of an accepted event, against building it (ns per event)",
        [Case.inline("build", "make(d)", {"make": pipeline.make_event, "d": event.to_dict()}),
         Case.inline("boundary check", "check(e, r)",
                     {"check": pipeline.boundary, "e": event, "r": event.__dict__.copy()})],
        reference="build", **timing,
    )

    print("\nTargets (issue 3):")
    check("hookline valid, x plain", valid.ratio("hookline"), "<=", 2.5)
    if "pydantic v2" in names:
        check("pydantic v2 / hookline, valid", valid.ratio("pydantic v2", "hookline"), ">=", 2)
    else:
        note("pydantic is not installed: the target 'hookline >= 2x faster than pydantic v2' "
             "is not checked")
    check("hookline invalid, x plain valid", invalid.ratio("hookline (invalid)"), "<=", 4)
    check("hookline read, x plain read", read.ratio("hookline"), "<=", 1.5)
    print("\nTarget (issue 14):")
    check("boundary check, x building the event", boundary.ratio("boundary check"), "<=", 0.5)
    return finish(args, NAME, PACKAGES)


if __name__ == "__main__":
    raise SystemExit(main())
