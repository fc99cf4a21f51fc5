"""The process executor gives the same database as inline, and refuses what it cannot do."""

from __future__ import annotations

import os
import queue
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from _executors_support import by_currency

import hookline
from hookline._executors.process import (
    _HEADER,
    ExecutorError,
    _Channel,
    _exit_status,
    _start_method,
    _worker,
    partition_of,
)
from hookline._generate import write_jsonl
from hookline.behaviors import DEFAULT_METRICS
from hookline.config import Config
from hookline.testing import database_content, write_installed

PLUGIN = '''
import hookline

class Velocity(hookline.Stage, phase="validate", name="velocity"):
    """Reject a user's events after their 40th: needs all of a user's events in order."""

    def process(self, event):
        seen = self.state.get(event.user_id, 0) + 1
        self.state[event.user_id] = seen
        if seen > 40:
            raise hookline.Reject(f"{event.user_id}: {seen} events")

hookline.flags.define("velocity.tagging", rollout=0.5, description="tag half the users")

class Flaky(hookline.Stage, phase="enrich", name="flaky"):
    def process(self, event):
        if event.event_id.endswith("7"):
            raise RuntimeError("unlucky id")
        if hookline.flags.is_enabled("velocity.tagging", event):  # asked in the stage's code
            event.tags = [*event.tags, "seen"]

class Down(hookline.Stage, phase="score", name="down"):
    """Fails on every event while HOOKLINE_TEST_DOWN is set: a service that is down."""

    def process(self, event):
        import os
        if os.environ.get("HOOKLINE_TEST_DOWN"):
            raise ConnectionError("scoring service unreachable")
''' + by_currency("agg_by_currency")


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A plugin distribution on sys.path, found through its entry point, in every process."""
    site = write_installed(tmp_path / "site", "velocity", textwrap.dedent(PLUGIN), version="2.0")
    monkeypatch.syspath_prepend(str(site))
    # this test's copy of the plugin, not one another test imported (tracebacks name the file)
    monkeypatch.delitem(sys.modules, "velocity_plugin", raising=False)
    monkeypatch.setenv("HOOKLINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HOOKLINE_PLUGINS", "velocity")
    return site


def test_process_executor_equals_inline(installed: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    write_jsonl(source, 6000, invalid_rate=0.05, seed=11)
    config = Config(batch_size=700, behaviors={"velocity.flaky": ["timed()"]})

    def run(db: str, **options: Any) -> hookline.Report:
        DEFAULT_METRICS.reset()
        return hookline.run([str(source)], db=str(tmp_path / db), config=config,
                            pipeline=hookline.Pipeline.from_entry_points(config), **options)

    inline = run("inline.db")
    process = run("process.db", executor="process", workers=2)
    assert inline.stages.get("velocity.velocity", 0) > 0, "the stateful stage must matter"
    assert (process.read, process.accepted, process.dead_lettered) == (
        inline.read, inline.accepted, inline.dead_lettered)
    content = database_content(tmp_path / "inline.db")
    assert database_content(tmp_path / "process.db") == content
    # The plugin's aggregation counts every accepted event once, whoever processed it.
    assert sum(events for _, events, _ in content["agg_by_currency"]) == inline.accepted
    # What timed() measured in the workers reaches the parent's report.
    timed = (inline.sections["timed"]["velocity.flaky"], process.sections["timed"][
        "velocity.flaky"])
    assert timed[0]["calls"] == timed[1]["calls"] > 0
    assert timed[0]["errors"] == timed[1]["errors"] == inline.stages["velocity.flaky"]
    # So do the phase timings: the same sampled events, timed where they ran.
    assert process.phase_stats.keys() == inline.phase_stats.keys() == {
        "validate", "enrich", "score"}
    assert [phase["timed"] for phase in process.phase_stats.values()] == [
        phase["timed"] for phase in inline.phase_stats.values()]
    assert inline.phase_stats["validate"]["timed"] > 0
    # And the flag decisions a stage's code took there.
    assert process.flags == inline.flags
    [tagging] = [flag for flag in inline.flags if flag["name"] == "velocity.tagging"]
    assert 0 < tagging["on"] < tagging["evaluations"]


def test_the_breaker_quarantines_a_stage_in_the_workers_too(
    installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKLINE_TEST_DOWN", "1")
    source = tmp_path / "in.jsonl"
    write_jsonl(source, 3000, seed=5)
    config = Config(batch_size=100, quarantine_after=50)
    report = hookline.run([str(source)], db=str(tmp_path / "q.db"), config=config,
                          pipeline=hookline.Pipeline.from_entry_points(config),
                          executor="process", workers=2)
    assert report.quarantined == ["velocity.down"]
    assert report.stage_stats["velocity.down"]["quarantined"] is True
    failed = report.stages["velocity.down"]
    # Taken out within a few batches of the decision, not after all 3,000 events: each
    # worker may be up to the queue's depth (4 batches per worker) ahead of the commits.
    assert 50 <= failed <= 50 + 2 * 4 * 100 + 100, failed
    assert report.accepted + report.dead_lettered == report.read == 3000


def test_objects_in_hand_cannot_travel_to_workers(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    write_jsonl(source, 10, seed=1)
    with pytest.raises(ExecutorError, match="installed entry points"):
        hookline.run([str(source)], db=str(tmp_path / "x.db"), executor="process",
                     pipeline=hookline.Pipeline.from_plugins([]))


def test_a_worker_refuses_other_plugin_versions(installed: Path, tmp_path: Path) -> None:
    out: queue.Queue[Any] = queue.Queue()
    spec = {"config": Config(plugins=("velocity",)).as_dict(), "versions": {"velocity": "1.0"},
            "scoped_flags": {}, "db": str(tmp_path / "x.db"), "source": "-", "offset": 0,
            "line": 0}
    _worker(0, 2, spec, out)
    kind, _index, message = out.get_nowait()
    assert kind == "error" and "'velocity': '2.0'" in message and "'velocity': '1.0'" in message


def test_partitions_follow_the_user_not_the_line() -> None:
    lines = [(b'{"user_id": "u17", "n": %d}' % i, i) for i in range(50)]
    assert len({partition_of(raw, line, 4) for raw, line in lines}) == 1
    assert len({partition_of(b"not json", line, 4) for line in range(50)}) == 4


def test_a_gzip_input_gives_the_same_database_as_inline(installed: Path, tmp_path: Path) -> None:
    import gzip

    plain = tmp_path / "in.jsonl"
    write_jsonl(plain, 2000, invalid_rate=0.05, seed=3)
    packed = tmp_path / "in.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    config = Config(batch_size=300)

    def run(db: str, **options: Any) -> dict[str, Any]:
        hookline.run([str(packed)], db=str(tmp_path / db), config=config,
                     pipeline=hookline.Pipeline.from_entry_points(config), **options)
        return database_content(tmp_path / db)

    assert run("process.db", executor="process", workers=2) == run("inline.db")


def test_workers_start_from_the_state_earlier_runs_committed(
    installed: Path, tmp_path: Path
) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    write_jsonl(first, 2000, seed=21)
    write_jsonl(second, 2000, seed=22)
    config = Config(batch_size=300)

    def run(db: str, source: Path, **options: Any) -> hookline.Report:
        return hookline.run([str(source)], db=str(tmp_path / db), config=config,
                            pipeline=hookline.Pipeline.from_entry_points(config), **options)

    run("inline.db", first)
    inline = run("inline.db", second)
    run("process.db", first)
    process = run("process.db", second, executor="process", workers=2)
    # velocity counts a user's events across runs: the second run rejects more than a fresh
    # start would, in the workers as inline
    fresh = run("fresh.db", second)
    assert inline.stages["velocity.velocity"] > fresh.stages.get("velocity.velocity", 0)
    assert process.stages == inline.stages
    assert database_content(tmp_path / "process.db") == database_content(tmp_path / "inline.db")


def _write_half_then_die(writer: Any) -> None:
    import os

    os.write(writer.fileno(), _HEADER.pack(1 << 20) + b"only the start of it")
    os._exit(3)


def test_a_worker_dying_halfway_through_a_message_does_not_hang_the_parent() -> None:
    import multiprocessing
    import time

    # started as the executor starts its workers (fork only while this process has no
    # other thread: forking a threaded process is unsafe, and Python 3.12 warns about it)
    context = multiprocessing.get_context(_start_method())
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=_write_half_then_die, args=(writer,))
    process.start()
    writer.close()
    started = time.monotonic()
    assert _Channel(reader).get(process) is None  # dead, and nothing whole came
    assert time.monotonic() - started < 10
    process.join()
    assert _exit_status(process.exitcode) == "exit status 3"
    assert _exit_status(-9) == "killed by SIGKILL"


def test_a_script_without_the_main_guard_is_told_to_add_it(installed: Path,
                                                             tmp_path: Path) -> None:
    """A worker started by spawn (here: the script has another thread, so fork is not used)
    imports the main module again; an unguarded hookline.run() in it refuses to start a
    second run and says what to write, and the run ends with an error instead of waiting."""
    import subprocess

    source = tmp_path / "in.jsonl"
    write_jsonl(source, 50, seed=2)
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        import threading, time
        import hookline
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
        hookline.run([{str(source)!r}], db={str(tmp_path / "x.db")!r}, executor="process",
                     workers=2)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              p for p in sys.path if p)})
    assert done.returncode == 1, done.stderr
    assert 'Put the call under `if __name__ == "__main__":`' in done.stderr
    assert done.stderr.rstrip().splitlines()[-1].startswith("hookline.errors.ExecutorError")
