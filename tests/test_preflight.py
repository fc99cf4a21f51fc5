"""Pre-flight: each mistake in a configuration is named, with its fix, before any input is read.

A mistake that would otherwise do nothing at all (a typo in a key, a flag no plugin declares,
a ``[behaviors]`` pattern no stage matches, settings for no plugin, an entry point in a group
hookline does not read) gives a message naming the problem and the closest valid name, from
``hookline check`` and from ``hookline run`` before it opens any input or database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _cli_site import Result, Site

import hookline

ROOT = Path(__file__).resolve().parents[1]

SHOP = '''
import hookline
from hookline import fields

@hookline.hookimpl
def hookline_flags():
    return [{"name": "shop.experimental", "default": False, "key": "user_id"}]

class Cap(hookline.Stage, phase="validate", name="cap"):
    class Settings(hookline.Settings):
        limit = fields.Number(minimum=0, default=1000)

    def process(self, event):
        if event.amount > self.settings.limit:
            raise hookline.Reject("over the cap")

class Boost(hookline.Stage, phase="score", name="boost", flag="shop.experimental"):
    def process(self, event):
        pass
'''


@pytest.fixture
def site(registry: hookline.Registry, site: Site) -> Site:
    """The shop plugin installed, its stage classes in a registry of the test's own."""
    site.install("shop", SHOP)
    return site


def refused(site: Site, *extra: str) -> Result:
    """``hookline run`` on an input that does not exist: a pre-flight error must stop it
    before it gets to the input (which would fail differently) or creates the database."""
    result = site.hookline("run", "missing.jsonl", "--db", "out.db", *extra)
    assert result.code == 1, result
    assert "missing.jsonl" not in result.err, "the input was opened: the check came too late"
    assert not (site.work / "out.db").exists()
    return result


# -- keys of the file ------------------------------------------------------------------------


def test_unknown_keys_are_named_with_the_key_meant(site: Site) -> None:
    site.config("""
        stict = true
        [behaviours]
        "shop.*" = ["timed"]
        [setings.shop]
        limit = 5
    """)
    for result in (refused(site), site.hookline("check"), site.hookline("plugins")):
        assert result.code == 1
        assert "3 unknown keys" in result.err
        assert "unknown key 'stict'; did you mean 'strict'?" in result.err
        assert "unknown key 'behaviours'; did you mean 'behaviors'?" in result.err
        assert "unknown key 'setings'; did you mean 'settings'?" in result.err


@pytest.mark.parametrize(("table", "line", "quoted"), [
    ("flags", "shop.experimental = 0.25", '"shop.experimental" = 0.25'),
    ("error_policy", 'shop.cap = "skip-plugin"', '"shop.cap" = "skip-plugin"'),
    ("behaviors", 'shop.cap = ["timed"]', '"shop.cap" = [...]'),
])
def test_a_bare_dotted_name_is_refused_with_the_quoted_line_to_write(
    site: Site, table: str, line: str, quoted: str
) -> None:
    site.config(f"[{table}]\n{line}\n")
    result = refused(site)
    assert "TOML reads an unquoted dotted" in result.err
    assert quoted in result.err
    assert "unknown flag" not in result.err  # not the confusing error of before


# -- names that must match something installed ---------------------------------------------


