"""The block lists: ``fraud.blocked_currency`` and ``fraud.blocked_user``.

Each list is given inline in ``[settings.fraud]``, or in a text file whose path is there (one
entry per line; blank lines and lines starting with ``#`` are skipped), or both: the stage
blocks the union. The file is read once, when the pipeline is built; one that cannot be read
stops the build with the setting and the path, so a run never starts with a list it lost.

Both stages run first in the ``validate`` phase (``tryfirst``): a blocked user's purchase is
refused as blocked, whatever else it does.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import hookline
from hookline import fields

from hookline_fraud._rule import Rule

__all__ = ["DEFAULT_BLOCKED", "BlockedCurrency", "BlockedUser", "normalize_codes", "read_list"]

#: ISO 4217 codes reserved for testing (``XTS``) and for "no currency" (``XXX``):
#: real traffic never carries them, so an event that does is suspicious.
DEFAULT_BLOCKED = ("XTS", "XXX")


def normalize_codes(codes: Iterable[str]) -> frozenset[str]:
    """Return currency codes as a set of upper-case codes without surrounding blanks.

    Configuration is written by people (``blocked = ["xts", " XXX"]``); events carry
    upper-case ISO 4217 codes. Normalizing once lets the stage compare with ``in``.
    """
    return frozenset(code.strip().upper() for code in codes)


def read_list(path: str | None, setting: str) -> list[str]:
    """The entries of the block-list file at ``path`` (none when ``path`` is None).

    Raises:
        ValueError: the file cannot be read; the message names ``setting`` and the path.
    """
    if path is None:
        return []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{setting}: cannot read the block list {path!r}: {exc}") from None
    entries = (line.strip() for line in text.splitlines())
    return [entry for entry in entries if entry and not entry.startswith("#")]


class BlockedCurrency(Rule, phase="validate", name="blocked_currency", tryfirst=True):
    """Reject an event whose ``currency`` is on the block list:
    ``blocked_currency: currency 'XTS' is blocked``."""

    class Settings(hookline.Settings):
        """``blocked`` and ``blocked_file`` of ``[settings.fraud]``."""

        blocked = fields.List(fields.String(min_length=1), default=lambda: list(DEFAULT_BLOCKED),
                              description="currency codes to refuse")
        blocked_file = fields.String(min_length=1, optional=True, description=(
            "a file of more currency codes to refuse, one per line"))

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        listed = read_list(self.settings.blocked_file, "blocked_file")
        self._blocked = normalize_codes([*self.settings.blocked, *listed])

    def process(self, event: Any) -> None:
        """Raise :class:`hookline.Reject` when the event's currency is blocked.

        ``event`` is an instance of the pipeline's event class (``hookline.DefaultEvent``'s
        fields plus those plugins add); typed ``Any`` because that class is built at run time.
        """
        currency = event.currency
        if currency in self._blocked:
            self.refuse(event, f"currency {currency!r} is blocked")


class BlockedUser(Rule, phase="validate", name="blocked_user", tryfirst=True):
    """Reject every event of a user on the block list: ``blocked_user: user u42 is blocked``."""

    class Settings(hookline.Settings):
        """``blocked_users`` and ``blocked_users_file`` of ``[settings.fraud]``."""

        blocked_users = fields.List(fields.String(min_length=1), default=list,
                                    description="user ids to refuse")
        blocked_users_file = fields.String(min_length=1, optional=True, description=(
            "a file of more user ids to refuse, one per line"))

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        listed = read_list(self.settings.blocked_users_file, "blocked_users_file")
        # User ids are compared as they are (case matters), without surrounding blanks.
        self._blocked = frozenset(user.strip() for user in [*self.settings.blocked_users,
                                                              *listed])

    def process(self, event: Any) -> None:
        """Raise :class:`hookline.Reject` when the event's user is blocked."""
        if self._blocked and event.user_id in self._blocked:
            self.refuse(event, f"user {event.user_id} is blocked")
