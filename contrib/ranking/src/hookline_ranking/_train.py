"""``hookline ranking train``: fit both models' weights from the events of a database.

The stored events are replayed in the order they were stored (``rowid``), each user's history
kept with the very functions the stages use, so every event gets the features the stage
computed for it. The label of an event is whether its user purchased within the next K
events (``--horizon``; fewer when the user has fewer later events).

Users, not events, are split: a stable hash of ``user_id`` holds out a share of them
(``--holdout``), so no user's events are on both sides. Both models are fitted on the
others by Newton's method for the L2-regularised logistic likelihood (the regulariser keeps
the weights finite when one feature separates the labels, and does not touch the bias):

- the control model, over one indicator per kind and :data:`CONTROL_FEATURES`;
- the freshness adjustment, over :data:`FRESHNESS_FEATURES`, with the fitted control logit as
  a fixed offset: it learns only what the timestamps add.

Each is judged by its AUC on the held-out users' events. numpy does the fitting (the
``train`` extra: ``pip install 'hookline-ranking[train]'``); the stages never need it.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hookline_ranking._features import (
    CONTROL_FEATURES,
    FRESHNESS_FEATURES,
    PURCHASE,
    control_features,
    freshness_features,
    new_history,
    remember,
)
from hookline_ranking._model import ControlModel, FreshnessModel, Model

Floats = npt.NDArray[np.float64]

#: Weight of the L2 regulariser (the bias is not regularised).
RIDGE = 1.0
#: Newton's method stops when no weight moves more than this, or after MAX_STEPS steps.
TOLERANCE, MAX_STEPS = 1e-9, 100


class TrainingProblem(Exception):
    """The events cannot give a model (none stored, one label only...); says why."""


@dataclass(frozen=True)
class Events:
    """The stored events as arrays, in stored order, with their features and labels."""

    users: list[str]
    #: Per event: the index of its user in ``users``, of its kind in ``kinds``.
    user: npt.NDArray[np.int64]
    kinds: list[str]
    kind: npt.NDArray[np.int64]
    control: Floats
    freshness: Floats
    label: npt.NDArray[np.bool_]


def read_events(connection: sqlite3.Connection, horizon: int) -> Events:
    """Replay the ``events`` table of ``connection`` into features and labels."""
    (count,) = connection.execute("SELECT COUNT(*) FROM events").fetchone()
    if not count:
        raise TrainingProblem("the database has no stored events to train on")
    control = np.empty((count, len(CONTROL_FEATURES)))
    freshness = np.empty((count, len(FRESHNESS_FEATURES)))
    user = np.empty(count, dtype=np.int64)
    kind = np.empty(count, dtype=np.int64)
    purchase = np.empty(count, dtype=np.bool_)
    users: dict[str, int] = {}
    kinds: dict[str, int] = {}
    histories: dict[str, list[int]] = {}
    latest: dict[str, int] = {}
    rows = connection.execute("SELECT user_id, kind, amount, json_array_length(tags), ts "
                              "FROM events ORDER BY rowid")
    for i, (user_id, kind_name, amount, tag_count, ts) in enumerate(rows):
        history = histories.get(user_id)
        if history is None:
            history = histories[user_id] = new_history()
        control[i] = control_features(amount, tag_count, history)
        remember(history, kind_name)
        last = latest.get(user_id)
        freshness[i] = freshness_features(None if last is None else ts - last)
        if last is None or ts > last:
            latest[user_id] = ts
        user[i] = users.setdefault(user_id, len(users))
        kind[i] = kinds.setdefault(kind_name, len(kinds))
        purchase[i] = kind_name == PURCHASE
    return Events(list(users), user, list(kinds), kind, control, freshness,
                  _labels(user, purchase, horizon))


def _labels(user: npt.NDArray[np.int64], purchase: npt.NDArray[np.bool_],
            horizon: int) -> npt.NDArray[np.bool_]:
    """Per event: a purchase among the next ``horizon`` events of the same user."""
    order = np.argsort(user, kind="stable")  # each user's events together, in stored order
    grouped = user[order]
    bought = np.concatenate(([0], np.cumsum(purchase[order])))  # bought[j]: before position j
    position = np.arange(len(order))
    last = np.searchsorted(grouped, grouped, side="right") - 1  # each user's last position
    until = np.minimum(position + horizon, last)
    label = np.empty(len(order), dtype=np.bool_)
    label[order] = bought[until + 1] - bought[position + 1] > 0
    return label


def held_out(users: Sequence[str], share: float) -> npt.NDArray[np.bool_]:
    """Per user: held out for evaluation, by a stable hash (the same users in every run)."""
    return np.array([int.from_bytes(hashlib.blake2b(u.encode(), digest_size=8).digest(), "big")
                     / 2**64 < share for u in users], dtype=np.bool_)


def fit(x: Floats, y: npt.NDArray[np.bool_], offset: Floats | None = None) -> Floats:
    """Weights of ``P(y) = sigmoid(offset + x @ w)``, column 0 of ``x`` the (unregularised)
    bias, by Newton's method on the L2-regularised log-likelihood."""
    w = np.zeros(x.shape[1])
    ridge = np.full(x.shape[1], RIDGE)
    ridge[0] = 0.0
    target = y.astype(np.float64)
    base = np.zeros(len(y)) if offset is None else offset
    for _ in range(MAX_STEPS):
        p = _sigmoid(base + x @ w)
        gradient = x.T @ (p - target) + ridge * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(ridge)
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        w -= step
        if np.max(np.abs(step)) < TOLERANCE:
            break
    return w


