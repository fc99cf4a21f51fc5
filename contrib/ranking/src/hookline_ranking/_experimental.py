"""The ranking team's experiment: a freshness boost, rolled out behind a feature flag.

``ranking.experimental`` is off by default. Turn it on for a share of users with
``hookline run --flag ranking.experimental=0.25`` (or ``[flags]`` in hookline.toml); each
accepted event's ``variants`` column then says whether the experiment scored it.
"""

from __future__ import annotations

from typing import Any

import hookline
from hookline import fields

FLAG = "ranking.experimental"


@hookline.hookimpl
def hookline_flags() -> list[dict[str, Any]]:
    """Declare the experiment's flag: off unless turned on, keyed by ``user_id``."""
    return [{"name": FLAG, "default": False, "key": "user_id",
             "description": "freshness boost on top of ranking.score"}]


class FreshnessBoost(hookline.Stage, phase="score", name="freshness", flag=FLAG,
                     after="ranking.score"):
    """Add up to ``boost`` to the score of events with tags, capped at 1."""

    class Settings(hookline.Settings):
        """``[settings.ranking]`` key of the experiment."""

        boost = fields.Number(minimum=0, maximum=1, default=0.1)

    def process(self, event: Any) -> None:
        """Boost the score set by ``ranking.score`` (events without a score are left alone)."""
        if event.score is not None and event.tags:
            event.score = round(min(1.0, event.score + self.settings.boost), 6)
