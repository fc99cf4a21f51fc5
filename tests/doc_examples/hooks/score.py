"""A score stage with a field of its own: how urgently a person should look at the event."""

from typing import Any

import hookline
from hookline import fields


@hookline.hookimpl
def hookline_event_fields() -> dict[str, fields.Field[Any]]:
    return {"priority": fields.Integer(minimum=0, maximum=3, default=0)}


class Priority(hookline.Stage, phase="score", name="priority"):
    def process(self, event: hookline.Event) -> None:
        if event.kind == "refund":
            event.priority = 3 if event.amount >= 1000 else 2
        elif event.kind == "purchase" and event.amount >= 1000:
            event.priority = 1
