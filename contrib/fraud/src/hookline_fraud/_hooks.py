"""The plugin's hooks: the event fields its rules set (and clear before they run), and the
flags of shadow mode."""

from __future__ import annotations

from typing import Any

import hookline
from hookline import fields

from hookline_fraud._rule import RULES, SHADOW

__all__ = ["hookline_event_fields", "hookline_flags", "hookline_validate"]


@hookline.hookimpl
def hookline_event_fields() -> dict[str, fields.Field[Any]]:
    """``risk``: how close the rules came to refusing the event (0 to 1, 1 for an event a
    shadowed rule would have refused); ``fraud_shadow``: the rules in shadow mode that would
    have refused it (None when none would)."""
    return {
        "risk": fields.Number(minimum=0, maximum=1, default=0.0, description=(
            "how close the fraud rules came to refusing the event")),
        "fraud_shadow": fields.List(fields.String(min_length=1), optional=True, description=(
            "the fraud rules in shadow mode that would have refused the event")),
    }


@hookline.hookimpl(tryfirst=True)
def hookline_validate(event: Any) -> None:
    """Discard a ``risk`` or ``fraud_shadow`` the input line carried: those fields are the
    rules' to set. Runs before the rules (``tryfirst``, and the plugin's own name, ``fraud``,
    sorts before its stages')."""
    if event.risk or event.fraud_shadow is not None:
        event.risk = 0.0
        event.fraud_shadow = None


@hookline.hookimpl
def hookline_flags() -> list[dict[str, Any]]:
    """``fraud.shadow`` for every rule, ``fraud.shadow.<rule>`` for one: off by default."""
    return [
        {"name": SHADOW, "default": False,
         "description": "Every fraud rule records what it would refuse in fraud_shadow "
                        "instead of refusing it."},
        *({"name": f"{SHADOW}.{rule}", "default": False,
           "description": f"The fraud rule {rule} records what it would refuse in "
                          "fraud_shadow instead of refusing it."} for rule in RULES),
    ]
