"""The Dask executor against inline and the process executor, in the same rounds.

Four measurements, each ``hookline run`` a whole fresh process (the Dask runs start their
``LocalCluster`` of 2 workers, as a user's run does: its start-up is in the figures):

1. Throughput with the three contrib plugins and a stage costing ~10 us per event: inline,
   ``--executor process --workers 2``, ``--executor dask --workers 2``, round-robin, medians.
   Targets: dask >= 1.5x inline and >= 0.85x the process executor.
2. The cheap pipeline (the contrib plugins only): dask's cost per event beside inline's
   (reported, no target: for cheap pipelines inline stays the default).
3. Peak RSS of the run's process (the client, with the LocalCluster's scheduler in it) and of
   its largest worker, sampled every 50 ms, on the first N/10 events and on those events ten
   times over (event ids renamed, timestamps moved on: the same users, ten times the events):
   each within 10 % (bounded batches in flight: memory does not grow with the input). The
   stateful stages keep state per user, inline as here, so the whole input (more users) is
   measured too and its growth reported beside.
4. The single committer on its own: batches processed beforehand, then only what the run
   loop does per batch in the committing process (the last duplicate check and the sink's
   commit) timed, in events per second: where a run on any number of workers saturates.
   Also the CPU the Dask run's process spent per event (reading, splitting, merging,
   committing), from the same sampling.

    python benchmarks/bench_dask.py [--events 1000000] [--quick]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    BURN_PLUGIN,
    CONTRIB_MODULES,
    check,
    finish,
    generate_events,
    missing,
    note,
    parse_run_args,
    repeated,
)

from hookline.testing import write_installed

CONTRIB = "fraud,ranking,monitoring"


def _hookline(*args: str) -> list[str]:
    return [sys.executable, "-m", "hookline.cli", "-q", "run", *args]


def _sampled(command: list[str], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """Run ``command``; its wall time, its peak RSS and that of its largest child (MiB), and
    the CPU seconds it and its children spent (from the last sample before it ended)."""
    import psutil

    for stale in cwd.glob("out.db*"):
        stale.unlink()
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    watched = psutil.Process(process.pid)
    client = worker = 0
    cpu: dict[int, float] = {}
    while process.poll() is None:
        try:
            client = max(client, watched.memory_info().rss)
            times = watched.cpu_times()
            cpu[process.pid] = times.user + times.system
            for child in watched.children(recursive=True):
                worker = max(worker, child.memory_info().rss)
                times = child.cpu_times()
                cpu[child.pid] = times.user + times.system
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - started
    _, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}: {err.decode()}")
    own = cpu.pop(process.pid, 0.0)
    return {"wall": wall, "client_mib": client / 2**20, "worker_mib": worker / 2**20,
            "client_cpu": own, "workers_cpu": sum(cpu.values())}


def _rounds(commands: dict[str, list[str]], cwd: Path, env: dict[str, str], repeats: int
            ) -> dict[str, list[dict[str, float]]]:
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            runs[name].append(_sampled(command, cwd, env))
    return runs


def _table(title: str, runs: dict[str, list[dict[str, float]]], events: int,
           reference: str) -> None:
    print(f"\n{title}")
    base = statistics.median(run["wall"] for run in runs[reference])
    for name, samples in runs.items():
        wall = statistics.median(run["wall"] for run in samples)
        client = statistics.median(run["client_cpu"] for run in samples)
        print(f"  {name:<28} {wall:8.2f} s  {events / wall:>9,.0f} events/s  "
              f"{wall / events * 1e6:6.2f} us/event  x{base / wall:5.2f} of {reference}  "
              f"(its own process: {client / events * 1e6:5.2f} us CPU/event)")


def _paired(runs: dict[str, list[dict[str, float]]], slower: str, faster: str) -> float:
    """The median of the per-round throughput ratios ``faster`` / ``slower``."""
    return statistics.median(s["wall"] / f["wall"] for s, f in zip(runs[slower], runs[faster]))


def _committer(source: Path, work: Path, env: dict[str, str]) -> float:
    """Events per second the committing process takes in: the batches of ``source`` are
    processed first (inline, contrib plugins), then only dedupe + the sink's commit, each
    batch with its checkpoint, are timed (in a process of its own, the plugins as selected)."""
    script = textwrap.dedent(f'''
        import time
        from hookline._batch import complete, dedupe, origin_of, process_batch
        from hookline._pipeline import Pipeline
        from hookline._sources import expand_inputs
        from hookline.config import load_config
        from hookline.sinks import Checkpoint, Rows, SinkBatch, sink_class

        config = load_config()
        pipeline = Pipeline.from_entry_points(config)
        [source] = expand_inputs([{str(source)!r}], pipeline)
        origin, rows = origin_of(pipeline), Rows(pipeline.event_class)
        batches = []
        for batch in source.batches(config.batch_size):
            result = complete(pipeline, process_batch(pipeline, batch, origin), rows)
            result.accepted = []
            batches.append((batch.end_offset, batch.end_line, result))
        sink_type = sink_class("commit.db", pipeline)
        sink = sink_type("commit.db", pipeline.event_class, run_id="bench")
        events = 0
        started = time.perf_counter()
        for offset, line, result in batches:
            dedupe(sink, result, pipeline)
            sink.commit(SinkBatch(result.rows, result.dead, Checkpoint(source.key, offset, line),
                                  result.state, aggregations=result.aggregations))
            events += len(result.rows) + len(result.dead) + result.dropped
        print("RATE", events / (time.perf_counter() - started))
    ''')
    for stale in work.glob("commit.db*"):
        stale.unlink()
    out = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.split("RATE")[-1])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_run_args(__doc__.partition("\n")[0], argv)
    events, repeats = args.events, args.runs
    absent = missing("distributed", *CONTRIB_MODULES, "psutil")
    if absent is not None:
        note(f"{absent} is not installed (pip install 'hookline[dask]' and the contrib "
             "plugins): the Dask benchmark cannot run")
        return finish(args, "dask", ("hookline", "dask", "distributed"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKLINE_", "DASK_"))}
    with tempfile.TemporaryDirectory(prefix="hookline-bench-") as folder:
        work = Path(folder)
        site = write_installed(work / "site", "burn", textwrap.dedent(BURN_PLUGIN))
        env.update(HOOKLINE_CACHE_DIR=str(work / "cache"), PYTHONPATH=str(site))
        generate_events(events, work, env)
        executors = {
            "inline": (),
            "process, 2 workers": ("--executor", "process", "--workers", "2"),
            "dask, LocalCluster of 2": ("--executor", "dask", "--workers", "2"),
        }
        burn = {**env, "HOOKLINE_PLUGINS": f"{CONTRIB},burn"}
        runs = _rounds({name: _hookline("in.jsonl", "--db", "out.db", *options)
                        for name, options in executors.items()}, work, burn, repeats)
        _table(f"{events:,} events, contrib plugins + a ~10 us stage", runs, events, "inline")
        check("dask (2 workers), x inline", _paired(runs, "inline", "dask, LocalCluster of 2"),
              ">=", 1.5)
        check("dask (2 workers), x process (2 workers)",
              _paired(runs, "process, 2 workers", "dask, LocalCluster of 2"), ">=", 0.85)

        cheap = {**env, "HOOKLINE_PLUGINS": CONTRIB}
        runs = _rounds({name: _hookline("in.jsonl", "--db", "out.db", *options)
                        for name, options in executors.items() if name != "process, 2 workers"},
                       work, cheap, repeats)
        _table(f"{events:,} events, the contrib plugins only (a cheap pipeline)", runs,
               events, "inline")
        inline = statistics.median(run["wall"] for run in runs["inline"]) / events * 1e6
        dask = statistics.median(run["wall"] for run in runs["dask, LocalCluster of 2"])
        note(f"cheap pipeline: dask {dask / events * 1e6:.2f} us/event, inline {inline:.2f} "
             "us/event (wall time of the whole command, the cluster's start included)")

        with open(work / "in.jsonl", "rb") as whole, open(work / "small.jsonl", "wb") as part:
            for _ in range(events // 10):
                part.write(whole.readline())
        repeated(work / "small.jsonl", work / "repeated.jsonl", 10)
        dask_options = executors["dask, LocalCluster of 2"]
        small, again, large = (
            _sampled(_hookline(name, "--db", "out.db", *dask_options), work, cheap)
            for name in ("small.jsonl", "repeated.jsonl", "in.jsonl"))
        print(f"\npeak RSS, dask (MiB), the run's process / its largest worker: first "
              f"{events // 10:,} lines {small['client_mib']:.1f} / {small['worker_mib']:.1f}; "
              f"them ten times over (same users) {again['client_mib']:.1f} / "
              f"{again['worker_mib']:.1f}; all {events:,} lines (more users, so more stage "
              f"state) {large['client_mib']:.1f} / {large['worker_mib']:.1f}")
        check("peak RSS of the run's process, ten times the events for the same users",
              again["client_mib"] / small["client_mib"], "<=", 1.10)
        check("peak RSS of the largest worker, ten times the events for the same users",
              again["worker_mib"] / small["worker_mib"], "<=", 1.10)
        note(f"with more users (all {events:,} lines): run x"
             f"{large['client_mib'] / small['client_mib']:.3f}, largest worker x"
             f"{large['worker_mib'] / small['worker_mib']:.3f} of the first "
             f"{events // 10:,} lines' (the stateful stages keep state per user, inline too)")

        rate = _committer(work / "in.jsonl", work, cheap)
        client = large["client_cpu"] / events * 1e6
        print(f"\nthe committer alone (dedupe + SQLite commit, contrib rows): {rate:,.0f} "
              f"events/s ({1e6 / rate:.2f} us/event); the dask run's own process spent "
              f"{client:.2f} us CPU/event in all (reading, splitting, merging, committing)")
        note(f"single committer: {rate:,.0f} events/s committed alone; a dask run's process "
             f"{client:.2f} us CPU/event, so at most ~{1e6 / client:,.0f} events/s however "
             "many workers")
    return finish(args, "dask", ("hookline", "dask", "distributed"))


if __name__ == "__main__":
    sys.exit(main())
