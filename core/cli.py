"""The ``hookline`` command line.

Exit codes (docs/cli.md): 0 success; 1 a command found problems (unknown flags, missing
inputs, a configuration error); 2 usage errors; 3 ``run`` dead-lettered more than
``--max-dead-letter-ratio``; 4 ``run`` stopped by a stage whose error policy is fail-run;
5 a selected plugin failed to load, so nothing was run; 6 the database cannot be used
(read-only, corrupt); 130 the run was interrupted (SIGINT or SIGTERM) after committing its
current batch: run it again to resume.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from typing import Any

from ._version import API_VERSION, __version__

__all__ = ["main"]

DEMO_EVENTS = 100_000

EXIT_PROBLEM, EXIT_USAGE, EXIT_DEAD_LETTERS, EXIT_ABORTED = 1, 2, 3, 4
EXIT_BROKEN_PLUGINS, EXIT_DATABASE, EXIT_INTERRUPTED = 5, 6, 130


def _pipeline_or_exit_code(command: str, config: Any) -> Any:
    """The pipeline of the installed plugins ``config`` selects, or the exit code after saying
    why there is none (a selected plugin that failed to load: EXIT_BROKEN_PLUGINS)."""
    from ._pipeline import Pipeline
    from .errors import BrokenPlugins, FlagError, PluginError

    try:
        return Pipeline.from_entry_points(config)
    except BrokenPlugins as exc:
        print(f"hookline {command}: refusing to start: {exc}", file=sys.stderr)
        return EXIT_BROKEN_PLUGINS
    except (PluginError, FlagError) as exc:
        print(f"hookline {command}: {exc}", file=sys.stderr)
        return EXIT_PROBLEM


def _cmd_run(args: argparse.Namespace) -> int:
    from ._generate import write_jsonl
    from ._runner import run
    from .config import load_config
    from .errors import (
        DatabaseError,
        ExecutorError,
        RunAborted,
    )

    config = load_config(args.config)  # HOOKLINE_* are read here, before any plugin import
    if args.allow_broken_plugins:
        config = config.with_(allow_broken_plugins=True)
    if args.strict:
        config = config.with_(strict=True)
    if args.flag:
        config = config.with_(cli_flags=_flag_assignments(args.flag))
    if args.batch_size:
        config = config.with_(batch_size=args.batch_size)
    if args.max_dead_letter_ratio is not None:
        config = config.with_(max_dead_letter_ratio=args.max_dead_letter_ratio)
    if args.profile:
        config = config.with_(sample_every=1)
    inputs = list(args.inputs)
    if not inputs and not args.demo:
        print("hookline run: give INPUT files (or - for stdin), or --demo", file=sys.stderr)
        return EXIT_USAGE
    # before any input is read: a selected plugin that fails to load stops the run
    pipeline = _pipeline_or_exit_code("run", config)
    if isinstance(pipeline, int):
        return pipeline
    if args.demo:
        demo = os.path.join(tempfile.mkdtemp(prefix="hookline-demo-"), "demo.jsonl")
        stats = write_jsonl(demo, args.demo_events, invalid_rate=0.05, seed=args.seed)
        print(f"demo: generated {stats.total:,} events ({stats.invalid:,} invalid) in {demo}",
              file=sys.stderr)
        inputs.append(demo)
    stop = threading.Event()
    received: list[str] = []

    def request_stop(signum: int, frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        print(f"\nhookline: {received[-1]} received, finishing the current "
              "batch and committing…", file=sys.stderr)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    try:
        report = run(inputs, db=args.db, config=config, pipeline=pipeline, stop=stop,
                     jsonl=args.jsonl, executor=args.executor, workers=args.workers)
    except FileNotFoundError as exc:
        print(f"hookline run: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    except RunAborted as exc:
        print(f"hookline run: {exc}", file=sys.stderr)
        return EXIT_ABORTED
    except ExecutorError as exc:
        print(f"hookline run: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    except DatabaseError as exc:
        print(f"hookline run: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    if args.format == "json":
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.format())
        print(f"  database: {args.db}")
    if args.metrics_file:
        with open(args.metrics_file, "w", encoding="utf-8") as handle:
            handle.write(pipeline.stats.prometheus())
            if "hookline.behaviors" in sys.modules:  # what timed() behaviours measured
                from .behaviors import DEFAULT_METRICS

                handle.write(DEFAULT_METRICS.prometheus_text(prefix="hookline_timed"))
    if args.profile:
        with open(args.profile, "w", encoding="utf-8") as handle:
            json.dump(report.stage_stats, handle, indent=2)
    if report.interrupted:
        print(f"hookline run: interrupted by {' then '.join(received) or 'a signal'}: "
              f"{report.read:,} events committed; run the same command again to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    limit = config.max_dead_letter_ratio
    if limit is not None and report.dead_letter_ratio > limit:
        print(f"hookline run: {report.dead_letter_ratio:.2%} of the events were dead-lettered, "
              f"over the limit of {limit:.2%}", file=sys.stderr)
        return EXIT_DEAD_LETTERS
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    from ._discovery import installed
    from ._loader import load_entry_points
    from .config import load_config

    plugins = load_entry_points(installed(), load_config(args.config))
    records = [record.as_dict() for record in plugins.records]
    if args.format == "json":
        print(json.dumps({"hookline": __version__, "api": API_VERSION, "plugins": records},
                         indent=2))
        return 0
    if not records:
        print("no hookline plugins installed (entry point group 'hookline.plugins')")
        return 0
    for record in records:
        dist = f"{record['distribution']} {record['version']}" if record["distribution"] else "-"
        print(f"{record['name']:<16} {record['status']:<13} {dist:<28} {record['module']}")
        if record["error"]:
            print(f"    error: {record['error']}")
        for stage in record["stages"]:
            flag = f"  [flag {stage['flag']}]" if stage["flag"] else ""
            print(f"    {stage['phase']:<9} #{stage['position']:<3} {stage['name']}{flag}")
            for behavior in stage["behaviors"]:
                print(f"              + {behavior['spec']}  (from {behavior['source']})")
        hooks = record["hooks"]
        if hooks:
            print(f"    hooks: {', '.join(hooks)}")
    return 0


def _flag_assignments(items: Sequence[str]) -> dict[str, str]:
    assignments = {}
    for item in items:
        name, sep, value = item.partition("=")
        assignments[name.strip()] = value.strip() if sep else "on"
    return assignments


def _cmd_flags(args: argparse.Namespace) -> int:
    from ._pipeline import Pipeline
    from .config import load_config
    from .errors import FlagError

    config = load_config(args.config).with_(allow_broken_plugins=True, strict=False)
    if args.flag:
        config = config.with_(cli_flags=_flag_assignments(args.flag))
    try:
        pipeline = Pipeline.from_entry_points(config)  # lists what loads; names what did not
        rows = pipeline.flags.describe()
    except FlagError as exc:
        print(f"hookline flags: {exc}", file=sys.stderr)
        return 1
    for record in pipeline.plugins.failed():
        print(f"hookline flags: plugin {record.label} failed to load, its flags are not "
              f"listed: {record.error}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no flags declared by the installed plugins")
    for row in rows:
        value = row["value"]
        shown = f"{value:.0%} of {row['key']}" if isinstance(value, float) else (
            "on" if value else "off")
        print(f"{row['name']:<28} {shown:<18} from {row['source']:<8} owner "
              f"{row['owner'] or '-'}  default {row['default']}")
        if row["description"]:
            print(f"    {row['description']}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from ._replay import replay
    from ._runner import database_errors
    from .config import load_config
    from .errors import DatabaseError

    if not os.path.isfile(args.db):
        print(f"hookline replay: no database at {args.db}", file=sys.stderr)
        return 1
    config = load_config(args.config)
    pipeline = _pipeline_or_exit_code("replay", config)
    if isinstance(pipeline, int):
        return pipeline
    try:
        with database_errors(args.db):
            print(replay(args.db, pipeline, batch_size=config.batch_size).format())
    except DatabaseError as exc:
        print(f"hookline replay: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from ._generate import write_jsonl

    target = sys.stdout if args.output in (None, "-") else args.output
    stats = write_jsonl(target, args.n, invalid_rate=args.invalid_rate, seed=args.seed)
    if target is not sys.stdout:
        print(f"wrote {stats.total:,} events ({stats.invalid:,} invalid) to {args.output}",
              file=sys.stderr)
    return 0


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookline", description="An extensible analytics event engine.")
    parser.add_argument("--version", action="version",
                        version=f"hookline {__version__} (plugin API {API_VERSION})")
    parser.add_argument("--config", help="config file (default: ./hookline.toml or "
                        "[tool.hookline] in ./pyproject.toml)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run JSONL events through the installed plugins")
    run.add_argument("inputs", nargs="*", metavar="INPUT",
                     help="JSONL files, globs, .gz files, or - for stdin")
    run.add_argument("--demo", action="store_true",
                     help=f"generate {DEMO_EVENTS:,} synthetic events and run them")
    run.add_argument("--demo-events", type=_positive, default=DEMO_EVENTS, help=argparse.SUPPRESS)
    run.add_argument("--seed", type=int, default=0, help="seed of --demo's events")
    run.add_argument("--db", default="hookline.db", help="SQLite database (default hookline.db)")
    run.add_argument("--executor", choices=("inline", "process"), default="inline",
                     help="inline (default), or process: worker processes partitioned by "
                     "user_id")
    run.add_argument("--workers", type=_positive, default=None,
                     help="worker processes for --executor process (default: CPU count)")
    run.add_argument("--jsonl", metavar="PATH",
                     help="also write the accepted events to this JSON-lines file")
    run.add_argument("--batch-size", type=_positive, default=0,
                     help="events per committed batch (default 5000)")
    run.add_argument("--allow-broken-plugins", action="store_true",
                     help="run without the selected plugins that fail to load instead of "
                     "refusing to start (also HOOKLINE_ALLOW_BROKEN_PLUGINS=1)")
    run.add_argument("--strict", action="store_true",
                     help="refuse to start when a plugin fails to load even where the "
                     "configuration allows broken plugins (also HOOKLINE_STRICT=1)")
    run.add_argument("--flag", action="append", metavar="NAME[=on|off|0.25]",
                     help="set a feature flag for this run (repeatable)")
    run.add_argument("--max-dead-letter-ratio", type=_rate, metavar="R",
                     help="exit with status 3 when more than this share is dead-lettered")
    run.add_argument("--metrics-file", metavar="PATH",
                     help="write per-stage metrics in the Prometheus text format")
    run.add_argument("--profile", metavar="PATH",
                     help="time every stage call (not one in 16) and write the profile as JSON")
    run.add_argument("--format", choices=("text", "json"), default="text")
    run.set_defaults(handler=_cmd_run)

    flags = commands.add_parser("flags", help="list declared feature flags and their values")
    flags.add_argument("--flag", action="append", metavar="NAME[=on|off|0.25]")
    flags.add_argument("--format", choices=("text", "json"), default="text")
    flags.set_defaults(handler=_cmd_flags)

    plugins = commands.add_parser("plugins", help="list installed plugins and their stages")
    plugins.add_argument("--format", choices=("text", "json"), default="text")
    plugins.set_defaults(handler=_cmd_plugins)

    replay = commands.add_parser(
        "replay", help="re-run the dead letters of a database through the current plugins")
    replay.add_argument("--db", default="hookline.db", help="SQLite database (default hookline.db)")
    replay.set_defaults(handler=_cmd_replay)

    generate = commands.add_parser("generate", help="write synthetic JSONL events")
    generate.add_argument("-n", type=_positive, default=1000, help="number of events")
    generate.add_argument("--invalid-rate", type=_rate, default=0.05,
                          help="share of invalid lines (default 0.05)")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("-o", "--output", help="file to write (default stdout)")
    generate.set_defaults(handler=_cmd_generate)

    from . import _check
    from . import _scaffold as scaffold

    _check.add_arguments(commands)
    scaffold.add_arguments(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except BrokenPipeError:  # `hookline generate | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:  # a real Ctrl-C while plugins load: nothing was run
        print("\nhookline: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        from .errors import ConfigError, SchemaError

        if isinstance(exc, ConfigError):
            print(f"hookline: configuration error: {exc}", file=sys.stderr)
            return 1
        if isinstance(exc, SchemaError):  # two plugins declaring one field differently…
            print(f"hookline: plugin schema conflict: {exc}", file=sys.stderr)
            return 1
        raise
    return code


if __name__ == "__main__":
    sys.exit(main())
