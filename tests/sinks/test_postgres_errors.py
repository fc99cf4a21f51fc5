"""What a user sees when no PostgreSQL server answers, and what the tests do when they cannot
start one: both need no server (they run in every test environment)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import _postgres
import pytest


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_no_server_exits_6_naming_the_fix_without_the_password(tmp_path: Path) -> None:
    source = tmp_path / "one.jsonl"
    source.write_text('{"event_id": "e1", "user_id": "u1", "kind": "view", "ts": 1}\n')
    url = f"postgresql://ada:s3cret-pw@127.0.0.1:{_closed_port()}/analytics"
    done = subprocess.run([sys.executable, "-m", "hookline.cli", "run", str(source), "--db",
                           url], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "HOOKLINE_PLUGINS": ""})
    assert done.returncode == 6, done.stderr
    assert "postgresql://ada:***@127.0.0.1" in done.stderr
    assert "Connection refused" in done.stderr
    assert "is the PostgreSQL server running" in done.stderr
    assert "s3cret-pw" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_without_server_binaries_the_tests_are_told_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No binaries anywhere: starting a server raises the reason (the fixture turns it into
    a failure, never a skip) and names the packages that bring a server."""
    monkeypatch.setattr(_postgres.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(_postgres.shutil, "which", lambda name: None)
    monkeypatch.setattr(_postgres.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(_postgres.ServerUnavailable, match="apt-get install postgresql.*pgserver"):
        _postgres.start()
