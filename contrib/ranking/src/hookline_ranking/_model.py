"""The ranking models and their weights file.

Two logistic models share one JSON file:

- **control**: ``sigmoid(bias + kinds[kind] + sum of weight * feature)`` over the event's amount
  and tags and the user's history (:data:`~hookline_ranking._features.CONTROL_FEATURES`);
  a kind the file does not list adds 0;
- **freshness**, the experiment: the control score moved on the logit scale by how recently
  the user was last seen, which it reads from the events' timestamps
  (:data:`~hookline_ranking._features.FRESHNESS_FEATURES`).

The file (``hookline ranking train`` writes it; ``default_model.json`` ships with the
package)::

    {"format": "hookline-ranking-model/1", "horizon": 10,
     "control": {"bias": -2.9, "kinds": {"purchase": 0.4, ...}, "amount": 0.05, "tags": 0.01,
                 "events": 0.3, "purchases": 0.6, "since_purchase": -0.2},
     "freshness": {"bias": 0.0, "returning": 0.1, "gap": -0.05, "fresh": 0.2},
     "training": {...}}

It is checked whole when it is loaded: an error names the file, the key and the value.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any

from hookline_ranking._features import (
    CONTROL_FEATURES,
    FRESHNESS_FEATURES,
    control_features,
    freshness_features,
    logit,
    sigmoid,
)

#: The value of ``format`` in a weights file this version reads and writes.
FORMAT = "hookline-ranking-model/1"

#: The weights shipped with the package, used when ``[settings.ranking] model`` is not set.
DEFAULT_MODEL_FILE = "default_model.json"


class ModelError(ValueError):
    """A weights file that cannot be used: the message names the file, key and value."""


@dataclass(frozen=True)
class ControlModel:
    """The control scorer: a logistic model over the event and the user's history."""

    bias: float
    kinds: Mapping[str, float]
    amount: float
    tags: float
    events: float
    purchases: float
    since_purchase: float

    def logit(self, kind: str, amount: float, tags: Sequence[str],
              history: Sequence[int]) -> float:
        """The model's log-odds that the user purchases soon, for an event of ``kind`` with
        ``amount`` and ``tags`` after ``history`` (``[events, purchases, since_purchase]``)."""
        a, t, e, p, s = control_features(amount, len(tags), history)
        return (self.bias + self.kinds.get(kind, 0.0) + self.amount * a + self.tags * t
                + self.events * e + self.purchases * p + self.since_purchase * s)

    def score(self, kind: str, amount: float, tags: Sequence[str],
              history: Sequence[int]) -> float:
        """The control score in [0, 1]: :meth:`logit` through the logistic function."""
        return sigmoid(self.logit(kind, amount, tags, history))

    def as_dict(self) -> dict[str, Any]:
        return {"bias": self.bias, "kinds": dict(sorted(self.kinds.items())),
                **{name: getattr(self, name) for name in CONTROL_FEATURES}}


@dataclass(frozen=True)
class FreshnessModel:
    """The experiment: the control score adjusted on the logit scale by freshness."""

    bias: float
    returning: float
    gap: float
    fresh: float

    def adjust(self, score: float, gap_ms: int | None) -> float:
        """The experimental score of an event whose control score is ``score`` and that comes
        ``gap_ms`` after the user's latest earlier event (None: none seen)."""
        r, g, f = freshness_features(gap_ms)
        return sigmoid(logit(score) + self.bias + self.returning * r + self.gap * g
                       + self.fresh * f)

    def as_dict(self) -> dict[str, Any]:
        return {"bias": self.bias, **{name: getattr(self, name) for name in FRESHNESS_FEATURES}}


