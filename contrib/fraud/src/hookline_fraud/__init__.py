"""hookline-fraud: the fraud team's rules, as ``validate`` stages configured in
``[settings.fraud]``.

Installed next to hookline, this package is found through its entry point
``fraud = "hookline_fraud"`` in the group ``hookline.plugins``. Importing it defines its
stages, which the ``hookline.Stage`` metaclass records, in the order they run:

- ``fraud.blocked_currency`` (:class:`BlockedCurrency`) and ``fraud.blocked_user``
  (:class:`BlockedUser`): block lists, inline or from files;
- ``fraud.amount_limit`` (:class:`AmountLimit`): one event's amount per kind and currency;
- ``fraud.velocity`` (:class:`Velocity`): events and money per user per kind in sliding
  windows of event time, kept in the stage's state;
- ``fraud.sequence`` (:class:`Sequence`): a refund larger than the user's purchases so far.

Its hooks add the event fields ``risk`` and ``fraud_shadow`` (and clear the values an input
line carries for them, before the rules run) and declare the flags of shadow mode,
``fraud.shadow`` and ``fraud.shadow.<rule>``.
"""

from __future__ import annotations

from hookline_fraud._amount import DEFAULT_MAX_AMOUNT, AmountLimit
from hookline_fraud._blocklists import (
    DEFAULT_BLOCKED,
    BlockedCurrency,
    BlockedUser,
    normalize_codes,
    read_list,
)
from hookline_fraud._hooks import hookline_event_fields, hookline_flags, hookline_validate
from hookline_fraud._money import DEFAULT_RATES
from hookline_fraud._rule import RULES, SHADOW
from hookline_fraud._sequence import Sequence
from hookline_fraud._velocity import DEFAULT_VELOCITY, MAX_ENTRIES, Velocity

#: The hookline plugin API this plugin is written for (checked when it is loaded).
HOOKLINE_API = 1

__all__ = [
    "DEFAULT_BLOCKED",
    "DEFAULT_MAX_AMOUNT",
    "DEFAULT_RATES",
    "DEFAULT_VELOCITY",
    "HOOKLINE_API",
    "MAX_ENTRIES",
    "RULES",
    "SHADOW",
    "AmountLimit",
    "BlockedCurrency",
    "BlockedUser",
    "Sequence",
    "Velocity",
    "hookline_event_fields",
    "hookline_flags",
    "hookline_validate",
    "normalize_codes",
    "read_list",
]
