"""The event fields the ranking plugin adds to the pipeline's schema."""

from __future__ import annotations

from typing import Any

import hookline
from hookline import fields


@hookline.hookimpl
def hookline_event_fields() -> dict[str, fields.Field[Any]]:
    """Add ``score``: the event's relevance in [0, 1], missing until the score stage runs."""
    return {"score": fields.Number(minimum=0, maximum=1, optional=True)}
