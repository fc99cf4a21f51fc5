"""Fields a plugin adds to the event schema (and so to the columns of the events table)."""

from typing import Any

import hookline
from hookline import fields


@hookline.hookimpl
def hookline_event_fields() -> dict[str, fields.Field[Any]]:
    return {
        "country": fields.String(pattern="[A-Z]{2}", optional=True),
        "session_id": fields.String(min_length=1, max_length=64, optional=True),
    }
