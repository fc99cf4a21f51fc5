"""Discovery: the warm cache is never stale, and a warm start never reads package metadata."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hookline import _discovery as discovery


def _install(site: Path, dist: str, entry_points: dict[str, str]) -> Path:
    """Lay out a distribution's metadata the way pip does."""
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[hookline.plugins]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    return info


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("HOOKLINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HOOKLINE_NO_CACHE", raising=False)
    return folder


def _names() -> list[str]:
    return [ep.name for ep in discovery.installed() if ep.distribution.startswith("fake-")]


def test_the_cache_follows_installs_and_removals(site: Path) -> None:
    assert _names() == []
    _install(site, "fake-one", {"one": "fake_one"})
    assert _names() == ["one"]
    assert discovery.cache_path().is_file()
    time.sleep(0.01)
    second = _install(site, "fake-two", {"two": "fake_two:plugin"})
    assert _names() == ["one", "two"]
    [two] = [ep for ep in discovery.installed() if ep.name == "two"]
    assert (two.module, two.attr, two.label) == ("fake_two", "plugin", "fake-two 1.0")
    for path in second.iterdir():
        path.unlink()
    second.rmdir()
    assert _names() == ["one"]
    assert _names() == [ep.name for ep in discovery.installed(use_cache=False)
                        if ep.distribution.startswith("fake-")]


def test_a_corrupt_cache_is_rebuilt(site: Path) -> None:
    _install(site, "fake-one", {"one": "fake_one"})
    _names()
    discovery.cache_path().write_text("{not json")
    assert _names() == ["one"]


def test_a_warm_start_never_imports_importlib_metadata(site: Path, tmp_path: Path) -> None:
    _install(site, "fake-one", {"one": "fake_one"})
    code = (
        "import sys; from hookline._discovery import installed; "
        "names = [ep.name for ep in installed()]; "
        "print('one' in names, 'importlib.metadata' in sys.modules "
        "or 'importlib_metadata' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "HOOKLINE_CACHE_DIR": str(tmp_path / "c2")}
    env.pop("HOOKLINE_NO_CACHE", None)
    run = [sys.executable, "-c", code]
    cold = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    warm = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert cold.stdout.split() == ["True", "True"]
    assert warm.stdout.split() == ["True", "False"]
