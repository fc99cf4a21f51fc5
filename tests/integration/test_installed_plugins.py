"""Plugins as users get them: wheels pip-installed into a real environment, and removed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hookline.testing import database_content

from .conftest import Env, sorted_rows
from .wheels import make_wheel

EVENTS = [
    {"event_id": f"e{i}", "user_id": f"u{i % 7}", "kind": "purchase" if i % 3 else "view",
     "ts": 1_700_000_000_000 + i, "amount": float(i), "currency": "EUR" if i % 5 else "USD"}
    for i in range(200)
]

GOOD = """
import hookline

class {cls}(hookline.Stage, phase="validate", name="{stage}"):
    def process(self, event):
        if event.{field} == {value!r}:
            raise hookline.Reject("{reason}")
"""


def _input(env: Env) -> str:
    path = env.work / "events.jsonl"
    path.write_text("\n".join(json.dumps(event) for event in EVENTS) + "\n")
    return str(path)


def _good_wheel(folder: Path, name: str, field: str, value: Any) -> Path:
    source = GOOD.format(cls=name.title(), stage=f"no_{name}", field=field, value=value,
                         reason=f"{name}: {field} {value} refused")
    return make_wheel(folder, f"plugin-{name}", {f"plugin_{name}/__init__.py": source},
                      {name: f"plugin_{name}"})



def test_installing_a_plugin_runs_its_stage_and_uninstalling_removes_it(
    env: Env, tmp_path: Path
) -> None:
    source = _input(env)
    env.pip("install", str(_good_wheel(tmp_path, "usd", "currency", "USD")))
    listing = json.loads(env.hookline("plugins", "--format", "json").stdout)
    [plugin] = listing["plugins"]
    assert (plugin["name"], plugin["distribution"], plugin["status"]) == (
        "usd", "plugin-usd", "loaded")
    assert plugin["stages"][0]["name"] == "usd.no_usd"
    env.hookline("run", source, "--db", "with.db")
    dead = sorted_rows(env.work / "with.db", "SELECT DISTINCT reason, stage, plugin, distribution "
                                        "FROM dead_letters")
    assert dead == [("usd: currency USD refused", "usd.no_usd", "usd", "plugin-usd")]

    env.pip("uninstall", "-y", "plugin-usd")
    assert json.loads(env.hookline("plugins", "--format", "json").stdout)["plugins"] == []
    env.hookline("run", source, "--db", "without.db")
    assert sorted_rows(env.work / "without.db", "SELECT count(*) FROM dead_letters") == [(0,)]
    assert sorted_rows(env.work / "without.db", "SELECT count(*) FROM events") == [(len(EVENTS),)]


def test_broken_plugins_are_isolated_and_the_good_ones_give_the_samedatabase_content(
    env: Env, tmp_path: Path
) -> None:
    source = _input(env)
    wheels = [
        _good_wheel(tmp_path, "usd", "currency", "USD"),
        _good_wheel(tmp_path, "views", "kind", "view"),
        make_wheel(tmp_path, "plugin-imp", {"plugin_imp.py": "import not_a_real_dependency\n"},
                   {"imp": "plugin_imp"}),
        make_wheel(tmp_path, "plugin-boom", {"plugin_boom.py": "raise RuntimeError('boom')\n"},
                   {"boom": "plugin_boom"}),
        make_wheel(tmp_path, "plugin-quit", {"plugin_quit.py": "import sys\nsys.exit(2)\n"},
                   {"quit": "plugin_quit"}),
        make_wheel(tmp_path, "plugin-gone", {"plugin_gone_other.py": "X = 1\n"},
                   {"gone": "plugin_gone_missing"}),
    ]
    env.pip("install", *map(str, wheels))
    refused = env.hookline("run", source, "--db", "all.db", check=False)  # fails closed
    assert refused.returncode == 5 and "boom (plugin-boom" in refused.stderr
    assert not (env.work / "all.db").exists()
    result = env.hookline("run", source, "--db", "all.db", "--allow-broken-plugins")
    assert result.returncode == 0
    listing = {p["name"]: p for p in json.loads(
        env.hookline("plugins", "--format", "json").stdout)["plugins"]}
    assert sorted(n for n, p in listing.items() if p["status"] == "loaded") == ["usd", "views"]
    failed = {n: p["error"] for n, p in listing.items() if p["status"] == "failed"}
    assert sorted(failed) == ["boom", "gone", "imp", "quit"]
    assert "not_a_real_dependency" in failed["imp"]
    assert "RuntimeError: boom" in failed["boom"]
    assert "SystemExit(2)" in failed["quit"]
    assert "plugin_gone_missing" in failed["gone"]
    assert listing["boom"]["distribution"] == "plugin-boom"
    env.hookline("run", source, "--db", "good.db", env={"HOOKLINE_PLUGINS": "usd,views"})
    assert database_content(env.work / "all.db") == database_content(env.work / "good.db")
    strict = env.hookline("run", source, "--db", "strict.db", "--strict",
                          "--allow-broken-plugins", check=False)
    assert strict.returncode == 5 and "boom" in strict.stderr


def test_plugins_that_are_not_selected_are_never_imported(env: Env, tmp_path: Path) -> None:
    source = _input(env)
    wheels = [_good_wheel(tmp_path, "usd", "currency", "USD")]
    wheels += [
        make_wheel(tmp_path, f"plugin-idle{i}", {f"plugin_idle{i}.py": GOOD.format(
            cls=f"Idle{i}", stage="idle", field="kind", value="never", reason="never")},
            {f"idle{i}": f"plugin_idle{i}"})
        for i in range(50)
    ]
    env.pip("install", "--no-deps", *map(str, wheels))
    script = (
        "import sys, hookline\n"
        f"report = hookline.run([{source!r}], db='selected.db')\n"
        "print(report.accepted, report.dead_lettered)\n"
        "print(sorted(m for m in sys.modules if m.startswith('plugin_')))\n"
    )
    out = env.run(env.python, "-c", script, env={"HOOKLINE_PLUGINS": "usd"}).stdout.splitlines()
    assert out[1] == "['plugin_usd']"
    listing = json.loads(env.hookline("plugins", "--format", "json",
                                      env={"HOOKLINE_PLUGINS": "usd"}).stdout)["plugins"]
    assert sum(p["status"] == "not selected" for p in listing) == 50
