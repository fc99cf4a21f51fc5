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


#: What the author adds, as the plugin guide shows: a field (``hookline_event_fields``) and a
#: validate stage that sets it, and a test of the stage with the pytest plugin's fixtures.
ADDED_CODE = '''

@hookline.hookimpl
def hookline_event_fields() -> dict[str, fields.Field[Any]]:
    """Add ``region``: where the event's currency is spent (None: not known)."""
    return {"region": fields.Choice(["eu", "us"], optional=True)}


class Region(hookline.Stage, phase="validate", name="region", after="geo_ip.blocked_kinds"):
    """Set ``region`` from the currency."""

    def process(self, event: hookline.Event) -> None:
        event.region = {"EUR": "eu", "USD": "us"}.get(event.currency)
'''

ADDED_TEST = '''

def test_the_region_follows_the_currency(
    make_pipeline: PipelineFactory, make_event: EventFactory
) -> None:
    pipeline = make_pipeline(hookline_geo_ip)
    assert pipeline.process(make_event(currency="EUR")).region == "eu"
    assert pipeline.process(make_event(currency="JPY")).region is None
'''


def test_a_scaffolded_plugin_installs_passes_its_tests_and_runs(env: Env) -> None:
    """new-plugin; add a field and a stage as the guide shows; pip install -e ".[test]";
    its tests; hookline plugins/check/run, and the field in the database."""
    env.hookline("new-plugin", "geo_ip")
    plugin = env.work / "hookline-geo_ip"
    module = plugin / "src" / "hookline_geo_ip" / "__init__.py"
    source = module.read_text(encoding="utf-8")
    source = source.replace("from __future__ import annotations\n",
                             "from __future__ import annotations\n\nfrom typing import Any\n")
    module.write_text(source + ADDED_CODE, encoding="utf-8")
    tests_file = plugin / "tests" / "test_geo_ip.py"
    tests = tests_file.read_text(encoding="utf-8")
    unchanged = "assert make_pipeline(hookline_geo_ip).process(event).to_dict() == event"
    assert unchanged in tests  # now the region is set: the author updates that test
    tests = tests.replace(unchanged, unchanged.replace("== event", '== {**event, "region": "us"}'))
    tests_file.write_text(tests + ADDED_TEST, encoding="utf-8")
    env.pip("install", "-e", f"{plugin}[test]")
    ran = _run(env, env.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=plugin)
    assert "6 passed" in ran.stdout
    if importlib.util.find_spec("mypy") is not None:  # typed, and configured strict
        _run(env, sys.executable, "-m", "mypy", "--python-executable", env.python, cwd=plugin)

    listed = json.loads(env.hookline("plugins", "--format", "json").stdout)["plugins"]
    (record,) = [p for p in listed if p["name"] == "geo_ip"]
    assert record["status"] == "loaded"
    assert record["distribution"].replace("_", "-") == "hookline-geo-ip"
    assert [(s["name"], s["position"]) for s in record["stages"]] == [
        ("geo_ip.blocked_kinds", 1), ("geo_ip.region", 2)]
    assert "hookline_event_fields" in record["hooks"]
    env.hookline("check")

    events = env.work / "events.jsonl"
    events.write_text("".join(json.dumps({"event_id": f"e{i}", "user_id": "u1", "kind": kind,
                                          "ts": 1_700_000_000_000, "currency": currency}) + "\n"
                              for i, (kind, currency) in enumerate(
                                  [("purchase", "EUR"), ("test", "EUR"), ("view", "JPY")])))
    env.hookline("run", str(events), "--db", "out.db")
    with sqlite3.connect(env.work / "out.db") as db:
        assert db.execute("SELECT reason, stage, distribution FROM dead_letters").fetchall() == [
            ("kind 'test' is blocked", "geo_ip.blocked_kinds", record["distribution"])]
        assert db.execute("SELECT event_id, region FROM events ORDER BY event_id").fetchall(
            ) == [("e0", "eu"), ("e2", None)]
