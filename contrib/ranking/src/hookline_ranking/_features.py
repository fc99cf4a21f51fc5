"""What the models see: features of an event and of the user's history before it.

One definition serves the stages (one event at a time, plain Python math) and the training
command (every stored event, replayed in order): what the model was fitted on is what it
scores with.

A user's history is a list of three counts, ``[events, purchases, since_purchase]``: the
events of the user scored before this one, the purchases among them, and the events since
the last purchase (all of them, before the first purchase). The control stage keeps one such
list per user in its state, changed in place after each event.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: The kind of event that counts as a purchase, for the history and for the training label.
PURCHASE = "purchase"

#: Tags beyond this many add nothing to the ``tags`` feature.
TAG_CAP = 10

#: Seconds over which the ``fresh`` feature falls to 1/e: about one browsing session.
SESSION_S = 1800.0

#: The control model's features, in the order of :func:`control_features`.
CONTROL_FEATURES = ("amount", "tags", "events", "purchases", "since_purchase")

#: The freshness adjustment's features, in the order of :func:`freshness_features`.
FRESHNESS_FEATURES = ("returning", "gap", "fresh")


def new_history() -> list[int]:
    """The history of a user not seen before: no events, no purchases."""
    return [0, 0, 0]


def remember(history: list[int], kind: str) -> list[int]:
    """Add one event of ``kind`` to ``history``, in place (the state saves in-place changes),
    and return it."""
    history[0] += 1
    if kind == PURCHASE:
        history[1] += 1
        history[2] = 0
    else:
        history[2] += 1
    return history


def control_features(amount: float, tag_count: int,
                     history: Sequence[int]) -> tuple[float, float, float, float, float]:
    """The control model's features (:data:`CONTROL_FEATURES`) of an event with ``amount`` and
    ``tag_count`` tags after ``history``: log-scaled amount and counts, so that the 1,000th
    event or a price of 10,000 does not drown the rest."""
    events, purchases, since_purchase = history
    return (math.log1p(amount), float(min(tag_count, TAG_CAP)), math.log1p(events),
            math.log1p(purchases), math.log1p(since_purchase))


def freshness_features(gap_ms: int | None) -> tuple[float, float, float]:
    """The freshness adjustment's features (:data:`FRESHNESS_FEATURES`) for an event that
    comes ``gap_ms`` after the user's latest earlier event (None: none seen): whether the user
    is returning, the log-scaled gap in seconds, and how fresh the session is (1 right after
    the previous event, 1/e after :data:`SESSION_S`)."""
    if gap_ms is None:
        return (0.0, 0.0, 0.0)
    seconds = max(gap_ms, 0) / 1000.0  # an earlier timestamp than the latest: no gap
    return (1.0, math.log1p(seconds), math.exp(-seconds / SESSION_S))


def sigmoid(z: float) -> float:
    """The logistic function, without overflow for any finite ``z``."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


#: Scores are clamped this far from 0 and 1 before :func:`logit`, which is infinite there.
_EDGE = 1e-12


def logit(p: float) -> float:
    """The inverse of :func:`sigmoid`, finite for every ``p`` in [0, 1]."""
    p = min(max(p, _EDGE), 1.0 - _EDGE)
    return math.log(p / (1.0 - p))
