"""A small benchmark harness: peers side by side in one process, medians, ratios.

The rules it enforces (DESIGN.md, "Performance targets"): every peer is measured in the same
run, interleaved round-robin so that a noisy neighbour on the shared machine hits all of them
alike; each sample is one calibrated batch timed with ``time.perf_counter_ns`` with the
garbage collector off; what is reported is the median ns/op and the ratio to a named
reference. Ratios are the targets; absolute times vary from machine to machine.

A benchmark module uses it like this::

    args = parse_args("what this benchmark measures", argv)
    results = compare("event from a dict", [
        Case("plain", lambda: Plain(**data)),                 # one op per call
        Case.inline("hookline", "E.from_dict(d)", {"E": E, "d": data}),  # no call overhead
    ], reference="plain", repeats=args.repeats, min_time=args.min_time)
    check("hookline valid, x plain", results.ratio("hookline"), "<=", 2.5)
    return finish(args, "schema")

Ratios are paired: for every round the case's time is divided by the reference's time in the
same round, and the median of those per-round ratios is reported. Both were measured moments
apart, so a slow stretch of the machine cancels out instead of skewing one of them.

No dependencies beyond the standard library.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import itertools
import json
import operator
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Case",
    "Results",
    "check",
    "compare",
    "environment",
    "finish",
    "generate_events",
    "note",
    "parse_args",
    "parse_run_args",
    "recorded",
    "reset",
    "write_json",
]

#: A batch function runs ``loops`` iterations; ``Case.per`` says how many ops one iteration is.
BatchFunction = Callable[[int], object]

#: Above this interquartile range (a fraction of the median) a case's figures are flagged.
NOISY = 0.25

#: Default number of rounds, and the minimum duration of one timed batch, in seconds.
REPEATS, MIN_TIME = 21, 0.02
QUICK_REPEATS, QUICK_MIN_TIME = 5, 0.005

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
}


# --------------------------------------------------------------------------------------------
# Cases



#: The contrib plugins the end-to-end, PostgreSQL and Dask benchmarks run with.
CONTRIB_MODULES = ("hookline_fraud", "hookline_monitoring", "hookline_ranking")


def missing(*modules: str) -> str | None:
    """The first of ``modules`` that cannot be imported (a benchmark then says so and skips
    its measurement), or None."""
    for name in modules:
        if importlib.util.find_spec(name) is None:
            return name
    return None


def _compile_loop(body: Sequence[str], namespace: Mapping[str, Any], label: str) -> BatchFunction:
    """``def batch(loops): for _ in repeat(None, loops): <body>`` compiled with ``namespace``.

    Like :mod:`timeit`, the statement is inlined in the loop: no Python call per op other
    than the ones the statement itself makes, and the loop costs a few ns per iteration.
    """
    lines = ["def batch(loops):", "    for _ in _repeat(None, loops):"]
    lines += [f"        {line}" for line in body]
    scope: dict[str, Any] = {**namespace, "_repeat": itertools.repeat}
    exec(compile("\n".join(lines) + "\n", f"<bench {label}>", "exec"), scope)
    function: BatchFunction = scope["batch"]
    return function


@dataclass(frozen=True)
class Case:
    """One thing to time.

    ``fn`` is a zero-argument callable doing one op or, with ``batch=True``, a function
    ``fn(loops)`` running ``loops`` iterations of ``per`` ops each. Use :meth:`inline` for
    a statement timed without a function call around it.
    """

    name: str
    fn: Callable[..., object]
    batch: bool = False
    per: int = 1
    note: str = ""

    @classmethod
    def inline(cls, name: str, stmt: str, namespace: Mapping[str, Any], *, unroll: int = 1,
               note: str = "") -> Case:
        """A case timing ``stmt`` (one op, may span lines) inlined ``unroll`` times per loop.

        Unrolling makes the loop's own cost negligible for ops of a few ns (attribute reads).
        """
        body = stmt.strip("\n").splitlines() * unroll
        return cls(name, _compile_loop(body, namespace, name), batch=True, per=unroll, note=note)

    def batch_function(self) -> BatchFunction:
        """The case as a batch function (a loop of calls for a one-op callable)."""
        if self.batch:
            return self.fn
        return _compile_loop(["fn()"], {"fn": self.fn}, self.name)


def _time_batch(function: BatchFunction, loops: int) -> int:
    """Nanoseconds for one call of ``function(loops)``, with the garbage collector off."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        function(loops)
        return time.perf_counter_ns() - start
    finally:
        if enabled:
            gc.enable()


