"""Secrets in plugin settings: ``{ env = "NAME" }`` is read from the environment at load, and
the value reaches the stage and nothing else (listings, reports, logs, the stored run)."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _cli_site import Site, opened

import hookline
from hookline.config import ConfigError, load_config

SECRET = "tok-s3cr3t-0451"

VAULT = '''
import hookline
from hookline import fields

SEEN = []

@hookline.hookimpl
def hookline_configure(config):
    SEEN.append(json.dumps(dict(config["plugin_settings"])))

class Auth(hookline.Stage, phase="validate", name="auth"):
    class Settings(hookline.Settings):
        token = fields.String(pattern="tok-[a-z0-9-]+")
        headers = fields.Mapping(values=fields.String(), default=dict)

    def process(self, event):
        if self.settings.token != TOKEN or self.settings.headers != {"auth": TOKEN}:
            raise hookline.Reject("the stage did not get the secret")
'''.replace("import hookline\n", "import json\nimport hookline\n", 1) + f"\nTOKEN = {SECRET!r}\n"

CONFIG = """
[settings.vault]
token = { env = "VAULT_TOKEN" }
headers = { auth = { env = "VAULT_TOKEN" } }
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         registry: hookline.Registry) -> Iterator[Site]:
    with opened(tmp_path, monkeypatch, capsys) as folder:
        folder.install("vault", VAULT)
        folder.config(CONFIG)
        yield folder


def test_the_stage_gets_the_value_and_the_configuration_keeps_the_reference(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", SECRET)
    result = site.hookline("run", site.events(30), "--db", "out.db", "--format", "json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert (report["accepted"], report["dead_lettered"]) == (30, 0)  # every event passed auth
    import vault_plugin

    assert json.loads(vault_plugin.SEEN[-1]) == {"vault": {
        "token": {"env": "VAULT_TOKEN"}, "headers": {"auth": {"env": "VAULT_TOKEN"}}}}
    config = load_config(site.work / "hookline.toml", env={"VAULT_TOKEN": SECRET})
    assert config.settings_for("vault") == {"token": SECRET, "headers": {"auth": SECRET}}
    assert config.with_(batch_size=10).settings_for("vault")["token"] == SECRET
    assert SECRET not in repr(config) and SECRET not in json.dumps(config.as_dict())


def test_the_value_appears_in_no_listing_report_log_or_stored_run(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", SECRET)
    events = site.events(40)
    shown = [
        site.hookline("run", events, "--db", "out.db", "-v", "--trace-hooks"),
        site.hookline("run", site.events(40, seed=2, name="more.jsonl"), "--db", "out.db",
                      "--format", "json", "--log-format", "json", "--log-level", "DEBUG"),
        site.hookline("plugins"), site.hookline("plugins", "--format", "json"),
        site.hookline("check"), site.hookline("check", "--format", "json"),
        site.hookline("flags"),
    ]
    assert [result.code for result in shown] == [0] * len(shown), shown
    assert "hookline.trace" in shown[0].err  # the logs were on, at their most verbose
    for result in shown:
        assert SECRET not in result.out and SECRET not in result.err
    with sqlite3.connect(site.work / "out.db") as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (2,)  # both stored
    stored = b"".join(path.read_bytes() for path in site.work.glob("out.db*"))
    assert SECRET.encode() not in stored


def test_a_variable_that_is_not_set_is_a_load_error_naming_it(site: Site) -> None:
    result = site.hookline("run", "missing.jsonl", "--db", "out.db")
    assert result.code == 1
    assert ("[settings.vault]: the environment variable VAULT_TOKEN is not set "
            '({ env = "VAULT_TOKEN" } reads the value from it): export VAULT_TOKEN=... before '
            "running hookline") in result.err
    assert "missing.jsonl" not in result.err and not (site.work / "out.db").exists()
    assert site.hookline("check").code == 1
    with pytest.raises(ConfigError, match="VAULT_TOKEN is not set"):
        load_config(site.work / "hookline.toml", env={})


def test_a_reference_that_names_no_variable_is_refused(site: Site) -> None:
    site.config("[settings.vault]\ntoken = { env = 3 }\n")
    result = site.hookline("check")
    assert result.code == 1
    assert "[settings.vault] token: { env = 3 } must name an environment variable" in result.err


def test_a_value_that_fails_its_field_is_named_without_being_shown(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "WRONG-secret-value")
    result = site.hookline("run", "missing.jsonl", "--db", "out.db")
    assert result.code == 5
    assert "token: must match" in result.err and "{env VAULT_TOKEN}" in result.err
    assert "WRONG-secret-value" not in result.err


def test_worker_processes_read_the_secret_from_their_environment(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", SECRET)
    result = site.hookline("run", site.events(300), "--db", "out.db", "--format", "json",
                           "--executor", "process", "--workers", "2")
    assert result.code == 0, result.err
    assert json.loads(result.out)["accepted"] == 300
    assert SECRET not in result.out + result.err


def test_the_configuration_pages_example_reads_both_secrets() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text(
        encoding="utf-8")
    (block,) = [b.split("```")[0] for b in page.split("```toml\n")[1:]
                if b.startswith("[settings.alerts]")]
    env = {"ALERTS_TOKEN": "tok-1234", "ALERTS_HEADER": "Bearer 5678"}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "hookline.toml"
        path.write_text(block, encoding="utf-8")
        config = load_config(path, env=env)
        assert config.settings_for("alerts") == {
            "token": "tok-1234", "headers": {"Authorization": "Bearer 5678"}}
        with pytest.raises(ConfigError, match="ALERTS_HEADER is not set"):
            load_config(path, env={"ALERTS_TOKEN": "tok-1234"})
