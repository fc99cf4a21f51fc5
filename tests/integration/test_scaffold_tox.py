"""A new plugin, checked as its author would: ``pip install -e ".[test]"``, then ``tox``.

The fresh venv has hookline installed from a wheel of this checkout; the test extra brings
tox, pytest, mypy and ruff; tox builds its own environments and installs hookline into them
from ``HOOKLINE_PACKAGE`` (this wheel: the hookline under test, not one from PyPI) and the rest
from the package index.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .conftest import Env


def test_a_new_plugin_passes_tox_right_after_pip_install_test_extra(
    env: Env, hookline_wheel: Path
) -> None:
    env.hookline("new-plugin", "geo")
    plugin = env.work / "hookline-geo"
    env.pip("install", "-e", f"{plugin}[test]")
    tox = env.bin / "tox"
    assert tox.is_file(), "the test extra did not install tox"
    done = subprocess.run([str(tox)], cwd=plugin, capture_output=True, text=True, timeout=900,
                          env={**env.env, "HOOKLINE_PACKAGE": str(hookline_wheel)})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    for name in ("py", "type", "lint"):
        assert f"  {name}: OK" in output, output
    assert "5 passed" in output  # the plugin's own tests
    assert "Success: no issues found" in output  # mypy --strict on src and tests
    assert "All checks passed!" in output  # ruff
    assert str(hookline_wheel) in output  # tox installed the hookline under test
