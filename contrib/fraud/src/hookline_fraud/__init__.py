"""hookline-fraud: validate stages of the fraud team that reject suspicious events.

Installed next to hookline, this package is found through its entry point
``fraud = "hookline_fraud"`` in the group ``hookline.plugins``. Importing it defines
its stages, which the ``hookline.Stage`` metaclass records:

- ``fraud.blocked_currency`` (:class:`BlockedCurrency`): rejects events whose currency
  is on a block list.
"""

from __future__ import annotations

from hookline_fraud._currency import BlockedCurrency, normalize_codes

#: The hookline plugin API this plugin is written for (checked when it is loaded).
HOOKLINE_API = 1

__all__ = [
    "HOOKLINE_API",
    "BlockedCurrency",
    "normalize_codes",
]
