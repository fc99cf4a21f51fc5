"""``hookline run --demo``: its events are generated once per size and seed into hookline's
cache folder and reused; nothing is left in the temporary folder."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _cli_site import Site, opened

import hookline
from hookline import _generate
from hookline._generate import demo_input, generate_lines


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         registry: hookline.Registry) -> Iterator[Site]:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    with opened(tmp_path, monkeypatch, capsys) as folder:
        monkeypatch.setenv("HOOKLINE_DISABLE_PLUGIN_AUTOLOAD", "1")  # no plugin is needed
        yield folder


def test_the_demo_file_is_generated_once_in_the_cache_and_reused(
    site: Site, tmp_path: Path
) -> None:
    first = site.hookline("run", "--demo", "--demo-events", "3000", "--db", "a.db")
    assert first.code == 0, first.err
    (demo,) = (tmp_path / "cache" / "demo").iterdir()
    assert f"demo: generated 3,000 events (150 invalid) in {demo}" in first.err
    assert demo.read_text(encoding="utf-8") == "".join(
        f"{line}\n" for line in generate_lines(3000, seed=0))
    written = demo.stat().st_mtime_ns
    second = site.hookline("run", "--demo", "--demo-events", "3000", "--db", "b.db")
    assert second.code == 0, second.err
    assert f"demo: 3,000 events (seed 0) from {demo}, generated before" in second.err
    assert demo.stat().st_mtime_ns == written
    other = site.hookline("run", "--demo", "--demo-events", "3000", "--seed", "7", "--db",
                          "c.db")
    assert other.code == 0
    assert len(list((tmp_path / "cache" / "demo").iterdir())) == 2  # one per seed
    assert list((tmp_path / "tmp").iterdir()) == []  # nothing in the temporary folder


def test_an_interrupted_generation_leaves_nothing_to_reuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cut(lines: Iterator[_generate.GeneratedLine], stream: object) -> None:
        stream.write(next(lines).text)  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    monkeypatch.setattr(_generate, "_write", cut)
    with pytest.raises(KeyboardInterrupt):
        demo_input(100, folder=tmp_path)
    assert list((tmp_path / "demo").iterdir()) == []  # neither the file nor a partial one
    monkeypatch.undo()
    path, stats = demo_input(100, folder=tmp_path)
    assert stats is not None and stats.total == 100
    assert Path(path).read_text(encoding="utf-8").count("\n") == 100
