"""Plugins at load time (issue 14, cases 13 to 16): hookline fails closed, names the culprit,
never crashes while listing plugins, and is not steered by a plugin's import-time side effects.

Every test installs real plugins (a dist-info and an entry point on ``PYTHONPATH``) and runs
``python -m hookline.cli`` in a separate process, as a user would.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from ._cli import Env, no_traceback, rows

GOOD = """
import hookline

class Tag(hookline.Stage, phase="enrich", name="tag"):
    def process(self, event):
        event.tags = [*event.tags, "good"]
"""

SETTINGS = """
import hookline
from hookline import fields

class Cap(hookline.Stage, phase="validate", name="cap"):
    class Settings(hookline.Settings):
        limit = fields.Number(minimum=0, default=1_000_000)

    def process(self, event):
        if event.amount > self.settings.limit:
            raise hookline.Reject("over the limit")
"""


@pytest.fixture
def env(tmp_path: Path) -> Env:
    made = Env(tmp_path)
    made.install("good", GOOD)
    return made


def _first_lines(text: str, count: int = 3) -> str:
    return "\n".join(text.splitlines()[:count])


# -- 13: fail closed ------------------------------------------------------------------------

BROKEN = {
    "import": ("import hookline\nimport no_such_dependency_anywhere\n",
               "ModuleNotFoundError: No module named 'no_such_dependency_anywhere' (at ",
               "broken_plugin/__init__.py:2)"),
    "contract": ("import hookline\n\nclass Bad(hookline.Stage, phase='validate', name='bad'):\n"
                 "    def process(self):\n        pass\n",
                 "breaks the stage contract", "broken_plugin/__init__.py:4"),
}


@pytest.mark.parametrize("fault", sorted(BROKEN))
def test_a_selected_plugin_that_fails_to_load_stops_the_run_before_any_input(
    env: Env, fault: str
) -> None:
    source, message, where = BROKEN[fault]
    env.install("broken", source, version="2.3")
    events = env.events()
    refused = env.hookline("run", str(events), "--db", "out.db")
    assert refused.returncode == 5, refused.stderr
    no_traceback(refused)
    assert "broken (broken-plugin 2.3)" in refused.stderr
    assert message in refused.stderr and where in refused.stderr
    assert "--allow-broken-plugins" in refused.stderr
    assert not (env.work / "out.db").exists()  # nothing read, nothing written

    allowed = env.hookline("run", str(events), "--db", "out.db", "--allow-broken-plugins")
    assert allowed.returncode == 0, allowed.stderr
    assert "MISSING plugin broken (broken-plugin 2.3)" in _first_lines(allowed.stdout)
    assert rows(env.work / "out.db", "SELECT count(*) FROM events") == [(2000,)]
    assert rows(env.work / "out.db", "SELECT count(*) FROM events WHERE tags LIKE '%good%'"
                ) == [(2000,)]

    # plugins and check still list everything, without a traceback
    listing = env.hookline("plugins", "--format", "json")
    assert listing.returncode == 0
    no_traceback(listing)
    status = {p["name"]: p for p in json.loads(listing.stdout)["plugins"]}
    assert status["good"]["status"] == "loaded"
    assert status["broken"]["status"] == "failed" and where in status["broken"]["error"]
    check = env.hookline("check")
    assert check.returncode == 1
    no_traceback(check)
    assert "broken" in check.stdout and "broken-plugin 2.3" in check.stdout


def test_bad_settings_stop_the_run_and_the_config_key_and_env_opt_out(env: Env) -> None:
    env.install("capper", SETTINGS)
    (env.work / "hookline.toml").write_text("[settings.capper]\nlimt = 5\n")  # a typo
    events = env.events(n=500)
    refused = env.hookline("run", str(events), "--db", "a.db")
    assert refused.returncode == 5
    no_traceback(refused)
    assert "capper (capper-plugin 1.0)" in refused.stderr
    assert "unknown key(s) limt" in refused.stderr
    via_env = env.hookline("run", str(events), "--db", "b.db",
                           HOOKLINE_ALLOW_BROKEN_PLUGINS="1")
    assert via_env.returncode == 0
    assert "MISSING plugin capper" in _first_lines(via_env.stdout)
    (env.work / "hookline.toml").write_text(
        "allow_broken_plugins = true\n[settings.capper]\nlimt = 5\n")
    via_config = env.hookline("run", str(events), "--db", "c.db", "--format", "json")
    assert via_config.returncode == 0
    report = json.loads(via_config.stdout)
    assert list(report).index("missing_plugins") < list(report).index("read")  # up front
    assert [p["name"] for p in report["missing_plugins"]] == ["capper"]
    strict = env.hookline("run", str(events), "--db", "d.db", "--strict")  # strict wins
    assert strict.returncode == 5


# -- 14: one name, two distributions ----------------------------------------------------------

def test_two_distributions_declaring_one_name_is_an_error_naming_both(env: Env) -> None:
    env.install("fraud", GOOD.replace("good", "first"), version="1.0")
    env.install_as("otherfraud", "fraud", GOOD.replace("good", "second"), version="0.9")
    events = env.events(n=100)
    run = env.hookline("run", str(events), "--db", "x.db", HOOKLINE_PLUGINS="fraud")
    assert run.returncode == 5
    no_traceback(run)
    assert "fraud-plugin 1.0" in run.stderr and "otherfraud-plugin 0.9" in run.stderr
    check = env.hookline("check", HOOKLINE_PLUGINS="fraud")
    assert check.returncode == 1
    no_traceback(check)
    assert "fraud-plugin 1.0" in check.stdout and "otherfraud-plugin 0.9" in check.stdout
    listing = env.hookline("plugins", "--format", "json", HOOKLINE_PLUGINS="fraud")
    mine = [p for p in json.loads(listing.stdout)["plugins"]
            if p["distribution"] in ("fraud-plugin", "otherfraud-plugin")]
    assert sorted(p["distribution"] for p in mine) == ["fraud-plugin", "otherfraud-plugin"]
    for plugin in mine:
        assert plugin["status"] == "failed"
        assert "declared by" in plugin["error"] and "otherfraud-plugin 0.9" in plugin["error"]


# -- 15: BaseException at import, cycles, flags defined for another plugin -----------------

def test_keyboard_interrupt_raised_at_import_is_that_plugins_load_failure(env: Env) -> None:
    env.install("quitter", "raise KeyboardInterrupt\n")
    listing = env.hookline("plugins")
    assert listing.returncode == 0
    no_traceback(listing)
    assert "quitter" in listing.stdout and "KeyboardInterrupt (at " in listing.stdout
    assert "quitter_plugin/__init__.py:1)" in listing.stdout
    events = env.events(n=100)
    run = env.hookline("run", str(events), "--db", "x.db")
    assert run.returncode == 5 and "quitter (quitter-plugin 1.0)" in run.stderr
    assert env.hookline("run", str(events), "--db", "x.db", "--allow-broken-plugins"
                        ).returncode == 0


def test_a_real_ctrl_c_while_a_plugin_loads_stops_hookline(env: Env, tmp_path: Path) -> None:
    marker = tmp_path / "importing"
    env.install("sleepy", f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\n"
                          "time.sleep(30)\n")
    process = env.start("plugins")
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err


def test_a_before_after_cycle_is_listed_naming_both_stages(env: Env) -> None:
    env.install("alpha", """
        import hookline
        class X(hookline.Stage, phase="validate", name="x", after="beta"):
            def process(self, event): pass
    """)
    env.install("beta", """
        import hookline
        class Y(hookline.Stage, phase="validate", name="y", after="alpha"):
            def process(self, event): pass
    """)
    for command in ("plugins", "check"):
        result = env.hookline(command)
        no_traceback(result)
        assert "alpha.x -> beta.y -> alpha.x" in result.stdout, command
        assert "alpha-plugin 1.0" in result.stdout and "beta-plugin 1.0" in result.stdout
    run = env.hookline("run", str(env.events(n=50)), "--db", "x.db")
    assert run.returncode == 5
    assert "alpha.x -> beta.y -> alpha.x" in run.stderr
    assert "good (" not in run.stderr  # the plugin outside the cycle loaded


OWNER = """
import hookline

