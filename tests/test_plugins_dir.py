"""``--plugins-dir DIR`` (and ``plugins_dir``): each ``*.py`` in DIR is a plugin named after
its file, checked, ordered, selected and listed as installed plugins are (shown ``local`` with
its path). Also: ``hookline plugins`` lists the fields each plugin adds."""

from __future__ import annotations

import json
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest
from _cli_site import Site

import hookline

GEO = '''\
import hookline
from hookline import fields

@hookline.hookimpl
def hookline_event_fields():
    return {"region": fields.Choice(["eu", "us"], optional=True)}

class Region(hookline.Stage, phase="enrich", name="region"):
    class Settings(hookline.Settings):
        default = fields.String(min_length=2, max_length=2, optional=True)

    def process(self, event):
        event.region = {"EUR": "eu", "USD": "us"}.get(event.currency, self.settings.default)
'''

#: Line 4 is the stage whose process is misspelt.
BAD = '''\
import hookline


class Broken(hookline.Stage, phase="validate", name="broken"):
    def proces(self, event):
        pass
'''


@pytest.fixture
def site(registry: hookline.Registry, site: Site) -> Site:
    """A working folder with an empty ``plugins`` folder, its stage classes in a registry of
    the test's own."""
    (site.work / "plugins").mkdir()
    return site


def local(site: Site, name: str, source: str) -> Path:
    path = site.work / "plugins" / f"{name}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    if name.isidentifier() and not name.startswith("_"):
        site.select(name)
    return path


def regions(db: Path) -> dict[str | None, int]:
    with sqlite3.connect(db) as connection:
        return dict(connection.execute("SELECT region, count(*) FROM events GROUP BY region"))


def test_a_good_local_plugin_runs_and_is_listed_as_local_with_its_path(site: Site) -> None:
    path = local(site, "geo", GEO)
    events = site.events(200)
    run = site.hookline("run", events, "--db", "out.db", "--plugins-dir", "plugins")
    assert run.code == 0, run.err
    found = regions(site.work / "out.db")
    assert sum(found.values()) == 200 and found.get("eu") and found.get("us")
    listing = site.hookline("plugins", "--plugins-dir", "plugins")
    assert listing.code == 0
    line = next(line for line in listing.out.splitlines() if line.startswith("geo "))
    assert line.split() == ["geo", "loaded", "local", str(path.resolve())]
    assert "    enrich    #1   geo.region" in listing.out
    (record,) = [p for p in json.loads(site.hookline(
        "plugins", "--format", "json", "--plugins-dir", "plugins").out)["plugins"]
        if p["name"] == "geo"]
    assert (record["origin"], record["path"], record["module"]) == (
        "local", str(path.resolve()), "hookline_local_geo")
    assert record["distribution"] is None and record["status"] == "loaded"


def test_a_contract_violation_is_refused_with_the_file_and_line(site: Site) -> None:
    path = str(local(site, "bad", BAD).resolve())
    local(site, "geo", GEO)
    check = site.hookline("check", "--plugins-dir", "plugins")
    assert check.code == 1
    assert f"{path}:4: bad.broken: Broken defines no process(self, event) method" in check.out
    assert "[missing-process]" in check.out
    assert any(line.split()[:3] == ["geo", "ok", "local"] for line in check.out.splitlines())
    run = site.hookline("run", site.events(10), "--db", "out.db", "--plugins-dir", "plugins")
    assert run.code == 5
    assert f"bad (local {path})" in run.err and f"{path}:4:" in run.err
    assert not (site.work / "out.db").exists()


def test_an_import_that_fails_names_the_file_and_line(site: Site) -> None:
    path = str(local(site, "boom", "import hookline\nraise RuntimeError('no token')\n").resolve())
    listing = site.hookline("plugins", "--plugins-dir", "plugins")
    assert f"error: RuntimeError: no token (at {path}:2)" in listing.out
    assert "hookline_local_boom" not in sys.modules  # nothing half-imported stays


def test_helpers_are_skipped_and_a_file_name_that_is_no_plugin_name_is_refused(
    site: Site
) -> None:
    local(site, "_shared", "raise RuntimeError('a helper is never imported as a plugin')\n")
    local(site, "my-geo", GEO)
    site.select("my-geo")
    listing = site.hookline("plugins", "--plugins-dir", "plugins", "--format", "json")
    records = {p["name"]: p for p in json.loads(listing.out)["plugins"]}
    assert "_shared" not in records
    assert records["my-geo"]["status"] == "failed"
    assert "cannot name a plugin" in records["my-geo"]["error"]
    assert "rename it my_geo.py" in records["my-geo"]["error"]


def test_selection_applies_and_a_plugin_not_selected_is_never_imported(site: Site) -> None:
    local(site, "geo", "raise RuntimeError('imported although disabled')\n")
    site.monkeypatch.setenv("HOOKLINE_DISABLE_PLUGINS", "geo")
    site.install("shop", "import hookline\n")
    run = site.hookline("run", site.events(10), "--db", "out.db", "--plugins-dir", "plugins")
    assert run.code == 0, run.err
    listing = site.hookline("plugins", "--plugins-dir", "plugins")
    assert next(line for line in listing.out.splitlines() if line.startswith("geo ")).split(
        )[:3] == ["geo", "blocked", "local"]
    assert "hookline_local_geo" not in sys.modules


