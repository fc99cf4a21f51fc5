"""Run hookline's benchmarks: every ``benchmarks/bench_*.py``, one after the other.

Each benchmark module exposes ``main(argv) -> int`` (0 when all its targets are met) and
accepts ``--quick`` and ``--json PATH``. Targets are reported, not asserted: this exits 0
even when a target is missed, unless ``--strict``; it exits 2 when a benchmark crashes.

    python benchmarks/run.py                    # everything, full length
    python benchmarks/run.py --quick            # smoke mode: few, short rounds
    python benchmarks/run.py --only schema --json results.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness

HERE = Path(__file__).resolve().parent

PACKAGES = ("hookline", "pluggy", "stevedore", "pydantic", "attrs", "msgspec",
            "hookline-monitoring", "psycopg", "dask", "distributed")


def available() -> list[str]:
    """The benchmark names (``schema`` for ``bench_schema.py``), sorted."""
    return sorted(path.stem.removeprefix("bench_") for path in HERE.glob("bench_*.py"))


def run_one(name: str, argv: list[str], json_path: Path) -> tuple[str, Any]:
    """Run one benchmark; its outcome (``met``, ``missed`` or ``crashed``) and its JSON."""
    command = " ".join([f"benchmarks/bench_{name}.py", *argv])
    print(f"\n{'=' * 100}\n{name}  ({command})\n{'=' * 100}", flush=True)
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"bench_{name}")
        code = module.main([*argv, "--json", str(json_path)])
    except (Exception, SystemExit):  # argparse exits on a bad option: a crash too
        traceback.print_exc()
        outcome = "crashed"
    else:
        outcome = "met" if code == 0 else "missed"
    print(f"[{name}: {outcome}, {time.perf_counter() - start:.0f} s]", flush=True)
    data = None
    if json_path.exists():
        data = json.loads(json_path.read_text())
    return outcome, data


def main(argv: Sequence[str] | None = None) -> int:
    names = available()
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode, rough figures")
    parser.add_argument("--only", action="append", choices=names, metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(names)}")
    parser.add_argument("--json", type=Path, help="write every benchmark's results here")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a target is missed (default: report only)")
    args = parser.parse_args(argv)

    selected = args.only or names
    env = _harness.environment(PACKAGES)
    print(f"hookline benchmarks {', '.join(selected)}: Python {env['python']} "
          f"({env['implementation']}), {env['platform']}, {env['cpus']} CPUs, {env['date']}")
    print("  " + ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v))
    outcomes: dict[str, str] = {}
    collected: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hookline-bench-") as tmp:
        for name in selected:
            json_path = Path(tmp) / f"{name}.json"  # read back for the summary
            outcomes[name], collected[name] = run_one(
                name, ["--quick"] if args.quick else [], json_path)

    print(f"\n{'=' * 100}\nSummary" + (" (--quick: rough figures)" if args.quick else ""))
    for name, outcome in outcomes.items():
        text = {"met": "all targets met", "missed": "TARGET(S) MISSED",
                "crashed": "CRASHED"}[outcome]
        print(f"  {name:<12} {text}")
        for entry in (collected.get(name) or {}).get("checks", []):
            print(f"      {'PASS' if entry['passed'] else 'FAIL'}  {entry['label']}: "
                  f"{entry['value']:.3f} (target {entry['op']} {entry['target']:g})")
    if args.json:
        args.json.write_text(json.dumps(
            {"environment": env, "quick": args.quick, "outcomes": outcomes,
             "benchmarks": collected}, indent=1) + "\n")
        print(f"results written to {args.json}")
    if "crashed" in outcomes.values():
        return 2
    if args.strict and "missed" in outcomes.values():
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
