"""Shared fixtures of the core's tests."""

from __future__ import annotations

import signal
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _cli_site import Site, opened
from _postgres import Server, ServerUnavailable, start

import hookline


@pytest.fixture
def python_sigint() -> Iterator[None]:
    """Python's own SIGINT handler (``KeyboardInterrupt``) for this test, whatever the suite
    was started under: a shell starts a background job (``tox &``) with SIGINT ignored, and
    a process that starts with SIGINT ignored never installs Python's handler."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.fixture(autouse=True)
def _signal_handlers_left_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test leaves SIGINT and SIGTERM as it found them: a handler left behind (or an
    ignored SIGINT, which child processes inherit) breaks the Ctrl-C tests that come later,
    far from the cause. The test that left it fails here, by name."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    after = {sig: signal.getsignal(sig) for sig in before}
    for sig, handler in before.items():
        signal.signal(sig, handler)
    changed = [f"{sig.name}: {before[sig]!r} -> {after[sig]!r}" for sig in before
               if after[sig] is not before[sig]]
    assert not changed, f"{request.node.nodeid} left signal handlers changed: {changed}"


@pytest.fixture
def registry() -> Iterator[hookline.Registry]:
    """A registry of its own for the test: stage classes defined in it go nowhere else."""
    with hookline.Registry().activate() as own:
        yield own


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], str]:
    """Write an importable module (or package, for dotted names) from source text."""
    root = tmp_path / "modules"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    created: list[str] = []

    def make(name: str, source: str) -> str:
        parts = name.split(".")
        folder = root.joinpath(*parts[:-1])
        folder.mkdir(parents=True, exist_ok=True)
        for depth in range(1, len(parts)):
            init = root.joinpath(*parts[:depth], "__init__.py")
            if not init.exists():
                init.write_text("")
        (folder / f"{parts[-1]}.py").write_text(textwrap.dedent(source))
        created.append(parts[0])
        return name

    yield make
    for name in list(sys.modules):
        if name.partition(".")[0] in created:
            del sys.modules[name]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> Iterator[Site]:
    """Plugins installed as pip leaves them, and ``hookline`` run on them (``_cli_site.py``)."""
    with opened(tmp_path, monkeypatch, capsys) as folder:
        yield folder


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    """A throwaway PostgreSQL server for the whole session (see ``_postgres.py``), stopped and
    removed at the end. No server is a failure, never a skip."""
    try:
        server = start()
    except ServerUnavailable as exc:
        pytest.fail(f"cannot start a PostgreSQL server for the tests: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: Server) -> str:
    """The URL of a new empty database on the test server, one per test."""
    return postgres_server.create_database()