def test_a_local_file_named_like_an_installed_plugin_refuses_both(site: Site) -> None:
    site.install("geo", GEO)
    path = str(local(site, "geo", GEO).resolve())
    listing = site.hookline("plugins", "--plugins-dir", "plugins", "--format", "json")
    mine = [p for p in json.loads(listing.out)["plugins"] if p["name"] == "geo"]
    assert [p["origin"] for p in mine] == ["installed", "local"]
    for record in mine:
        assert record["status"] == "failed"
        assert f"the local file {path}" in record["error"] and "geo-plugin 1.0" in record["error"]


def test_local_and_installed_stages_are_ordered_by_before_and_after(site: Site) -> None:
    site.install("zeta", """
        import hookline
        class First(hookline.Stage, phase="validate", name="first", before="alpha"):
            def process(self, event): pass
    """)
    local(site, "alpha", """
        import hookline
        class Check(hookline.Stage, phase="validate", name="check"):
            def process(self, event): pass
    """)
    listing = site.hookline("plugins", "--plugins-dir", "plugins", "--format", "json")
    positions = {s["name"]: s["position"] for p in json.loads(listing.out)["plugins"]
                 for s in p["stages"]}
    assert positions == {"zeta.first": 1, "alpha.check": 2}  # names alone would give alpha 1


def test_plugins_dir_in_the_configuration_is_relative_to_its_file(site: Site) -> None:
    conf = site.work / "conf"
    (conf / "mine").mkdir(parents=True)
    (conf / "mine" / "geo.py").write_text(GEO, encoding="utf-8")
    site.select("geo")
    site.config('plugins_dir = "mine"\n', name="conf/hookline.toml")
    run = site.hookline("--config", "conf/hookline.toml", "run", site.events(20), "--db",
                        "out.db")
    assert run.code == 0, run.err
    assert sum(n for region, n in regions(site.work / "out.db").items() if region) > 0


def test_a_plugins_dir_that_does_not_exist_is_a_configuration_error(site: Site) -> None:
    result = site.hookline("plugins", "--plugins-dir", "nowhere")
    assert result.code == 1
    assert "--plugins-dir: " in result.err and "nowhere' is not a folder" in result.err
    site.config('plugins_dir = "elsewhere"\n')
    assert "plugins_dir: " in site.hookline("check").err


def test_worker_processes_load_the_local_plugins_too(site: Site) -> None:
    local(site, "geo", GEO)
    run = site.hookline("run", site.events(400), "--db", "out.db", "--plugins-dir", "plugins",
                        "--executor", "process", "--workers", "2", "--format", "json")
    assert run.code == 0, run.err
    found = regions(site.work / "out.db")
    assert sum(found.values()) == 400 and found.get("eu") and found.get("us")


def test_plugins_lists_the_fields_each_plugin_adds(site: Site) -> None:
    local(site, "geo", GEO)
    listing = site.hookline("plugins", "--plugins-dir", "plugins", "--format", "json")
    (record,) = [p for p in json.loads(listing.out)["plugins"] if p["name"] == "geo"]
    assert [(f["name"], f["in"], f["type"], f["constraints"], f["optional"])
            for f in record["fields"]] == [
        ("region", "event", "Choice", "values=['eu', 'us']", True),
        ("default", "[settings.geo] of geo.region", "String", "min_length=2, max_length=2",
         True),
    ]
    text = site.hookline("plugins", "--plugins-dir", "plugins").out
    assert "    fields:\n" in text
    assert "      region   Choice    values=['eu', 'us']; optional  (event)" in text


def test_the_guides_plugin_runs_as_a_file_of_the_folder(site: Site) -> None:
    """The plugin guide's example module, copied to plugins/review.py as the guide shows."""
    guide = Path(__file__).resolve().parent / "doc_examples" / "plugin" / "src"
    local(site, "review", (guide / "hookline_review" / "__init__.py").read_text(encoding="utf-8"))
    events = site.work / "events.jsonl"
    events.write_text("".join(json.dumps(
        {"event_id": f"e{i}", "user_id": "u1", "kind": "purchase", "ts": 1 + i,
         "amount": amount}) + "\n" for i, amount in enumerate([10.0, 6_000.0, 20_000.0])))
    run = site.hookline("run", events, "--db", "out.db", "--plugins-dir", "plugins")
    assert run.code == 0, run.err
    with sqlite3.connect(site.work / "out.db") as db:
        assert db.execute("SELECT amount, review FROM events ORDER BY amount").fetchall() == [
            (10.0, None), (6000.0, "amount 6000.0 is over half the limit")]
        assert db.execute("SELECT reason, stage FROM dead_letters").fetchall() == [
            ("amount 20000.0 is over the limit of 10000", "review.big_spender")]
