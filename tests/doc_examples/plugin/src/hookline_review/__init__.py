"""hookline-review: hold big purchases for a manual review."""

from typing import Any

import hookline
from hookline import fields

HOOKLINE_API = 1  # the plugin API this plugin is written for


@hookline.hookimpl
def hookline_event_fields() -> dict[str, fields.Field[Any]]:
    """Add ``review``: why a person should look at the event (None: no need)."""
    return {"review": fields.String(optional=True)}


class BigSpender(hookline.Stage, phase="validate", name="big_spender"):
    """Reject a purchase over the limit; mark one over half of it for a review."""

    class Settings(hookline.Settings):
        limit = fields.Number(minimum=0, exclusive_minimum=True, default=10_000)

    def process(self, event: hookline.Event) -> None:
        limit = self.settings.limit
        if event.kind != "purchase":
            return
        if event.amount > limit:
            raise hookline.Reject(f"amount {event.amount} is over the limit of {limit}")
        if event.amount > limit / 2:
            event.review = f"amount {event.amount} is over half the limit"
