"""The ``blocked_currency`` validate stage: reject events paid in a blocked currency."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from typing import Any

import hookline
from hookline import fields

#: ISO 4217 codes reserved for testing (``XTS``) and for "no currency" (``XXX``):
#: real traffic never carries them, so an event that does is suspicious.
DEFAULT_BLOCKED = ("XTS", "XXX")


def normalize_codes(codes: Iterable[str]) -> frozenset[str]:
    """Return currency codes as a set of upper-case codes without surrounding blanks.

    Configuration is written by people (``blocked = ["xts", " XXX"]``); events carry
    upper-case ISO 4217 codes. Normalizing once lets the stage compare with ``in``.
    """
    return frozenset(code.strip().upper() for code in codes)


class BlockedCurrency(hookline.Stage, phase="validate", name="blocked_currency"):
    """Reject an event whose ``currency`` is on the block list.

    The reason recorded with the dead letter names the currency:
    ``currency 'XTS' is blocked``.
    """

    class Settings(hookline.Settings):
        """Settings of ``fraud.blocked_currency``, read from ``[settings.fraud]``."""

        blocked = fields.List(fields.String(min_length=1), default=lambda: list(DEFAULT_BLOCKED))

    def process(self, event: Any) -> None:
        """Raise :class:`hookline.Reject` when the event's currency is blocked.

        ``event`` is an instance of the pipeline's event class (``hookline.DefaultEvent``'s
        fields plus those plugins add); typed ``Any`` because that class is built at run time.
        """
        currency = event.currency
        if currency in self._blocked:
            raise hookline.Reject(f"currency {currency!r} is blocked")

    @cached_property
    def _blocked(self) -> frozenset[str]:
        # Settings are fixed once the pipeline has built the stage: normalize them once.
        return normalize_codes(self.settings.blocked)
