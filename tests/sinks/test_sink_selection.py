"""Which sink ``--db`` chooses, what a user sees when none fits, and that a URL's password
is never shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import hookline
from hookline import cli
from hookline._generate import write_jsonl
from hookline._sinks.sqlite import SQLiteSink
from hookline.errors import UsageError
from hookline.sinks import mask_url, scheme_of, sink_class
from hookline.testing import write_installed

#: A plugin offering a sink for ``vault://USER:PASSWORD@NAME``: the SQLite sink, its file
#: NAME.db in $VAULT_DIR, its URL carrying a password as a real database's would.
VAULT = '''
import os
from typing import Any

import hookline
from hookline._sinks.sqlite import SQLiteSink


class Vault(SQLiteSink):
    @classmethod
    def path_for(cls, url: str) -> str:
        return os.path.join(os.environ["VAULT_DIR"], url.rpartition("@")[2] + ".db")


@hookline.hookimpl
def hookline_run_start(run: Any) -> None:
    print(f"run_start sees db={run.db}")


@hookline.hookimpl
def hookline_sinks() -> dict[str, Any]:
    return {"vault": Vault}
'''


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://ada:s3cret@db.example:5432/events",
     "postgresql://ada:***@db.example:5432/events"),
    ("postgres://ada:p%40ss@db/events?sslmode=require",
     "postgres://ada:***@db/events?sslmode=require"),
    ("postgresql://db/events?user=ada&password=s3cret",
     "postgresql://db/events?user=ada&password=***"),
    ("host=db user=ada password=s3cret dbname=events",
     "host=db user=ada password=*** dbname=events"),
    ("postgresql://ada@db/events", "postgresql://ada@db/events"),
    ("postgresql://db:5432/events", "postgresql://db:5432/events"),
    ("out/hookline.db", "out/hookline.db"),
    ("sqlite:////srv/hookline.db", "sqlite:////srv/hookline.db"),
])
def test_a_password_in_a_url_is_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown


@pytest.mark.parametrize(("url", "scheme"), [
    ("hookline.db", "sqlite"), ("sqlite:///hookline.db", "sqlite"), ("C:\\runs\\h.db", "sqlite"),
    ("PostgreSQL://h/db", "postgresql"), ("s3+parquet://bucket/x", "s3+parquet"),
])
def test_the_scheme_of_a_url(url: str, scheme: str) -> None:
    assert scheme_of(url) == scheme


def test_a_plain_path_and_a_sqlite_url_are_the_sqlite_sink(tmp_path: Path) -> None:
    assert sink_class("hookline.db") is SQLiteSink
    assert sink_class(f"sqlite:///{tmp_path}/x.db") is SQLiteSink
    with pytest.raises(UsageError, match="no installed sink handles nosuch://; installed: "
                       "postgres://, postgresql://, sqlite://"):
        sink_class("nosuch://ada:s3cret@host/db")


def _hookline(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOOKLINE_")}
    env.update(PYTHONPATH=str(tmp_path / "site"), HOOKLINE_CACHE_DIR=str(tmp_path / "cache"),
               HOOKLINE_PLUGINS="vault", VAULT_DIR=str(tmp_path), **extra)
    return subprocess.run([sys.executable, "-m", "hookline.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_an_unknown_scheme_exits_2_naming_the_installed_ones(tmp_path: Path) -> None:
    write_installed(tmp_path / "site", "vault", VAULT)
    write_jsonl(tmp_path / "in.jsonl", 10, invalid_rate=0, seed=1)
    for command in (["run", "in.jsonl"], ["replay"]):
        done = _hookline(tmp_path, *command, "--db", "nosuch://ada:s3cret@host/db")
        assert done.returncode == 2, done.stderr
        assert "no installed sink handles nosuch://; installed: postgres://, postgresql://, " \
               "sqlite://, vault://" in done.stderr
        assert "s3cret" not in done.stdout + done.stderr and "Traceback" not in done.stderr
        assert not list(tmp_path.glob("*.db"))


def test_a_plugin_sink_is_chosen_by_its_scheme_and_its_password_never_shown(
    tmp_path: Path,
) -> None:
    write_installed(tmp_path / "site", "vault", VAULT)
    write_jsonl(tmp_path / "in.jsonl", 300, invalid_rate=0.1, seed=1)
    url = "vault://ada:s3cret@events"
    done = _hookline(tmp_path, "run", "in.jsonl", "--db", url, HOOKLINE_LOG_LEVEL="DEBUG")
    assert done.returncode == 0, done.stderr
    assert "run_start sees db=vault://ada:***@events" in done.stdout
    assert "database: vault://ada:***@events" in done.stdout
    assert "s3cret" not in done.stdout + done.stderr
    sink = SQLiteSink(str(tmp_path / "events.db"), hookline.DefaultEvent)
    try:
        assert len(sink.read_table("events")) + len(sink.read_table("dead_letters")) == 300
        [run] = sink.read_table("runs")
        assert "s3cret" not in run["report"]
    finally:
        sink.close()
    replayed = _hookline(tmp_path, "replay", "--db", url)
    assert replayed.returncode == 0 and "replayed 30 dead letters" in replayed.stdout, (
        replayed.stderr)
    # a database that cannot be opened: hookline's error, the URL masked
    refused = _hookline(tmp_path, "run", "in.jsonl", "--db", "vault://ada:s3cret@no/such/dir")
    assert refused.returncode == 6, refused.stderr
    assert "cannot use the database vault://ada:***@no/such/dir: unable to open" in (
        refused.stderr)
    assert "s3cret" not in refused.stderr and "Traceback" not in refused.stderr


def test_postgresql_without_psycopg_exits_2_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg: ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "hookline._sinks.postgres", raising=False)
    monkeypatch.setenv("HOOKLINE_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", 10, invalid_rate=0, seed=1)
    code = cli.main(["run", "in.jsonl", "--db", "postgresql://ada:s3cret@localhost/events"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert 'the postgresql sink needs psycopg, which is not installed: pip install ' \
           '"hookline[postgres]"' in err
    assert "s3cret" not in err


def test_the_db_option_says_it_takes_a_url(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("run", "replay"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        shown = " ".join(capsys.readouterr().out.split())
        assert "--db URL" in shown, shown
