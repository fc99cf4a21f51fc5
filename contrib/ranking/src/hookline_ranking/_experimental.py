"""The ranking team's experiment: a freshness-aware scorer, rolled out per user by a flag.

``ranking.experimental`` is off by default. ``hookline run --flag ranking.experimental=0.5``
(or ``[flags]`` in hookline.toml) puts half of the users in the experiment, the same half in
every run, process and machine (the flag's rollout is keyed by ``user_id``). For their events,
``ranking.freshness`` runs after ``ranking.score`` and replaces the control score with the
freshness model's, which moves it by how recently the user was last seen, from the events'
timestamps; ``score_model`` then says ``"freshness"``. ``hookline ranking experiment`` reads
the outcome.
"""

from __future__ import annotations

from typing import Any

import hookline

from hookline_ranking._fields import FRESHNESS
from hookline_ranking._score import ModelSettings, model_of

FLAG = "ranking.experimental"


@hookline.hookimpl
def hookline_flags() -> list[dict[str, Any]]:
    """Declare the experiment's flag: off unless turned on, a rollout keyed by ``user_id``."""
    return [{"name": FLAG, "default": False, "key": "user_id",
             "description": "score with the freshness model (ranking.freshness) instead of "
                            "the control model"}]


class Freshness(hookline.Stage, phase="score", name="freshness", flag=FLAG,
                after="ranking.score"):
    """Replace the control score with the freshness model's for the users in the experiment.

    Its state is the timestamp of each user's latest event it has seen: with a fixed rollout
    that is every earlier event of the user. A user who joins the experiment later (the share
    raised) gets no freshness adjustment for a first event, as a new user.
    """

    Settings = ModelSettings

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        self.model = model_of(self.settings).freshness

    def process(self, event: Any) -> None:
        """Rescore the event (one the control stage left unscored is left alone)."""
        if event.score is None:
            return
        state, user, ts = self.state, event.user_id, event.ts
        latest = state.get(user)
        if latest is None or ts > latest:
            state[user] = ts
        event.score = self.model.adjust(event.score, None if latest is None else ts - latest)
        event.score_model = FRESHNESS
