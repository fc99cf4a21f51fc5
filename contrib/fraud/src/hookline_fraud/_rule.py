"""What every fraud rule shares: how a finding becomes a rejection, a shadow record or risk.

A rule is a ``validate`` stage. When it finds an event it would refuse, it calls
:meth:`Rule.refuse`: the event is rejected with a reason that starts with the rule's name
(``velocity: 12 purchases in 60 s for user u42, limit 10``), unless shadow mode is on for it
(the flag ``fraud.shadow`` for every rule, ``fraud.shadow.<rule>`` for one), in which case the
rule's name is added to the event's ``fraud_shadow`` field and the event goes on. When a rule
passes an event but came close to refusing it, :meth:`Rule.came_close` raises the event's
``risk`` (0 to 1) to how close it came.

The flags are read only when a rule would refuse: the events no rule finds anything in pay
nothing for shadow mode.
"""

from __future__ import annotations

from typing import Any

import hookline
from hookline import fields
from hookline.flags import is_enabled

#: The flag that puts every rule in shadow mode; ``fraud.shadow.<rule>`` does it for one.
SHADOW = "fraud.shadow"

#: The rules, by stage name: each is a flag ``fraud.shadow.<rule>`` too.
RULES = ("amount_limit", "blocked_currency", "blocked_user", "sequence", "velocity")


class RuleSettings(hookline.Settings):
    """Settings every rule that measures something reads (``[settings.fraud]``)."""

    #: A rule raises the event's risk only when its measure reaches this share of its limit:
    #: a first purchase is not "close" to a limit of ten a minute.
    risk_from = fields.Number(minimum=0, maximum=1, default=0.5, description=(
        "the share of a limit from which a rule raises an event's risk"))


class Rule(hookline.Stage, abstract=True):
    """Base class of the fraud rules (a ``validate`` stage each)."""

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        info = type(self).__stage__
        assert info is not None  # a concrete stage: the metaclass recorded it
        #: The rule's name, which starts its reasons and names its shadow flag.
        self.rule = info.name
        self._shadow_flag = f"{SHADOW}.{info.name}"
        self._risk_from = float(getattr(self.settings, "risk_from", 0.5))

    def refuse(self, event: Any, reason: str) -> None:
        """Reject ``event`` with ``reason`` (prefixed with the rule's name), or, when this rule
        is in shadow mode for the event, list the rule in its ``fraud_shadow`` field, set its
        risk to 1 and return: the caller then lets the event through."""
        if is_enabled(SHADOW, event) or is_enabled(self._shadow_flag, event):
            shadowed = event.fraud_shadow
            if shadowed is None:
                event.fraud_shadow = [self.rule]
            elif self.rule not in shadowed:
                event.fraud_shadow = [*shadowed, self.rule]
            event.risk = 1.0
            return
        raise hookline.Reject(f"{self.rule}: {reason}")

    def came_close(self, event: Any, ratio: float) -> None:
        """Raise the event's risk to ``ratio`` (the rule's measure over its limit, at most 1)
        when that reaches ``risk_from`` and is above the risk another rule gave it."""
        if ratio >= self._risk_from and ratio > event.risk:
            event.risk = round(ratio, 4) if ratio < 1.0 else 1.0


def plural(kind: str) -> str:
    """``purchase`` → ``purchases``, as reasons count events of a kind."""
    return f"{kind}es" if kind.endswith(("s", "x", "sh", "ch")) else f"{kind}s"


def seconds(value: float) -> str:
    """A duration in seconds as reasons show it: ``60 s``, ``0.5 s``."""
    return f"{value:g} s"
