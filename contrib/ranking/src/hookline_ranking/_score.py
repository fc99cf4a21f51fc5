"""The ``score`` stage and the pure functions that compute an event's relevance.

The relevance of an event is a weighted mean of three signals, each in [0, 1]:

- the weight of its kind (a purchase matters more than a view), share ``KIND_SHARE``;
- its amount, log-scaled and saturating at ``amount_cap``, share ``AMOUNT_SHARE``;
- how many distinct tags it carries, saturating at ``tag_cap``, share ``TAG_SHARE``.

The shares add up to 1, so the relevance is in [0, 1]. It depends on nothing but the
event and the settings: the same event always gets the same score.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any

import hookline
from hookline import fields

KIND_SHARE = 0.6
AMOUNT_SHARE = 0.3
TAG_SHARE = 0.1

#: How much each kind of event says about a user's interest, in [0, 1].
DEFAULT_KIND_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "purchase": 1.0,
        "add_to_cart": 0.6,
        "signup": 0.5,
        "click": 0.3,
        "refund": 0.2,
        "view": 0.1,
    }
)
#: Weight of a kind that is not in ``kind_weights``.
DEFAULT_WEIGHT = 0.2
#: The amount at which the amount signal saturates at 1.
DEFAULT_AMOUNT_CAP = 1000.0
#: The number of distinct tags at which the tag signal saturates at 1.
DEFAULT_TAG_CAP = 5

#: Digits the stage keeps: scores compare and store the same on every platform.
SCORE_DIGITS = 6


def amount_signal(amount: float, cap: float = DEFAULT_AMOUNT_CAP) -> float:
    """Return ``log1p(amount) / log1p(cap)``, clamped to [0, 1].

    Log scale, so that 10 → 100 counts as much as 100 → 1000; saturating, so that one
    huge order cannot outweigh the kind of the event. ``cap`` must be positive.
    """
    if amount <= 0:
        return 0.0
    return min(1.0, math.log1p(amount) / math.log1p(cap))


def tag_signal(tags: Collection[str], cap: int = DEFAULT_TAG_CAP) -> float:
    """Return the number of distinct tags over ``cap``, clamped to [0, 1]. ``cap`` must be ≥ 1."""
    return min(len(set(tags)), cap) / cap


def relevance(
    kind: str,
    amount: float,
    tags: Collection[str],
    *,
    kind_weights: Mapping[str, float] = DEFAULT_KIND_WEIGHTS,
    default_weight: float = DEFAULT_WEIGHT,
    amount_cap: float = DEFAULT_AMOUNT_CAP,
    tag_cap: int = DEFAULT_TAG_CAP,
) -> float:
    """Return the relevance of an event in [0, 1], rounded to ``SCORE_DIGITS`` digits."""
    weight = kind_weights.get(kind, default_weight)
    weight = min(1.0, max(0.0, weight))
    score = (
        KIND_SHARE * weight
        + AMOUNT_SHARE * amount_signal(amount, amount_cap)
        + TAG_SHARE * tag_signal(tags, tag_cap)
    )
    return round(min(1.0, score), SCORE_DIGITS)


class Score(hookline.Stage, phase="score", name="score"):
    """Set ``event.score`` to the event's :func:`relevance` under the plugin's settings."""

    class Settings(hookline.Settings):
        """Settings of ``ranking.score``, read from ``[settings.ranking]``."""

        kind_weights = fields.Mapping(
            values=fields.Number(minimum=0, maximum=1),
            default=lambda: dict(DEFAULT_KIND_WEIGHTS),
        )
        default_weight = fields.Number(minimum=0, maximum=1, default=DEFAULT_WEIGHT)
        amount_cap = fields.Number(minimum=0, exclusive_minimum=True, default=DEFAULT_AMOUNT_CAP)
        tag_cap = fields.Integer(minimum=1, default=DEFAULT_TAG_CAP)

    def process(self, event: Any) -> None:
        """Score the event in place.

        ``event`` is an instance of the pipeline's event class (``hookline.DefaultEvent``'s
        fields plus ``score``); typed ``Any`` because that class is built at run time.
        """
        settings = self.settings
        event.score = relevance(
            event.kind,
            event.amount,
            event.tags,
            kind_weights=settings.kind_weights,
            default_weight=settings.default_weight,
            amount_cap=settings.amount_cap,
            tag_cap=settings.tag_cap,
        )
