"""Shared by the ranking plugin's tests: models written to files, and ``hookline`` run as a
user runs it (the installed distribution, found through its entry point)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from statistics import NormalDist
from typing import Any, NamedTuple

import pytest

import hookline_ranking


class Ran(NamedTuple):
    code: int
    out: str
    err: str


def weights(**changes: Any) -> dict[str, Any]:
    """The shipped weights file's JSON, with ``changes`` (``control={"bias": 1.0}``) merged
    into its tables."""
    data = hookline_ranking.default_model().as_dict()
    for table, values in changes.items():
        if isinstance(values, dict) and isinstance(data.get(table), dict):
            data[table] = {**data[table], **values}
        else:
            data[table] = values
    return data


@pytest.fixture
def model_file(tmp_path: Path) -> Callable[..., Path]:
    """``model_file(**changes)``: a weights file like the shipped one, with ``changes``."""
    count = 0

    def write(**changes: Any) -> Path:
        nonlocal count
        count += 1
        path = tmp_path / f"model-{count}.json"
        path.write_text(json.dumps(weights(**changes)), encoding="utf-8")
        return path

    return write


@pytest.fixture
def hookline_cli(tmp_path: Path) -> Callable[..., Ran]:
    """``hookline_cli(*args, cwd=None)``: the ``hookline`` command in a process of its own, with
    only the ranking plugin selected and no ``HOOKLINE_*`` setting of the developer's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOOKLINE_")}
    env.update(HOOKLINE_PLUGINS="ranking", HOOKLINE_CACHE_DIR=str(tmp_path / "cache"))

    def run(*args: Any, cwd: Path | None = None) -> Ran:
        done = subprocess.run([sys.executable, "-m", "hookline.cli", *map(str, args)],
                              cwd=cwd or tmp_path, env=env, capture_output=True, text=True)
        return Ran(done.returncode, done.stdout, done.stderr)

    return run


def hand_readout(db: Path) -> dict[str, Any]:
    """The experiment's figures computed here, from the database, with sqlite3 and the
    textbook formulas (Wilson's interval in its ``(k + z²/2) / (n + z²)`` form, Newcombe's
    hybrid interval of the difference): what ``hookline ranking experiment`` must print."""
    z = NormalDist().inv_cdf(0.975)
    figures: dict[str, Any] = {}
    with contextlib.closing(sqlite3.connect(db)) as connection:
        for variant in ("control", "freshness"):
            rows = connection.execute("SELECT user_id, kind, score FROM events "
                                      "WHERE score_model = ?", (variant,)).fetchall()
            if not rows:
                continue
            users = {user for user, _, _ in rows}
            buyers = {user for user, kind, _ in rows if kind == "purchase"}
            n, k = len(users), len(buyers)
            centre = (k + z * z / 2) / (n + z * z)
            half = z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4)
            figures[variant] = {"users": n, "events": len(rows), "converted": k,
                                "mean_score": math.fsum(s for _, _, s in rows) / len(rows),
                                "conversion": k / n, "low": centre - half,
                                "high": centre + half}
    if len(figures) == 2:
        t, c = figures["freshness"], figures["control"]
        d = t["conversion"] - c["conversion"]
        figures["difference"] = {
            "conversion": d, "mean_score": t["mean_score"] - c["mean_score"],
            "low": d - math.hypot(t["conversion"] - t["low"], c["high"] - c["conversion"]),
            "high": d + math.hypot(t["high"] - t["conversion"], c["conversion"] - c["low"])}
    return figures


def check_readout(db: Path, printed: dict[str, Any]) -> dict[str, Any]:
    """Fail unless ``printed`` (``--format json``) has the figures :func:`hand_readout`
    computes from ``db``; returns them."""
    hand = hand_readout(db)
    shown = {v["name"]: v for v in printed["variants"]}
    assert set(shown) == {name for name in hand if name != "difference"}
    for name, v in shown.items():
        h = hand[name]
        assert (v["users"], v["events"], v["converted"]) == (h["users"], h["events"],
                                                             h["converted"])
        for key, hand_key in (("mean_score", "mean_score"), ("conversion", "conversion"),
                              ("conversion_low", "low"), ("conversion_high", "high")):
            assert v[key] == pytest.approx(h[hand_key], rel=1e-9, abs=1e-12), (name, key)
    if "difference" in hand:
        d, h = printed["difference"], hand["difference"]
        for key, hand_key in (("conversion", "conversion"), ("mean_score", "mean_score"),
                              ("conversion_low", "low"), ("conversion_high", "high")):
            assert d[key] == pytest.approx(h[hand_key], rel=1e-9, abs=1e-12), key
    return hand
