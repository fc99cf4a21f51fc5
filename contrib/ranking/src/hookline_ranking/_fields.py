"""The event fields the ranking plugin adds to the pipeline's schema."""

from __future__ import annotations

from typing import Any

import hookline
from hookline import fields

#: The values of ``score_model``: which scorer gave the event its score.
CONTROL, FRESHNESS = "control", "freshness"


@hookline.hookimpl
def hookline_event_fields() -> dict[str, fields.Field[Any]]:
    """Add ``score`` and ``score_model``, both missing until the score stages run."""
    return {
        "score": fields.Number(minimum=0, maximum=1, optional=True,
                               description="how likely the user is to purchase soon"),
        "score_model": fields.Choice((CONTROL, FRESHNESS), optional=True,
                                     description="the scorer that set score: the variant"),
    }