def _calibrate(function: BatchFunction, min_time: float) -> int:
    """The number of loops for which one batch takes at least ``min_time`` seconds."""
    target = min_time * 1e9
    loops = 1
    while True:
        elapsed = _time_batch(function, loops)
        if elapsed >= target:
            return loops
        if elapsed < target / 100:
            loops *= 10
        else:  # close: scale to the target, with 20 % to spare
            loops = max(loops + 1, int(loops * target * 1.2 / max(elapsed, 1)))


# --------------------------------------------------------------------------------------------
# Results


def _fmt_ns(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}"


def _spread(values: Sequence[float]) -> float:
    """The interquartile range as a fraction of the median (0.05 is ±5 % of noise)."""
    if len(values) < 4:
        return (max(values) - min(values)) / statistics.median(values)
    q1, _, q3 = statistics.quantiles(values, n=4)
    return (q3 - q1) / statistics.median(values)


@dataclass
class Results:
    """The samples of one comparison: ns/op of every case in every round."""

    title: str
    reference: str
    samples: dict[str, list[float]]
    loops: dict[str, int]
    notes: dict[str, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)

    def median(self, name: str) -> float:
        """The median ns/op of a case."""
        return statistics.median(self.samples[name])

    def ratio(self, name: str, reference: str | None = None) -> float:
        """The median over rounds of ``name``'s time divided by ``reference``'s (paired)."""
        ref = self.samples[reference or self.reference]
        return statistics.median(a / b for a, b in zip(self.samples[name], ref))

    def paired(self, formula: Callable[[Mapping[str, float]], float]) -> float:
        """The median over rounds of ``formula({case: ns/op in that round})``.

        For derived figures, e.g. a wrapper's added cost relative to the direct loop:
        ``results.paired(lambda s: (s["with"] - s["without"]) / s["direct"])``.
        """
        rounds = len(next(iter(self.samples.values())))
        return statistics.median(
            formula({name: values[i] for name, values in self.samples.items()})
            for i in range(rounds)
        )

    def table(self) -> str:
        """The aligned table: case, median ns/op, noise, ratio to the reference, extras."""
        width = max(len(name) for name in self.samples)
        heads = [f"x {self.reference}", *self.columns]
        lines = [f"{'case':<{width}}  {'ns/op':>9}  {'±IQR':>5}  "
                 + "  ".join(f"{head:>{max(len(head), 7)}}" for head in heads)]
        for name in self.samples:
            cells = [f"{self.ratio(name):.2f}x"]
            cells += [f"{self.ratio(name, ref):.2f}x" for ref in self.columns.values()]
            row = (f"{name:<{width}}  {_fmt_ns(self.median(name)):>9}  "
                   f"{_spread(self.samples[name]) * 100:>4.0f}%  "
                   + "  ".join(f"{cell:>{max(len(head), 7)}}" for cell, head in zip(cells, heads)))
            lines.append(row.rstrip())
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "reference": self.reference,
            "cases": {
                name: {
                    "median_ns": self.median(name),
                    "ratio": self.ratio(name),
                    **{f"ratio_{label}": self.ratio(name, ref)
                       for label, ref in self.columns.items()},
                    "iqr_fraction": _spread(values),
                    "loops": self.loops[name],
                    "samples_ns": values,
                    **({"note": self.notes[name]} if name in self.notes else {}),
                }
                for name, values in self.samples.items()
            },
        }


