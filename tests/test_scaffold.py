"""``hookline new-plugin``: the names it takes, what it writes, and that the result works."""

from __future__ import annotations

import argparse
import ast
import configparser
import importlib
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import hookline
from hookline import _scaffold as scaffold
from hookline._scaffold import ScaffoldError, check_name, create_plugin
from hookline.contracts import verify

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("name", ["fraud", "geo_ip", "a1", "x"])
def test_names_that_fit(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(("name", "message"), [
    ("", "a plugin name is required, such as 'fraud' or 'geo_ip'"),
    ("GeoIP", "plugin name 'GeoIP' must be lower case; try 'geoip'"),
    ("geo-ip", "plugin name 'geo-ip' may hold only lower-case letters, digits and _; "
               "try 'geo_ip'"),
    ("Geo IP", "plugin name 'Geo IP' may hold only lower-case letters, digits and _; "
               "try 'geo_ip'"),
    ("9lives", "plugin name '9lives' must start with a letter"),
    ("class", "plugin name 'class' is a Python keyword; try 'class_plugin'"),
    ("hookline_geo", "plugin name 'hookline_geo': leave out the 'hookline' prefix"),
    ("x" * 41, "is longer than 40 characters"),
])
def test_names_that_do_not_fit_say_why(name: str, message: str) -> None:
    with pytest.raises(ScaffoldError) as refused:
        check_name(name)
    assert message in str(refused.value)


def test_the_distribution_is_laid_out_like_contrib(tmp_path: Path) -> None:
    target = create_plugin("geo_ip", tmp_path)
    assert target == tmp_path / "hookline-geo_ip"
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()) == [
        ".github/workflows/ci.yml", ".gitignore", "README.md", "pyproject.toml",
        "src/hookline_geo_ip/__init__.py", "src/hookline_geo_ip/py.typed",
        "tests/test_geo_ip.py", "tox.ini"]
    project = tomllib.loads((target / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["name"] == "hookline-geo_ip"
    floor = "hookline>=" + hookline.__version__.rpartition(".")[0]  # this release's x.y
    assert project["project"]["dependencies"] == [floor]
    assert project["project"]["entry-points"]["hookline.plugins"] == {"geo_ip": "hookline_geo_ip"}
    assert project["project"]["optional-dependencies"]["test"] == [
        "pytest>=8", "mypy>=1.10", "ruff>=0.5", "tox>=4.11"]
    assert project["tool"]["setuptools"]["package-data"] == {"hookline_geo_ip": ["py.typed"]}
    for source in target.rglob("*.py"):
        ast.parse(source.read_text(encoding="utf-8"), str(source))
    assert "hookline_geo_ip" in (target / "README.md").read_text(encoding="utf-8")
    assert not [p for p in tmp_path.iterdir() if p != target]  # no staging folder left


def _requirement_names(lines: list[str]) -> set[str]:
    return {re.split(r"[<>=!~ ;\[]", line.strip(), maxsplit=1)[0].lower()
            for line in lines if line.strip()}


def test_tox_runs_the_tests_mypy_strict_and_ruff_with_what_the_test_extra_installs(
    tmp_path: Path
) -> None:
    target = create_plugin("geo", tmp_path)
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(target / "tox.ini", encoding="utf-8")
    assert [env.strip() for env in tox["tox"]["env_list"].split(",")] == ["py", "type", "lint"]
    assert tox["testenv"]["commands"].strip() == "pytest {posargs}"
    assert tox["testenv:type"]["commands"].strip() == "mypy {posargs}"
    assert tox["testenv:lint"]["commands"].strip() == "ruff check src tests"
    project = tomllib.loads((target / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["tool"]["mypy"] == {"strict": True, "files": ["src", "tests"]}
    # hookline comes from HOOKLINE_PACKAGE when set, else from PyPI as the plugin requires it
    deps = tox["testenv"]["deps"].strip().splitlines()
    floor = "hookline>=" + hookline.__version__.rpartition(".")[0]
    assert deps[0] == "{env:HOOKLINE_PACKAGE:" + floor + "}"
    needed = _requirement_names([
        line for section in ("testenv", "testenv:type", "testenv:lint")
        for line in tox[section]["deps"].splitlines() if not line.strip().startswith("{")]
        + [tox["tox"]["requires"]])
    assert needed == {"pytest", "mypy", "ruff", "tox"}
    assert needed <= _requirement_names(project["project"]["optional-dependencies"]["test"])
    assert "HOOKLINE_PACKAGE" in (target / "README.md").read_text(encoding="utf-8")


def test_the_ci_workflow_runs_tox_and_git_ignores_what_tools_leave(tmp_path: Path) -> None:
    target = create_plugin("geo", tmp_path)
    workflow = (target / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    assert "python-version: ${{ matrix.python }}" in workflow
    assert 'python: ["3.10", "3.11", "3.12", "3.13"]' in workflow
    assert workflow.rstrip().endswith("- run: tox")
    ignored = (target / ".gitignore").read_text(encoding="utf-8").split()
    assert {".tox/", "__pycache__/", ".mypy_cache/", "*.egg-info/", "dist/"} <= set(ignored)


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "hookline-fraud"
    target.mkdir()
    (target / "mine.txt").write_text("keep")
    with pytest.raises(ScaffoldError, match="exists already; choose another name or --dir"):
        create_plugin("fraud", tmp_path)
    assert [p.name for p in target.iterdir()] == ["mine.txt"]


def _new_plugin(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    scaffold.add_arguments(parser.add_subparsers())
    args = parser.parse_args(["new-plugin", *argv])
    code: int = args.handler(args)
    return code


def test_the_command_reports_what_it_wrote_and_what_to_do_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _new_plugin("geo", "--dir", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"created {tmp_path / 'hookline-geo'}/\n")
    assert "  src/hookline_geo/__init__.py\n" in out
    assert 'pip install -e ".[test]"' in out and "geo.blocked_kinds" in out
    assert "  tox  " in out
    assert _new_plugin("geo", "--dir", str(tmp_path)) == 1
    assert "exists already" in capsys.readouterr().err
    assert _new_plugin("Geo", "--dir", str(tmp_path)) == 2
    assert capsys.readouterr().err == (
        "hookline new-plugin: plugin name 'Geo' must be lower case; try 'geo'\n")


@pytest.fixture
def scaffolded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A new plugin ``geo``, importable from its src/ folder without installing it."""
    target = create_plugin("geo", tmp_path)
    monkeypatch.syspath_prepend(str(target / "src"))
    yield target
    for name in [m for m in sys.modules if m.partition(".")[0] == "hookline_geo"]:
        del sys.modules[name]


def test_the_new_plugin_satisfies_the_contract_and_works(
    scaffolded: Path, registry: hookline.Registry
) -> None:
    plugin = importlib.import_module("hookline_geo")
    assert verify(plugin) == []
    pipeline = hookline.Pipeline.from_plugins([plugin])
    event = {"event_id": "e1", "user_id": "u1", "kind": "test", "ts": 1}
    with pytest.raises(hookline.Reject, match="kind 'test' is blocked") as rejected:
        pipeline.process(event)
    assert rejected.value.stage == "geo.blocked_kinds"


def test_the_new_plugins_tests_pass_without_installing_it(
    scaffolded: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeini("[pytest]\nfilterwarnings = ignore::pytest.PytestAssertRewriteWarning\n")
    result = pytester.runpytest("-p", "hookline.testing", str(scaffolded / "tests"))
    result.assert_outcomes(passed=5)
