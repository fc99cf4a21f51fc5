"""Real environments for end-to-end tests: a fresh venv with hookline installed from a wheel."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def sorted_rows(db: Path, query: str) -> list[Any]:
    """The rows ``query`` finds in the SQLite database ``db``, sorted."""
    with sqlite3.connect(db) as connection:
        return sorted(connection.execute(query).fetchall())


class Env:
    """A virtual environment, and commands run inside it with a cwd and env of its own."""

    def __init__(self, path: Path, work: Path) -> None:
        self.path = path
        self.work = work
        self.bin = path / ("Scripts" if os.name == "nt" else "bin")
        self.python = str(self.bin / "python")
        self.env = {
            **{k: v for k, v in os.environ.items()
               if not k.startswith(("HOOKLINE_", "VIRTUAL_ENV", "PYTHONPATH"))},
            "HOOKLINE_CACHE_DIR": str(path / "hookline-cache"),
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def run(self, *args: str, check: bool = True, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(list(args), cwd=self.work, env={**self.env, **(env or {})},
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{args} exited {result.returncode}\n{result.stdout}\n"
                                 f"{result.stderr}")
        return result

    def pip(self, *args: str) -> None:
        self.run(self.python, "-m", "pip", "--disable-pip-version-check", "-q", *args)

    def hookline(self, *args: str, check: bool = True, env: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.bin / "hookline"), *args, check=check, env=env)


@pytest.fixture(scope="session")
def hookline_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hookline built as a wheel from this checkout, once per test session."""
    out = tmp_path_factory.mktemp("hookline-wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
                    str(ROOT)], check=True)
    return next(out.glob("hookline-*.whl"))


@pytest.fixture
def env(tmp_path: Path, hookline_wheel: Path) -> Iterator[Env]:
    """A fresh venv with only hookline (and its dependencies) installed."""
    path = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(path)
    work = tmp_path / "work"
    work.mkdir()
    environment = Env(path, work)
    environment.pip("install", str(hookline_wheel))
    yield environment
