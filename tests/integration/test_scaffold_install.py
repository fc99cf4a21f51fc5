"""A scaffolded plugin, as a new author gets it: install, test, list, check, run."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from .conftest import Env


def _run(env: Env, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(args), cwd=cwd, env=env.env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, f"{args} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def test_a_scaffolded_plugin_installs_passes_its_tests_and_runs(env: Env) -> None:
    """new-plugin, pip install -e ".[test]", pytest, hookline plugins/check/run."""
    env.hookline("new-plugin", "geo_ip")
    plugin = env.work / "hookline-geo_ip"
    env.pip("install", "-e", f"{plugin}[test]")
    tests = _run(env, env.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=plugin)
    assert "5 passed" in tests.stdout
    if importlib.util.find_spec("mypy") is not None:  # typed, and configured strict
        _run(env, sys.executable, "-m", "mypy", "--python-executable", env.python, cwd=plugin)

    listed = json.loads(env.hookline("plugins", "--format", "json").stdout)["plugins"]
    (record,) = [p for p in listed if p["name"] == "geo_ip"]
    assert record["status"] == "loaded"
    assert record["distribution"].replace("_", "-") == "hookline-geo-ip"
    assert [s["name"] for s in record["stages"]] == ["geo_ip.blocked_kinds"]
    env.hookline("check")

    events = env.work / "events.jsonl"
    events.write_text("".join(json.dumps({"event_id": f"e{i}", "user_id": "u1", "kind": kind,
                                          "ts": 1_700_000_000_000}) + "\n"
                              for i, kind in enumerate(["purchase", "test", "view"])))
    env.hookline("run", str(events), "--db", "out.db")
    with sqlite3.connect(env.work / "out.db") as db:
        assert db.execute("SELECT reason, stage, distribution FROM dead_letters").fetchall() == [
            ("kind 'test' is blocked", "geo_ip.blocked_kinds", record["distribution"])]
        assert db.execute("SELECT COUNT(*) FROM events").fetchone() == (2,)