@hookline.hookimpl
def hookline_flags():
    return [{"name": "owner.experimental", "default": False}]

class Experiment(hookline.Stage, phase="score", name="experiment",
                 flag="owner.experimental"):
    def process(self, event):
        event.tags = [*event.tags, "experimental"]
"""


def test_a_flag_defined_at_import_for_another_plugin_names_the_culprit(env: Env) -> None:
    env.install("owner", OWNER)
    env.install("meddler", "from hookline import flags\n"
                           "flags.define('owner.experimental', default=True)\n")
    result = env.hookline("run", str(env.events(n=50)), "--db", "x.db")
    assert result.returncode != 0
    no_traceback(result)
    assert "meddler (meddler-plugin 1.0)" in result.stderr
    assert "by ?" not in result.stderr


# -- 16: import-time side effects -------------------------------------------------------------

def test_a_flag_set_in_the_environment_by_a_plugins_import_changes_nothing(env: Env) -> None:
    env.install("owner", OWNER)
    env.install("setter", "import os\nos.environ['HOOKLINE_FLAGS'] = 'owner.experimental=on'\n")
    events = env.events(n=300)
    run = env.hookline("run", str(events), "--db", "x.db")
    assert run.returncode == 0, run.stderr
    assert rows(env.work / "x.db", "SELECT count(*) FROM events WHERE tags LIKE "
                "'%experimental%'") == [(0,)]
    flags = json.loads(env.hookline("flags", "--format", "json").stdout)
    [row] = [r for r in flags if r["name"] == "owner.experimental"]
    assert (row["value"], row["source"]) == (False, "default")
    # the user's own environment still counts
    mine = env.hookline("run", str(events), "--db", "y.db",
                        HOOKLINE_FLAGS="owner.experimental=on")
    assert mine.returncode == 0
    assert rows(env.work / "y.db", "SELECT count(*) FROM events WHERE tags LIKE "
                "'%experimental%'") == [(300,)]


PATCHER = """
import sqlite3
_real = sqlite3.connect
sqlite3.connect = lambda *args, **kwargs: _real(":memory:")
"""


@pytest.mark.parametrize("then_fails", [True, False])
def test_a_plugin_patching_sqlite3_connect_cannot_redirect_the_events(
    env: Env, then_fails: bool
) -> None:
    env.install("patcher", PATCHER + ("raise ImportError('half done')\n" if then_fails else ""))
    events = env.events(n=1000)
    if then_fails:  # fail closed: the run stops before it starts
        refused = env.hookline("run", str(events), "--db", "x.db")
        assert refused.returncode == 5 and "patcher (patcher-plugin 1.0)" in refused.stderr
        assert not (env.work / "x.db").exists()
    options = ("--allow-broken-plugins",) if then_fails else ()
    for executor in ("inline", "process"):
        db = env.work / f"{executor}.db"
        run = env.hookline("run", str(events), "--db", str(db), "--executor", executor,
                           "--workers", "2", *options)
        assert run.returncode == 0, run.stderr
        assert rows(db, "SELECT count(*) FROM events") == [(1000,)], executor
