"""Plugins installed as pip leaves them, and the ``hookline`` command run on them in-process.

Shared by the tests of the operator's side of hookline (pre-flight, secrets, plugins
folders, logging): each test gets a folder on ``sys.path`` holding real distributions
(``hookline.testing.write_installed``), its own discovery cache and working folder, no
``HOOKLINE_*`` variable of the developer's, and only its own plugins selected (the checkout's
venv also has the contrib plugins installed). The ``site`` fixture (conftest.py) opens one;
a test module that needs plugins installed first overrides it, asking for it by name.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest

from hookline._generate import write_jsonl
from hookline.cli import main
from hookline.testing import write_installed


class Result(NamedTuple):
    code: int
    out: str
    err: str


class Site:
    """A site folder with plugins installed in it, and a working folder to run hookline in."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str]) -> None:
        self.folder = root / "site-packages"
        self.folder.mkdir()
        self.work = root / "work"
        self.work.mkdir()
        self.monkeypatch = monkeypatch
        self.capsys = capsys
        self.selected: list[str] = []
        self.modules: list[str] = []
        monkeypatch.syspath_prepend(str(self.folder))
        for name in [n for n in os.environ if n.startswith("HOOKLINE_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("HOOKLINE_CACHE_DIR", str(root / "cache"))
        monkeypatch.chdir(self.work)

    def install(self, name: str, source: str, *, version: str = "1.0") -> None:
        """Install plugin ``name`` (module ``NAME_plugin``, distribution ``NAME-plugin``)."""
        write_installed(self.folder, name, textwrap.dedent(source), version=version)
        self.modules.append(f"{name}_plugin")
        self.select(name)

    def install_in_group(self, distribution: str, group: str, name: str, source: str) -> None:
        """A distribution declaring ``name`` in the entry point group ``group``."""
        module = distribution.replace("-", "_")
        (self.folder / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        info = self.folder / f"{module}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n", encoding="utf-8")
        (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {module}\n",
                                               encoding="utf-8")
        self.modules.append(module)

    def select(self, *names: str) -> None:
        """Add ``names`` to the plugins hookline loads (HOOKLINE_PLUGINS)."""
        self.selected += names
        self.monkeypatch.setenv("HOOKLINE_PLUGINS", ",".join(self.selected))

    def config(self, text: str, name: str = "hookline.toml") -> Path:
        path = self.work / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def events(self, n: int = 50, *, seed: int = 1, name: str = "events.jsonl") -> Path:
        path = self.work / name
        write_jsonl(path, n, invalid_rate=0.0, seed=seed)
        return path

    def hookline(self, *argv: str) -> Result:
        """``hookline ARGV`` in this process: its exit status, stdout and stderr."""
        self.capsys.readouterr()
        code = main([str(arg) for arg in argv])
        out, err = self.capsys.readouterr()
        return Result(code, out, err)

    def process(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``hookline ARGV`` in a process of its own, as a user runs it: this site's plugins
        on ``PYTHONPATH``, this test's ``HOOKLINE_*`` variables, in the working folder."""
        path = os.pathsep.join(filter(None, [str(self.folder), os.environ.get("PYTHONPATH")]))
        return subprocess.run([sys.executable, "-m", "hookline.cli", *map(str, argv)],
                              cwd=self.work, env={**os.environ, "PYTHONPATH": path},
                              capture_output=True, text=True, timeout=timeout, check=False)

    def forget(self) -> None:
        """Unimport what the plugins imported (module names repeat from test to test)."""
        for name in list(sys.modules):
            root = name.partition(".")[0]
            if root in self.modules or root.startswith("hookline_local_"):
                del sys.modules[name]


@contextmanager
def opened(root: Path, monkeypatch: pytest.MonkeyPatch,
           capsys: pytest.CaptureFixture[str]) -> Iterator[Site]:
    site = Site(root, monkeypatch, capsys)
    try:
        yield site
    finally:
        site.forget()
