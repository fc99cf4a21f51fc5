"""What ``hookline run`` shows while it runs (issue 18): on a terminal (a pseudo-terminal the
test drives) a progress bar with the share of the input, the rate and the time left; without
one, with ``--progress``, a log line now and then on stderr, and nothing without it."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from hookline._generate import write_jsonl
from hookline.testing import write_installed

#: A stage that takes a millisecond an event: a run of 3,000 events lasts a few seconds.
_SLOW = '''
import time
import hookline

class Slow(hookline.Stage, phase="enrich", name="slow"):
    def process(self, event):
        time.sleep(0.001)
'''


@pytest.fixture
def setup(tmp_path: Path) -> tuple[dict[str, str], Path]:
    site = write_installed(tmp_path / "site", "slow", _SLOW)
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOOKLINE_")}
    env.update(PYTHONPATH=str(site), HOOKLINE_PLUGINS="slow",
               HOOKLINE_CACHE_DIR=str(tmp_path / "cache"))
    events = tmp_path / "events.jsonl"
    write_jsonl(events, 3000, invalid_rate=0.05, seed=2)
    return env, events


def _command(events: Path, db: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "hookline.cli", "run", str(events), "--db", str(db),
            "--batch-size", "100", *options]


def _on_a_terminal(command: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run ``command`` with stderr on a new pseudo-terminal of 120 columns; its exit status
    and what the terminal received."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=follower, env=env, cwd=cwd)
    os.close(follower)
    received = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal closed with the process
                    break
                if not chunk:
                    break
                received += chunk
            elif process.poll() is not None:
                break
        return process.wait(timeout=10), received.decode("utf-8", "replace")
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()


def test_a_progress_bar_on_a_terminal(setup: tuple[dict[str, str], Path],
                                      tmp_path: Path) -> None:
    env, events = setup
    code, screen = _on_a_terminal(_command(events, tmp_path / "out.db"), env, tmp_path)
    assert code == 0, screen
    frames = [frame for frame in re.split(r"[\r\n]", screen) if "events/s" in frame]
    assert len(frames) >= 3, screen
    # a frame in the middle: percent, bytes of the input, events, rate, dead letters, ETA
    pattern = re.compile(r"(\d+)% \|.*\| [\d.]+[kM]?B of [\d.]+[kM]?B, ([\d,]+) events, "
                         r"([\d,]+) events/s, ([\d,]+) dead-lettered, \d\d:\d\d elapsed, "
                         r"ETA (\d\d:\d\d)")
    found = [pattern.search(frame) for frame in frames]
    shown = [match for match in found if match is not None]
    assert len(shown) >= 3, frames
    assert any(0 < int(match[1]) < 100 and int(match[3].replace(",", "")) > 0
               for match in shown), frames
    counts = [int(match[2].replace(",", "")) for match in shown]
    assert counts == sorted(counts) and counts[-1] <= 3000


def test_no_bar_with_no_progress(setup: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, events = setup
    code, screen = _on_a_terminal(_command(events, tmp_path / "out.db", "--no-progress"),
                                  env, tmp_path)
    assert code == 0 and "events/s" not in screen, screen


def test_log_lines_without_a_terminal(setup: tuple[dict[str, str], Path],
                                      tmp_path: Path) -> None:
    env, events = setup
    lines = subprocess.run(_command(events, tmp_path / "a.db", "--progress",
                                    "--progress-every", "0.3"),
                           env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=120, check=False)
    assert lines.returncode == 0, lines.stderr
    progress = [line for line in lines.stderr.splitlines()
                if line.startswith("INFO hookline.progress: ")]
    assert len(progress) >= 3, lines.stderr
    pattern = re.compile(r"^INFO hookline\.progress: ([\d,]+) events, [\d,]+ events/s, "
                         r"[\d,]+ dead-lettered, [\d.]+% of [\d.]+ KiB, ETA \d+:\d\d$")
    assert all(pattern.match(line) for line in progress), progress
    assert "hookline run " in lines.stdout  # the report, on stdout as ever

    quiet = subprocess.run(_command(events, tmp_path / "b.db"), env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120, check=False)
    assert quiet.returncode == 0 and "hookline.progress" not in quiet.stderr
