"""End to end: ``hookline run`` against a hand-written script doing the same work.

Four measurements, each run a whole fresh process, round-robin; ratios are paired (the
median over rounds of the ratio within a round), and each run's CPU time (user + system) is
taken beside its wall time, which a busy neighbour on a shared machine moves far more:

1. Throughput: N generated events (5 % invalid, 2 % in injected fraud attacks) through the
   three contrib plugins at their default settings (fraud, ranking, monitoring) into SQLite,
   against ``benchmarks/handwritten.py``, which does the same work and stores the same tables
   (its docstring lists what it does; ``tests/test_bench_handwritten.py`` checks that the
   two store the same events, dead letters, aggregates and per-user state).
   Target: hookline >= 0.8x its throughput (wall time; the CPU-time ratio is printed too).
2. Each plugin's share of hookline's per-event time: in the same rounds, ``hookline run``
   with one plugin deselected (``HOOKLINE_DISABLE_PLUGINS``); a plugin's share is the CPU
   time per event its absence saves, over the whole run's, paired round by round, each
   run's startup (the same command's CPU time on an empty input) taken off first.
3. Peak memory (max RSS) of ``hookline run`` on the first N/10 lines and on those lines ten
   times over (event ids renamed, timestamps moved past the velocity windows): the same
   users, ten times the events. The stateful stages keep state per user (velocity windows,
   refund balances, ranking histories), which grows with the users an input has, not with
   its length; with the same users in both inputs, any growth is memory held per event.
   Target: within 10 % (streaming). The hand-written script is measured on the same inputs,
   and both on the whole input (more users, so more state) for comparison.
4. The process executor, 2 workers, with a stage costing >= 5 us per event, against inline.
   Target: >= 1.6x inline's throughput.

With ``--baseline REV`` (a git revision of this repository), the throughput measurement also
runs the same command on hookline as it was at ``REV`` (its ``core/`` exported from git into a
temporary folder, found first on ``PYTHONPATH``), in the same rounds: a change to the core is
judged against the code before it, side by side. Target: within 3 % of the baseline.
The same rounds run ``hookline run`` with the stage time limit off (``HOOKLINE_STAGE_TIMEOUT=0``):
the watchdog that enforces it must cost next to nothing. Target: within 3 % of off.

    python benchmarks/bench_end_to_end.py [--events 1000000] [--quick] [--baseline REV]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    BURN_PLUGIN,
    CONTRIB_MODULES,
    check,
    finish,
    missing,
    note,
    parse_args,
    repeated,
)

from hookline.testing import write_installed

HANDWRITTEN = Path(__file__).resolve().parent / "handwritten.py"
PLUGINS = ("fraud", "ranking", "monitoring")
#: The share of the generated lines replaced by injected attacks (so the fraud rules refuse).
ATTACKS = "0.02"

def _baseline_tree(revision: str, folder: Path) -> Path:
    """A folder holding the import package ``hookline`` and the contrib plugins' packages as
    they were at git ``revision`` (the installed plugins' entry points then import these)."""
    repository = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(repository), "archive", revision, "core",
                              "contrib"], check=True, capture_output=True).stdout
    folder.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    (folder / "core").rename(folder / "hookline")
    for package in folder.glob("contrib/*/src/hookline_*"):
        package.rename(folder / package.name)
    return folder


RSS = "import resource, sys; print('RSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"


def _hookline(*args: str, env: dict[str, str] | None = None) -> list[str]:
    return [sys.executable, "-m", "hookline.cli", "run", *args]


def _timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """The wall time and the CPU time (user + system, its children's included) of one run of
    ``command``, in seconds."""
    for stale in cwd.glob("out.db*"):
        stale.unlink()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def _peak_rss_kib(command: list[str], cwd: Path, env: dict[str, str]) -> int:
    for stale in cwd.glob("out.db*"):
        stale.unlink()
    wrapper = (f"import subprocess; subprocess.run({command!r}, check=True, "
               f"stdout=subprocess.DEVNULL); {RSS}")
    out = subprocess.run([sys.executable, "-c", wrapper], cwd=cwd, env=env, check=True,
                         capture_output=True, text=True).stdout
    return int(out.split("RSS")[-1])