def test_a_flag_no_plugin_declares_is_named_with_its_source_and_the_closest_flag(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.config('[flags]\n"shop.experimentl" = 0.25\n')
    monkeypatch.setenv("HOOKLINE_FLAGS", "shop.experimantal=on")
    result = refused(site, "--flag", "shp.experimental=off")
    assert ("hookline.toml [flags]: unknown flag 'shop.experimentl'; did you mean "
            "'shop.experimental'?") in result.err
    assert ("HOOKLINE_FLAGS: unknown flag 'shop.experimantal'; did you mean "
            "'shop.experimental'?") in result.err
    assert "--flag: unknown flag 'shp.experimental'; did you mean 'shop.experimental'?" in (
        result.err)
    assert "refusing to start: 3 configuration errors" in result.err
    check = site.hookline("check")
    assert check.code == 1
    assert "error: " in check.out and "'shop.experimentl'" in check.out
    assert check.out.splitlines()[-1] == (
        "hookline check: 2 configuration errors; all 1 selected plugin(s) satisfy the stage "
        "contract")


def test_a_flag_value_that_is_no_share_is_refused(site: Site) -> None:
    site.config('[flags]\n"shop.experimental" = "maybe"\n')
    assert "'maybe' is not on, off or a share between 0 and 1" in refused(site).err


def test_a_behaviour_pattern_that_matches_no_stage_is_an_error(site: Site) -> None:
    site.config('[behaviors]\n"shop.cpa" = ["timed"]\n"shop.*" = ["timed"]\n')
    result = refused(site)
    assert ("[behaviors] pattern 'shop.cpa' matches no stage of the loaded plugins, so "
            "nothing would be wrapped; did you mean 'shop.cap'?") in result.err
    assert "'shop.*'" not in result.err  # that one matches


def test_names_under_a_plugin_that_is_not_loaded_are_not_judged(site: Site) -> None:
    site.install("other", SHOP.replace("shop", "other"))
    site.selected.remove("other")
    site.select()  # installed, not selected: its stages are unknown, not wrong
    site.config('[behaviors]\n"other.cap" = ["timed"]\n[settings.other]\nlimit = 1\n'
                '[error_policy]\n"other.cap" = "fail-run"\n')
    events = site.events(10)
    result = site.hookline("run", events, "--db", "out.db")
    assert result.code == 0, result.err
    assert "error" not in result.err


def test_a_flag_of_a_plugin_that_is_not_selected_says_so(site: Site) -> None:
    site.install("other", SHOP.replace("shop", "other"))
    site.selected.remove("other")
    site.select()
    site.config('[flags]\n"other.experimental" = 1\n')
    err = refused(site).err
    # (the declared list may hold flags other tests of this process declared before)
    assert "unknown flag 'other.experimental'; did you mean 'shop.experimental'? (declared: " \
        in err
    assert ("); its plugin 'other' is installed but not loaded (not selected, or disabled), so "
            "it declares nothing") in err


def test_settings_for_no_installed_plugin_are_named_with_the_closest_plugin(site: Site) -> None:
    site.config("[settings.shpo]\nlimit = 5\n")
    assert ("[settings.shpo] names no installed plugin; did you mean 'shop'?"
            in refused(site).err)


def test_an_error_policy_for_no_plugin_or_stage_is_named(site: Site) -> None:
    site.config('[error_policy]\n"shop.bost" = "skip-plugin"\n')
    assert ("[error_policy] 'shop.bost' names no installed plugin or loaded stage; did you "
            "mean 'shop.boost'?") in refused(site).err


def test_a_setting_no_stage_declares_stops_the_plugin_naming_the_key_meant(site: Site) -> None:
    site.config("[settings.shop]\nlimt = 5\n")
    result = site.hookline("run", "missing.jsonl", "--db", "out.db")
    assert result.code == 5  # the plugin cannot start: nothing runs without it
    assert "[settings.shop] has unknown key(s) limt; did you mean 'limit'?" in result.err
    assert not (site.work / "out.db").exists()


def test_a_setting_that_fails_its_field_names_the_field_and_the_rule(site: Site) -> None:
    site.config("[settings.shop]\nlimit = -1\n")
    result = site.hookline("run", "missing.jsonl", "--db", "out.db")
    assert result.code == 5
    assert "stage shop.cap" in result.err and "limit: must be ≥ 0 (got -1)" in result.err


def test_a_selected_plugin_that_is_not_installed_is_named_with_the_closest(site: Site) -> None:
    site.select("shpo")
    result = site.hookline("run", "missing.jsonl", "--db", "out.db")
    assert result.code == 5
    assert "shpo" in result.err and "did you mean 'shop'?" in result.err


def test_a_disabled_plugin_that_is_not_installed_is_warned_about(site: Site) -> None:
    site.config('disable_plugins = ["shpo"]\n')
    result = site.hookline("run", site.events(5), "--db", "out.db")
    assert result.code == 0
    assert ("warning: disable_plugins names 'shpo', which is not installed (nothing is "
            "disabled by it); did you mean 'shop'?") in result.err


# -- entry points hookline does not read ---------------------------------------------------


@pytest.mark.parametrize("group", ["hookline.plugin", "hookline_plugins", "Hookline.Plugins"])
def test_an_entry_point_group_like_hooklines_is_warned_about_everywhere(
    site: Site, group: str
) -> None:
    site.install_in_group("acme-geo", group, "geo", "import hookline\n")
    site.install_in_group("acme-tools", "console_scripts", "acme", "")
    warning = (f"acme-geo 1.0 declares the entry point geo = acme_geo in the group {group!r}, "
               "which hookline does not read, so it is not loaded: did you mean "
               "'hookline.plugins'?")
    plugins = site.hookline("plugins")
    assert plugins.code == 0 and warning in plugins.err
    check = site.hookline("check")
    assert check.code == 0 and warning in check.out  # a warning: nothing is wrong in hookline
    run = site.hookline("run", site.events(5), "--db", "out.db")
    assert run.code == 0
    assert warning in run.err.split("hookline.runner")[0]  # before the run started
    assert "acme-tools" not in plugins.err + check.out + run.err


# -- hookline check --------------------------------------------------------------------------


def test_check_as_json_lists_the_configuration_errors_and_warnings(site: Site) -> None:
    site.install_in_group("acme-geo", "hookline.plugin", "geo", "")
    site.config('[behaviors]\n"shop.cpa" = ["timed"]\n')
    result = site.hookline("check", "--format", "json")
    assert result.code == 1
    report = json.loads(result.out)
    assert [p["status"] for p in report["plugins"] if p["name"] == "shop"] == ["ok"]
    assert len(report["errors"]) == 1 and "did you mean 'shop.cap'?" in report["errors"][0]
    assert len(report["warnings"]) == 1 and "'hookline.plugin'" in report["warnings"][0]


def test_a_correct_configuration_is_checked_and_runs(site: Site) -> None:
    site.config("""
        [settings.shop]
        limit = 400
        [flags]
        "shop.experimental" = 0.5
        [behaviors]
        "shop.*" = ["timed"]
        [error_policy]
        "shop.cap" = "skip-plugin"
        shop = "dead-letter"
    """)
    check = site.hookline("check")
    assert check.code == 0, check.out
    assert "error" not in check.out and "warning" not in check.out
    run = site.hookline("run", site.events(200), "--db", "out.db", "--format", "json")
    assert run.code == 0, run.err
    assert json.loads(run.out)["read"] == 200


# -- the configuration page, verbatim --------------------------------------------------------


def _config_page_examples() -> list[str]:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    blocks = text.split("```toml\n")[1:]
    return [block.split("```")[0] for block in blocks
            if block.startswith(("# hookline.toml", "# pyproject.toml"))]


@pytest.mark.integration
@pytest.mark.parametrize("example", range(len(_config_page_examples())))
def test_the_configuration_pages_examples_pass_check_and_run_verbatim(
    example: int, tmp_path: Path
) -> None:
    """With the contrib plugins installed (the integration env installs their wheels), each
    configuration of docs/configuration.md, copied as it is, passes ``hookline check`` and
    runs: its flags, settings and policies name what those plugins have."""
    for module in ("hookline_fraud", "hookline_ranking", "hookline_monitoring"):
        done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
        assert done.returncode == 0, f"{module} is not installed: the integration env " \
                                     f"installs the contrib wheels\n{done.stderr.decode()}"
    text = _config_page_examples()[example]
    name = "pyproject.toml" if text.startswith("# pyproject.toml") else "hookline.toml"
    (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "events.jsonl").write_text("".join(  # a purchase a minute: no fraud rule fires
        json.dumps({"event_id": f"e{i}", "user_id": f"u{i % 7}", "kind": "purchase",
                    "ts": 1_700_000_000_000 + 60_000 * i, "amount": 10.0 + i}) + "\n"
        for i in range(100)), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOOKLINE_")}
    env["HOOKLINE_CACHE_DIR"] = str(tmp_path / "cache")
    for argv in (["check"], ["run", "events.jsonl", "--db", "out.db"]):
        done = subprocess.run([sys.executable, "-m", "hookline.cli", *argv], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"hookline {' '.join(argv)} on the example:\n{text}\n" \
                                     f"{done.stdout}\n{done.stderr}"
        assert "error:" not in done.stdout + done.stderr
