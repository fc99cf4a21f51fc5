"""Running ``hookline`` as a user does: a separate process, plugins installed in a folder on
``PYTHONPATH`` (``hookline.testing.write_installed``), nothing of the test's own environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from _db import rows as rows  # the tests' one reader of a database, for this folder's too

from hookline._generate import write_jsonl
from hookline.testing import write_installed


class Env:
    """A working folder, a site folder of installed plugins, and the command line."""

    def __init__(self, root: Path) -> None:
        self.work = root / "work"
        self.site = root / "site"
        self.work.mkdir()
        self.site.mkdir()
        self.cache = root / "cache"
        #: The plugins selected (HOOKLINE_PLUGINS): those installed here, not the
        #: environment's own (the contrib plugins may be installed too).
        self.selected: list[str] = []

    def install(self, name: str, source: str, *, version: str = "1.0") -> None:
        """Plugin ``name`` (distribution ``NAME-plugin``, module ``NAME_plugin``)."""
        write_installed(self.site, name, textwrap.dedent(source), version=version)
        self.selected.append(name)

    def install_as(self, name: str, entry_point: str, source: str, *,
                   version: str = "1.0") -> None:
        """Distribution ``NAME-plugin`` whose entry point is called ``entry_point``."""
        self.install(name, source, version=version)
        self.selected[-1] = entry_point
        info = self.site / f"{name}_plugin-{version}.dist-info" / "entry_points.txt"
        info.write_text(f"[hookline.plugins]\n{entry_point} = {name}_plugin\n")

    def events(self, name: str = "events.jsonl", n: int = 2000, *, seed: int = 1,
               invalid_rate: float = 0.0) -> Path:
        path = self.work / name
        write_jsonl(path, n, invalid_rate=invalid_rate, seed=seed)
        return path

    def environ(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HOOKLINE_", "PYTEST_", "COV_"))}
        env.update(PYTHONPATH=str(self.site), HOOKLINE_CACHE_DIR=str(self.cache),
                   HOOKLINE_PLUGINS=",".join(dict.fromkeys(self.selected)),
                   PYTHONUNBUFFERED="1")
        env.update(extra)
        return env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "hookline.cli", *args]

    def hookline(self, *args: str, timeout: float = 50, prefix: tuple[str, ...] = (),
                 **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, *self.argv(*args)], cwd=self.work,
                              env=self.environ(**extra), capture_output=True, text=True,
                              timeout=timeout, check=False)

    def start(self, *args: str, **extra: str) -> subprocess.Popen[str]:
        """``hookline ARGS`` started, not waited for (to send it signals). SIGINT starts at
        its default, as in a terminal, even where the suite itself runs with it ignored (a
        shell's background job): Python then installs its own handler, as for a user."""
        return subprocess.Popen(self.argv(*args), cwd=self.work, env=self.environ(**extra),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