#: Seconds per command, one sample per round.
Times = dict[str, list[float]]


def _rounds(commands: dict[str, list[str]], cwd: Path, env: dict[str, str],
            repeats: int) -> tuple[Times, Times]:
    """The wall times and the CPU times of ``commands``, run round-robin ``repeats`` times."""
    wall: Times = {name: [] for name in commands}
    cpu: Times = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            seconds, used = _timed(command, cwd, env)
            wall[name].append(seconds)
            cpu[name].append(used)
    return wall, cpu


def _paired(times: Times, name: str, reference: str) -> float:
    """The median over rounds of the reference's time over ``name``'s: ``name``'s
    throughput as a multiple of the reference's."""
    return statistics.median(r / t for r, t in zip(times[reference], times[name]))


def _table(title: str, times: Times, cpu: Times, events: int, reference: str) -> None:
    print(f"\n{title} (medians; x: paired throughput ratio to {reference})")
    print(f"  {'':<34} {'wall':>8}  {'events/s':>10}  {'x':>5}  {'CPU':>8}  {'x':>5}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:<34} {median:7.2f}s  {events / median:>10,.0f}  "
              f"{_paired(times, name, reference):5.2f}  {statistics.median(cpu[name]):7.2f}s  "
              f"{_paired(cpu, name, reference):5.2f}")


def _hand_written(source: str) -> list[str]:
    return [sys.executable, str(HANDWRITTEN), source, "out.db"]


def _shares(cpu: Times, startup: Times, events: int) -> None:
    """Each plugin's share of hookline's per-event time: the CPU time per event a run without
    it saves, over the whole run's, paired round by round. A run's per-event time is its CPU
    time less the median of the same command's on an empty input (``startup``: imports,
    loading, run start), over ``events``. CPU time, not wall time: on a shared machine a
    neighbour's burst moves one run's wall time by more than a plugin costs."""
    base = {name: statistics.median(samples) for name, samples in startup.items()}
    per_event = {name: [(used - base[name]) / events for used in samples]
                 for name, samples in cpu.items() if name in base}
    whole_name = "hookline run (3 contrib plugins)"
    whole = per_event[whole_name]
    print(f"\neach plugin's share of hookline's per-event time: CPU time per event saved by a "
          f"run without it, same rounds (whole run {statistics.median(whole) * 1e6:.2f} "
          f"us/event, after {base[whole_name]:.2f} s of startup)")
    for plugin in PLUGINS:
        name = f"hookline run without {plugin}"
        saved = [w - o for w, o in zip(whole, per_event[name])]
        share = statistics.median(s / w for s, w in zip(saved, whole))
        micro = statistics.median(saved) * 1e6
        fixed = (base[whole_name] - base[name]) * 1000
        print(f"  {plugin:<12} {micro:6.2f} us/event  {share:6.1%} of the per-event time;  "
              f"startup {fixed:+5.0f} ms")
        note(f"{plugin}: {micro:.2f} us/event, {share:.1%} of hookline's per-event CPU time; "
             f"startup {fixed:+.0f} ms")


def main(argv: Sequence[str] | None = None) -> int:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--events", type=int, default=None)
    extra.add_argument("--baseline", metavar="REV",
                       help="also time hookline as it was at this git revision, same rounds")
    known, rest = extra.parse_known_args(argv)
    args = parse_args(__doc__.partition("\n")[0], rest)
    events = known.events or (100_000 if args.quick else 1_000_000)
    repeats = 1 if args.quick else 3
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="hookline-bench-") as folder:
        work = Path(folder)
        env["HOOKLINE_CACHE_DIR"] = str(work / "cache")
        subprocess.run([sys.executable, "-m", "hookline.cli", "generate", "-n", str(events),
                        "--attacks", ATTACKS, "-o", "in.jsonl"], cwd=work, env=env,
                       check=True, stderr=subprocess.DEVNULL)
        if missing(*CONTRIB_MODULES) is not None:
            note("the contrib plugins are not installed: end-to-end comparison skipped")
        else:
            _against_hand_written(work, env, events, repeats, known.baseline)

        site = write_installed(work / "site", "burn", textwrap.dedent(BURN_PLUGIN))
        burn_env = {**env, "PYTHONPATH": str(site), "HOOKLINE_PLUGINS": "burn"}
        times, cpu = _rounds({
            "inline": _hookline("in.jsonl", "--db", "out.db"),
            "process, 2 workers": _hookline("in.jsonl", "--db", "out.db", "--executor",
                                            "process", "--workers", "2"),
        }, work, burn_env, repeats)
        _table("process executor, a ~10 us stage", times, cpu, events, "inline")
        check("process executor (2 workers), x inline",
              _paired(times, "process, 2 workers", "inline"), ">=", 1.6)
    return finish(args, "end_to_end", ("hookline",))


