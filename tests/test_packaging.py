"""The distribution ships every part of the core, and the tests use the installed package."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import hookline

ROOT = Path(__file__).resolve().parent.parent


def _listed_packages() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r"^packages\s*=\s*\[(.*?)\]", text, re.M | re.S)
    assert match, "pyproject.toml must list the packages explicitly"
    return set(re.findall(r'"([^"]+)"', match.group(1)))


def test_every_subpackage_of_core_is_listed_in_pyproject() -> None:
    tree = {"hookline"}
    for init in (ROOT / "core").rglob("__init__.py"):
        relative = init.parent.relative_to(ROOT / "core")
        if relative.parts and "__pycache__" not in relative.parts:
            tree.add(".".join(("hookline", *relative.parts)))
    assert _listed_packages() == tree


def test_tests_use_the_installed_package_not_the_source_tree() -> None:
    location = Path(hookline.__file__).resolve()
    if os.environ.get("TOX_ENV_NAME"):  # under tox the wheel is installed in site-packages
        assert "site-packages" in location.parts, location
    offenders = [
        path.name
        for path in Path(__file__).parent.rglob("*.py")
        if re.search(r"^\s*(from|import)\s+core\b", path.read_text(encoding="utf-8"), re.M)
    ]
    assert offenders == []


def test_import_hookline_from_another_folder_is_cheap(tmp_path: Path) -> None:
    code = (
        "import sys, hookline; "
        "print(hookline.__file__); "
        "print(sorted(m for m in ('importlib.metadata', 'importlib_metadata', 'sqlite3', "
        "'asyncio') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout.splitlines()
    assert Path(out[0]).resolve() == Path(hookline.__file__).resolve()
    assert out[1] == "[]", "import hookline must not load metadata, sqlite3 or the runner"


def test_py_typed_ships() -> None:
    assert (Path(hookline.__file__).parent / "py.typed").is_file()