def _sigmoid(z: Floats) -> Floats:
    result: Floats = np.exp(-np.logaddexp(0.0, -z))
    return result


def auc(scores: Floats, y: npt.NDArray[np.bool_]) -> float:
    """The area under the ROC curve (ties count half), by the rank-sum formula; NaN when one
    label is missing."""
    positives, negatives = int(y.sum()), int((~y).sum())
    if not positives or not negatives:
        return math.nan
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts + 1  # the rank of each distinct value's first copy
    ranks = (first + (counts - 1) / 2.0)[inverse]
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


@dataclass(frozen=True)
class Outcome:
    """A trained model, and what ``train`` prints about it."""

    model: Model
    summary: dict[str, Any]

    def format(self) -> str:
        s = self.summary
        auc = s["held_out_auc"]
        return "\n".join([
            f"trained on {s['train_events']:,} events of {s['train_users']:,} users; held out "
            f"{s['held_out_events']:,} events of {s['held_out_users']:,} users",
            f"label: a purchase within the next {s['horizon']} events ("
            f"{100 * s['positive_share']:.1f} % of the events)",
            f"held-out AUC: control {_shown(auc['control'])}, freshness "
            f"{_shown(auc['freshness'])}",
        ])


def _shown(value: float | None) -> str:
    return "n/a (one label only among the held-out events)" if value is None else f"{value:.4f}"


def train(connection: sqlite3.Connection, database: str, *, horizon: int = 10,
          holdout: float = 0.2) -> Outcome:
    """Fit both models on the events of ``connection`` (see the module's docstring)."""
    events = read_events(connection, horizon)
    out = held_out(events.users, holdout)
    test = out[events.user]
    train_rows = ~test
    if not train_rows.any():
        raise TrainingProblem(f"--holdout {holdout} holds out every user: nothing to train on")
    y = events.label
    if y[train_rows].all() or not y[train_rows].any():
        label = "a purchase" if y[train_rows].any() else "no purchase"
        raise TrainingProblem(f"every training event has the same label ({label} within the "
                              f"next {horizon} events): a model needs both")
    indicators = (events.kind[:, None] == np.arange(len(events.kinds))[None, :])
    x = np.hstack([np.ones((len(y), 1)), indicators.astype(np.float64), events.control])
    w = fit(x[train_rows], y[train_rows])
    control_logit = x @ w
    f = np.hstack([np.ones((len(y), 1)), events.freshness])
    v = fit(f[train_rows], y[train_rows], offset=control_logit[train_rows])
    fresh_logit = control_logit + f @ v
    k = len(events.kinds)
    aucs = {name: auc(logit[test], y[test])
            for name, logit in (("control", control_logit), ("freshness", fresh_logit))}
    summary = {
        "database": database,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "horizon": horizon,
        "holdout": holdout,
        "train_events": int(train_rows.sum()),
        "train_users": int((~out).sum()),
        "held_out_events": int(test.sum()),
        "held_out_users": int(out.sum()),
        "positive_share": float(y.mean()),
        "held_out_auc": {name: None if math.isnan(value) else round(value, 6)
                         for name, value in aucs.items()},
    }
    model = Model(
        control=ControlModel(
            bias=float(w[0]),
            kinds={name: float(w[1 + i]) for i, name in enumerate(events.kinds)},
            **{name: float(w[1 + k + i]) for i, name in enumerate(CONTROL_FEATURES)}),
        freshness=FreshnessModel(
            bias=float(v[0]),
            **{name: float(v[1 + i]) for i, name in enumerate(FRESHNESS_FEATURES)}),
        horizon=horizon,
        training=summary,
    )
    return Outcome(model, summary)