def _against_hand_written(work: Path, env: dict[str, str], events: int, repeats: int,
                          baseline: str | None) -> None:
    """Measurements 1 to 3 of the module docstring."""
    hookline = _hookline("in.jsonl", "--db", "out.db")
    commands = {
        "hand-written script": _hand_written("in.jsonl"),
        "hookline run (3 contrib plugins)": hookline,
        "hookline run, stage time limit off": ["env", "HOOKLINE_STAGE_TIMEOUT=0", *hookline],
        **{f"hookline run without {plugin}": ["env", f"HOOKLINE_DISABLE_PLUGINS={plugin}",
                                              *hookline] for plugin in PLUGINS},
    }
    if baseline:
        tree = _baseline_tree(baseline, work / "baseline")
        # A shell line so that only this command sees the older package first.
        commands[f"hookline at {baseline}"] = [
            "env", f"PYTHONPATH={tree}", f"HOOKLINE_CACHE_DIR={work / 'cache-base'}",
            *hookline]
    times, cpu = _rounds(commands, work, env, repeats)
    _table(f"{events:,} events into SQLite", times, cpu, events, "hand-written script")
    hookline_run = "hookline run (3 contrib plugins)"
    check("hookline throughput, x hand-written",
          _paired(times, hookline_run, "hand-written script"), ">=", 0.8)
    note(f"by CPU time: hookline x{_paired(cpu, hookline_run, 'hand-written script'):.3f} "
         "of the hand-written script")
    check("hookline throughput with the stage time limit, x without",
          _paired(times, hookline_run, "hookline run, stage time limit off"), ">=", 0.97)
    if baseline:
        check(f"hookline throughput, x hookline at {baseline}",
              _paired(times, hookline_run, f"hookline at {baseline}"), ">=", 0.97)
    empty = work / "empty.jsonl"
    empty.touch()
    _, startup = _rounds({name: [empty.name if part == "in.jsonl" else part for part in command]
                          for name, command in commands.items() if name.startswith("hookline")},
                         work, env, repeats)
    _shares(cpu, startup, events)

    # The small input is the whole one's first tenth; "ten times over" is that tenth ten
    # times, with the same users; the whole input has the users of all its lines.
    with open(work / "in.jsonl", "rb") as source, open(work / "small.jsonl", "wb") as part:
        for _ in range(events // 10):
            part.write(source.readline())
    repeated(work / "small.jsonl", work / "repeated.jsonl", 10)
    inputs = ("small.jsonl", "repeated.jsonl", "in.jsonl")
    programs: dict[str, Callable[[str], list[str]]] = {
        "hookline run": lambda name: _hookline(name, "--db", "out.db"),
        "hand-written script": _hand_written,
    }
    print(f"\npeak RSS (MiB) on the first {events // 10:,} lines, on them ten times over "
          f"(same users), on all {events:,} lines (more users)")
    growth = {}
    for program, command in programs.items():
        small, again, whole = (_peak_rss_kib(command(name), work, env) / 1024
                               for name in inputs)
        growth[program] = again / small
        print(f"  {program:<20} {small:6.1f}  {again:6.1f} (x{again / small:.3f})  "
              f"{whole:6.1f} (x{whole / small:.3f})")
    check("peak RSS, ten times the events for the same users, x once",
          growth["hookline run"], "<=", 1.10)


if __name__ == "__main__":
    sys.exit(main())
