"""What the Dask executor's tests share: a plugin of the tests' own beside the contrib
plugins, ``hookline run`` in a process of its own, and ``dask scheduler`` / ``dask worker``
processes started by the tests (the fixtures are in ``conftest.py``)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _executors_support import by_currency

from hookline.testing import write_installed

#: The tests' own plugin: a stateful stage (each user's events counted, the 25th on refused),
#: a stage behind a flag, an aggregation of its own, and a stage that ends its process on the
#: event named by HOOKLINE_TEST_POISON (or rejects it, with HOOKLINE_TEST_POISON_MODE=reject),
#: first of all, before any stage changes its state for the event.
TALLY = '''
import os

import hookline


@hookline.hookimpl
def hookline_flags():
    return [{"name": "tally.tagged", "default": False, "key": "user_id"}]


class Count(hookline.Stage, phase="validate", name="count"):
    """Needs all of a user's earlier events, in order: refuses a user's 25th event on."""

    def process(self, event):
        seen = self.state.get(event.user_id, 0) + 1
        self.state[event.user_id] = seen
        if seen >= 25:
            raise hookline.Reject(f"{event.user_id}: event {seen} of the user")


class Tag(hookline.Stage, phase="enrich", name="tag", flag="tally.tagged"):
    def process(self, event):
        event.tags = [*event.tags, "tagged"]


class Poison(hookline.Stage, phase="validate", name="poison", tryfirst=True):
    def process(self, event):
        if event.event_id == os.environ.get("HOOKLINE_TEST_POISON"):
            if os.environ.get("HOOKLINE_TEST_POISON_MODE") == "reject":
                raise hookline.Reject("poison")
            os._exit(3)
''' + by_currency("agg_tally_currency")

PLUGINS = "fraud,ranking,monitoring,tally"
#: A 30 % rollout of a contrib flag and of the tests' own, the same batches for every run
#: (float sums are grouped by batch).
RUN_OPTIONS = ("--flag", "ranking.experimental=0.3", "--flag", "tally.tagged=0.3",
               "--batch-size", "5000")
DASK = str(Path(sys.executable).with_name("dask"))


def committed_lines(db: Path) -> int:
    """How far a run's commits got, read while it runs (0 before its first)."""
    try:
        with sqlite3.connect(db, timeout=1) as connection:
            row = connection.execute("SELECT max(line) FROM checkpoints").fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0] or 0)


def site_with_tally(folder: Path, version: str) -> Path:
    return write_installed(folder, "tally", textwrap.dedent(TALLY), version=version)


def hookline_run(*args: str, env: dict[str, str], cwd: Path, timeout: float = 300,
                 prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """``hookline run ARGS`` in a process of its own (run through ``prefix``: ``ip netns
    exec NAME``)."""
    return subprocess.run([*prefix, sys.executable, "-m", "hookline.cli", "run", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def succeeded(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class Cluster:
    """``dask scheduler`` and ``dask worker`` processes (each the worker itself: no nanny, so
    that a killed worker stays dead), each optionally run through a command prefix (``ip
    netns exec NAME``), stopped at the end."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.processes: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def _start(self, name: str, command: list[str], env: dict[str, str] | None
               ) -> subprocess.Popen[bytes]:
        out = open(self.log / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(command, env=env or self.env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self.processes.append(process)
        return process

    def scheduler(self, host: str = "127.0.0.1", prefix: tuple[str, ...] = ()) -> str:
        port = free_port(host) if not prefix else 8786
        self._start("scheduler", [*prefix, DASK, "scheduler", "--host", host, "--port",
                                  str(port), "--no-dashboard"], None)
        self.address = f"tcp://{host}:{port}"
        return self.address

    def worker(self, name: str, host: str = "127.0.0.1", prefix: tuple[str, ...] = (),
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        process = self._start(name, [*prefix, DASK, "worker", self.address, "--name", name,
                                     "--nthreads", "1", "--no-nanny", "--host", host,
                                     "--no-dashboard"], env)
        self.workers.append(process)
        return process

    def wait_for(self, count: int, prefix: tuple[str, ...] = ()) -> None:
        """Until ``count`` workers are connected (asked from a process of its own, in the
        scheduler's network)."""
        probe = (f"from distributed import Client; c = Client({self.address!r}, timeout=60); "
                 f"c.wait_for_workers({count}, timeout=90); c.close()")
        done = subprocess.run([*prefix, sys.executable, "-c", probe], env=self.env,
                              capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            logs = "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
                             for path in sorted(self.log.glob("*.log")))
            pytest.fail(f"the cluster did not come up: {done.stderr[-2000:]}\n{logs}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
