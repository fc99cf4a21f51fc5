"""hookline-ranking: a logistic ranking model, an experiment, and commands to train and read them.

Installed next to hookline, this package is found through its entry point
``ranking = "hookline_ranking"`` in the group ``hookline.plugins``. It contributes:

- the event fields ``score`` (a number in [0, 1]) and ``score_model`` (``"control"`` or
  ``"freshness"``: which scorer set the score), through ``hookline_event_fields``;
- the stage ``ranking.score`` (:class:`Score`): the control model, a logistic model over the
  event and the user's history kept in the stage's state, for every event;
- the stage ``ranking.freshness`` (:class:`Freshness`): the experiment, a freshness-aware
  scorer, for the users the flag ``ranking.experimental`` (:data:`FLAG`) selects;
- the commands ``hookline ranking train`` and ``hookline ranking experiment``, through
  ``hookline_commands``.

The weights come from a JSON file (``[settings.ranking] model``), by default the one shipped
with the package. :func:`relevance` and :func:`remember` score events outside a pipeline
exactly as the stage does.
"""

from __future__ import annotations

from hookline_ranking._cli import hookline_commands
from hookline_ranking._experimental import FLAG, Freshness, hookline_flags
from hookline_ranking._features import (
    CONTROL_FEATURES,
    FRESHNESS_FEATURES,
    control_features,
    freshness_features,
    new_history,
    remember,
)
from hookline_ranking._fields import CONTROL, FRESHNESS, hookline_event_fields
from hookline_ranking._model import (
    ControlModel,
    FreshnessModel,
    Model,
    ModelError,
    default_model,
    load_model,
    relevance,
)
from hookline_ranking._score import Score

#: The hookline plugin API this plugin is written for (checked when it is loaded).
HOOKLINE_API = 1

__all__ = [
    "CONTROL",
    "CONTROL_FEATURES",
    "FLAG",
    "FRESHNESS",
    "FRESHNESS_FEATURES",
    "HOOKLINE_API",
    "ControlModel",
    "Freshness",
    "FreshnessModel",
    "Model",
    "ModelError",
    "Score",
    "control_features",
    "default_model",
    "freshness_features",
    "hookline_commands",
    "hookline_event_fields",
    "hookline_flags",
    "load_model",
    "new_history",
    "relevance",
    "remember",
]