@dataclass(frozen=True)
class Model:
    """The contents of a weights file: both scorers, and how they were trained."""

    control: ControlModel
    freshness: FreshnessModel
    #: The K of the training label "purchased within the next K events" (None: not trained).
    horizon: int | None = None
    #: What ``hookline ranking train`` recorded: database, counts, held-out AUC...
    training: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON object of a weights file."""
        return {"format": FORMAT, "horizon": self.horizon, "control": self.control.as_dict(),
                "freshness": self.freshness.as_dict(), "training": dict(self.training)}

    def write(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.as_dict(), handle, indent=2)
            handle.write("\n")


def load_model(path: str | os.PathLike[str] | None = None) -> Model:
    """The model of the weights file ``path``; None: the one shipped with the package."""
    if path is None:
        return default_model()
    where = os.fspath(path)
    try:
        with open(where, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise ModelError(f"model file {where}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ModelError(f"model file {where}: not JSON ({exc})") from None
    return parse_model(data, where)


@functools.cache
def default_model() -> Model:
    """The weights shipped with the package (read once per process, on first use)."""
    text = resources.files("hookline_ranking").joinpath(DEFAULT_MODEL_FILE).read_text("utf-8")
    return parse_model(json.loads(text), f"{DEFAULT_MODEL_FILE} (shipped with hookline-ranking)")


def parse_model(data: Any, where: str) -> Model:
    """A :class:`Model` from a weights file's JSON ``data``; ``where`` names it in errors."""
    top = _object(data, where, "the file")
    _keys(top, where, "", required=("format", "control", "freshness"),
          optional=("horizon", "training"))
    if top["format"] != FORMAT:
        raise ModelError(f"model file {where}: format: must be {FORMAT!r} (got "
                         f"{top['format']!r})")
    horizon = top.get("horizon")
    if horizon is not None and (type(horizon) is not int or horizon < 1):
        raise ModelError(f"model file {where}: horizon: must be an integer >= 1 or null (got "
                         f"{horizon!r})")
    control = _object(top["control"], where, "control")
    _keys(control, where, "control.", required=("bias", "kinds", *CONTROL_FEATURES))
    kinds = _object(control["kinds"], where, "control.kinds")
    freshness = _object(top["freshness"], where, "freshness")
    _keys(freshness, where, "freshness.", required=("bias", *FRESHNESS_FEATURES))
    training = _object(top.get("training") or {}, where, "training")
    return Model(
        control=ControlModel(
            bias=_weight(control["bias"], where, "control.bias"),
            kinds=MappingProxyType({kind: _weight(value, where, f"control.kinds.{kind}")
                                    for kind, value in kinds.items()}),
            **{name: _weight(control[name], where, f"control.{name}")
               for name in CONTROL_FEATURES}),
        freshness=FreshnessModel(
            bias=_weight(freshness["bias"], where, "freshness.bias"),
            **{name: _weight(freshness[name], where, f"freshness.{name}")
               for name in FRESHNESS_FEATURES}),
        horizon=horizon,
        training=MappingProxyType(dict(training)),
    )


def _object(value: Any, where: str, key: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise ModelError(f"model file {where}: {key}: must be a JSON object (got "
                         f"{type(value).__name__} {value!r:.60})")
    return value


def _keys(table: Mapping[str, Any], where: str, prefix: str, *, required: Sequence[str],
          optional: Sequence[str] = ()) -> None:
    missing = [key for key in required if key not in table]
    unknown = sorted(set(table) - set(required) - set(optional))
    if missing:
        raise ModelError(f"model file {where}: {prefix}{missing[0]}: missing (required: "
                         f"{', '.join(required)})")
    if unknown:
        raise ModelError(f"model file {where}: {prefix}{unknown[0]}: unknown key (expected "
                         f"{', '.join([*required, *optional])})")


def _weight(value: Any, where: str, key: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ModelError(f"model file {where}: {key}: must be a finite number (got {value!r})")
    return float(value)


def relevance(kind: str, amount: float, tags: Sequence[str],
              history: Sequence[int] | None = None, model: ControlModel | None = None) -> float:
    """The control score of one event, as the ``ranking.score`` stage computes it.

    ``history`` is the user's ``[events, purchases, since_purchase]`` before this event
    (None: the user's first event); keep it up to date with
    :func:`~hookline_ranking.remember`. ``model`` defaults to the shipped weights. For code
    outside a pipeline (notebooks, a hand-written comparison) that must score as the stage does.
    """
    if model is None:
        model = default_model().control
    return model.score(kind, amount, tags, (0, 0, 0) if history is None else history)