# --------------------------------------------------------------------------------------------
# What a run records, for --json

_RECORD: dict[str, list[dict[str, Any]]] = {"results": [], "checks": [], "notes": []}


def reset() -> None:
    """Forget what was recorded (each benchmark's ``main`` starts with this)."""
    for entries in _RECORD.values():
        entries.clear()


def recorded() -> dict[str, list[dict[str, Any]]]:
    """Every comparison, check and note recorded since the last :func:`reset`."""
    return {key: list(entries) for key, entries in _RECORD.items()}


def compare(
    title: str,
    cases: Sequence[Case],
    *,
    reference: str,
    repeats: int = REPEATS,
    min_time: float = MIN_TIME,
    columns: Mapping[str, str] | None = None,
    show: bool = True,
) -> Results:
    """Time ``cases`` side by side and print the table.

    Every case is calibrated to ``min_time`` seconds per batch, then measured ``repeats``
    rounds; each round runs every case once, the order rotated by one each round.
    ``columns`` adds ratio columns: ``{"x pydantic": "pydantic v2"}``.
    """
    names = [case.name for case in cases]
    if reference not in names:
        raise ValueError(f"reference {reference!r} is not one of the cases {names}")
    if len(set(names)) != len(names):
        raise ValueError(f"case names must be unique: {names}")
    functions = [case.batch_function() for case in cases]
    gc.collect()
    loops = [_calibrate(function, min_time) for function in functions]
    samples: dict[str, list[float]] = {name: [] for name in names}
    order = list(range(len(cases)))
    for round_no in range(repeats):
        shift = round_no % len(order)
        for index in order[shift:] + order[:shift]:
            elapsed = _time_batch(functions[index], loops[index])
            samples[names[index]].append(elapsed / (loops[index] * cases[index].per))
    results = Results(
        title, reference, samples,
        loops={case.name: n * case.per for case, n in zip(cases, loops)},
        notes={case.name: case.note for case in cases if case.note},
        columns=dict(columns or {}),
    )
    _RECORD["results"].append(results.as_dict())
    if show:
        print(f"\n{title}  (median of {repeats} interleaved rounds)")
        print(results.table())
        for case in cases:
            if case.note:
                print(f"  {case.name}: {case.note}")
    noisy = [name for name, values in samples.items() if _spread(values) > NOISY]
    if noisy:
        which = "every case" if len(noisy) == len(names) else ", ".join(noisy)
        note(f"noisy: IQR > {NOISY:.0%} of the median for {which}; the machine was busy "
             "(ratios are paired per round, but rerun to confirm them)")
    return results


def check(label: str, value: float, op: str, target: float, *, unit: str = "x") -> bool:
    """Print ``PASS``/``FAIL`` for one target (``value op target``) and record it."""
    ok = bool(_OPS[op](value, target))
    print(f"  {'PASS' if ok else 'FAIL'}  {label}: {value:.3f}{unit} (target {op} {target:g}"
          f"{unit})")
    _RECORD["checks"].append(
        {"label": label, "value": value, "op": op, "target": target, "passed": ok}
    )
    return ok


def note(text: str) -> None:
    """Print and record a remark (a peer skipped because it is not installed, ...)."""
    print(f"  note: {text}")
    _RECORD["notes"].append({"note": text})


# --------------------------------------------------------------------------------------------
# Command line


def environment(packages: Sequence[str] = ()) -> dict[str, Any]:
    """Where the figures were measured: date, Python, machine, versions of ``packages``."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "packages": versions,
    }


def parse_args(description: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """The options every benchmark takes: ``--quick``, ``--repeats``, ``--min-time``,
    ``--json``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke mode: {QUICK_REPEATS} rounds of {QUICK_MIN_TIME * 1000:g} ms"
                        " batches (figures are rough)")
    parser.add_argument("--repeats", type=int, help=f"rounds (default {REPEATS})")
    parser.add_argument("--min-time", type=float,
                        help=f"seconds per timed batch (default {MIN_TIME})")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = QUICK_REPEATS if args.quick else REPEATS
    if args.min_time is None:
        args.min_time = QUICK_MIN_TIME if args.quick else MIN_TIME
    reset()
    return args


