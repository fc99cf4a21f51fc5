"""``ranking.score``: the control scorer, and the per-user history every scorer reads.

The stage runs for every event. It scores the event with the control model from the event
and the user's history so far (kept in the stage's state, so that it holds across batches,
runs, resumes and executors), records the event in that history, and says which scorer set
the score: ``score_model = "control"``. The experiment (``ranking.freshness``) runs after it,
for the users in the experiment only.
"""

from __future__ import annotations

from typing import Any

import hookline
from hookline import fields

from hookline_ranking._features import new_history, remember
from hookline_ranking._fields import CONTROL
from hookline_ranking._model import Model, load_model


class ModelSettings(hookline.Settings):
    """``[settings.ranking]``: the weights file both scorers read."""

    model = fields.String(min_length=1, optional=True,
                          description="path of the weights file (hookline ranking train "
                                      "writes one); unset: the weights shipped with the plugin")


def model_of(settings: Any) -> Model:
    """The model of a stage's settings: the file it names, else the shipped weights."""
    return load_model(settings.model)


class Score(hookline.Stage, phase="score", name="score"):
    """Set ``score`` from the control model and ``score_model`` to ``"control"``."""

    Settings = ModelSettings

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        self.model = model_of(self.settings).control

    def process(self, event: Any) -> None:
        """Score the event, then add it to its user's history.

        ``event`` is an instance of the pipeline's event class (the default schema plus
        ``score`` and ``score_model``), typed ``Any`` because that class is built at run time.
        """
        state = self.state
        history = state.get(event.user_id)
        if history is None:
            history = state[event.user_id] = new_history()
        kind = event.kind
        event.score = self.model.score(kind, event.amount, event.tags, history)
        event.score_model = CONTROL
        remember(history, kind)
