"""hookline-ranking: a ``score`` event field and the stage that fills it.

Installed next to hookline, this package is found through its entry point
``ranking = "hookline_ranking"`` in the group ``hookline.plugins``. It contributes:

- the optional event field ``score`` (a number in [0, 1]), through the
  ``hookline_event_fields`` hook;
- the score stage ``ranking.score`` (:class:`Score`), which sets ``event.score`` to a
  deterministic relevance computed by :func:`relevance` from the event's kind, amount
  and tags;
- the experiment ``ranking.freshness`` (:class:`FreshnessBoost`), gated by the flag
  ``ranking.experimental`` (off unless turned on, for all or a share of users).
"""

from __future__ import annotations

from hookline_ranking._experimental import FLAG, FreshnessBoost, hookline_flags
from hookline_ranking._fields import hookline_event_fields
from hookline_ranking._score import (
    DEFAULT_KIND_WEIGHTS,
    Score,
    amount_signal,
    relevance,
    tag_signal,
)

#: The hookline plugin API this plugin is written for (checked when it is loaded).
HOOKLINE_API = 1

__all__ = [
    "DEFAULT_KIND_WEIGHTS",
    "FLAG",
    "HOOKLINE_API",
    "FreshnessBoost",
    "Score",
    "amount_signal",
    "hookline_event_fields",
    "hookline_flags",
    "relevance",
    "tag_signal",
]