def parse_run_args(description: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """:func:`parse_args`, and ``--events N``, for a benchmark that times whole ``hookline
    run`` processes: ``args.events`` (default 100,000 with ``--quick``, else 1,000,000), and
    ``args.runs``, how often each command is timed (1 with ``--quick``, else 3: one run takes
    seconds, far longer than a calibrated batch)."""
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--events", type=int, default=None)
    known, rest = extra.parse_known_args(argv)
    args = parse_args(description, rest)
    args.events = known.events or (100_000 if args.quick else 1_000_000)
    args.runs = 1 if args.quick else 3
    return args


def generate_events(events: int, cwd: Path, env: Mapping[str, str]) -> None:
    """Write ``events`` generated events to ``cwd/in.jsonl`` (``hookline generate``, in a
    process of its own: the benchmark's process stays as it was)."""
    subprocess.run([sys.executable, "-m", "hookline.cli", "generate", "-n", str(events),
                    "-o", "in.jsonl"], cwd=cwd, env=dict(env), check=True,
                   stderr=subprocess.DEVNULL)


#: A timestamp in epoch milliseconds as the generator writes it (not a float, not negative).
_TS = re.compile(rb'"ts":(\d+)(?=[,}])')
#: Far enough past the longest velocity window and its tolerance (1 h + 60 s by default).
_GAP_MS = 2 * 3_600_000


def repeated(small: Path, target: Path, copies: int) -> None:
    """Write ``small`` ``copies`` times over into ``target``: each copy's event ids renamed
    (``r3-evt-...``), its timestamps moved past the previous copy's last one by more than the
    velocity windows. Every copy has the same users, so each user's state ends the same size
    as after one copy: an input ten times as long with no more state."""
    data = small.read_bytes()
    stamps = [int(found) for found in _TS.findall(data)]
    span = max(stamps) - min(stamps) + _GAP_MS
    with open(target, "wb") as out:
        for copy in range(copies):
            shift = copy * span
            text = _TS.sub(_shifted(shift), data)
            out.write(text.replace(b'"event_id":"', b'"event_id":"r%d-' % copy))


def _shifted(shift: int) -> Callable[[re.Match[bytes]], bytes]:
    def replace(found: re.Match[bytes]) -> bytes:
        return b'"ts":%d' % (int(found[1]) + shift)

    return replace


def write_json(path: Path, name: str, packages: Sequence[str] = ()) -> None:
    """Write what was recorded, with the :func:`environment`, to ``path``."""
    data = {"benchmark": name, "environment": environment(packages), **recorded()}
    path.write_text(json.dumps(data, indent=1) + "\n")


def finish(args: argparse.Namespace, name: str, packages: Sequence[str] = ()) -> int:
    """Write ``--json`` if asked; 0 when every check passed, 1 otherwise."""
    if args.json is not None:
        write_json(args.json, name, packages)
    checks = _RECORD["checks"]
    failed = [entry for entry in checks if not entry["passed"]]
    print(f"\n{name}: {len(checks) - len(failed)}/{len(checks)} targets met")
    return 1 if failed else 0


#: A plugin whose one stage costs about 10 µs per event, for the executor benchmarks.
BURN_PLUGIN = '''
import hashlib
import hookline

class Burn(hookline.Stage, phase="enrich", name="burn"):
    """Costs about 10 us per event: a stand-in for a real lookup or model."""

    def process(self, event):
        digest = event.user_id.encode()
        for _ in range(12):
            digest = hashlib.sha256(digest).digest()
'''
