"""The ``hookline`` command line.

Exit codes (docs/cli.md): 0 success; 1 a command found problems (unknown flags, missing
inputs, a configuration error, a plugin's input source that failed); 2 usage errors; 3
``run`` dead-lettered more than ``--max-dead-letter-ratio``; 4 ``run`` stopped by a stage
whose error policy is fail-run; 5 a selected plugin failed to load, so nothing was run; 6 the
database cannot be used (read-only, corrupt); 7 ``run`` stopped on an alert (a monitoring
plugin's ``fail_on_alert``) after committing the batch it fired on; 130 the run was
interrupted (SIGINT or SIGTERM) after committing its current batch: run it again to resume.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from ._report import (  # a run stores its exit status: one definition, in the report
    EXIT_BROKEN_PLUGINS,
    EXIT_INTERRUPTED,
    EXIT_PROBLEM,
    EXIT_USAGE,
    ended_by,
)
from ._version import API_VERSION, __version__

__all__ = ["main"]

DEMO_EVENTS = 100_000



def _pipeline_or_exit_code(command: str, config: Any) -> Any:
    """The pipeline of the installed plugins ``config`` selects, or the exit code after saying
    why there is none: the pre-flight found a configuration error (EXIT_PROBLEM), or a
    selected plugin failed to load (EXIT_BROKEN_PLUGINS)."""
    from ._check import load_and_check
    from ._pipeline import Pipeline
    from .errors import BrokenPlugins, FlagError, PluginError

    try:
        plugins, findings = load_and_check(config)
        if not findings.report(f"hookline {command}"):
            return EXIT_PROBLEM
        return Pipeline.from_entry_points(config, plugins=plugins)
    except BrokenPlugins as exc:
        print(f"hookline {command}: refusing to start: {exc}", file=sys.stderr)
        return EXIT_BROKEN_PLUGINS
    except (PluginError, FlagError) as exc:
        print(f"hookline {command}: {exc}", file=sys.stderr)
        return EXIT_PROBLEM


def _cmd_run(args: argparse.Namespace) -> int:
    from ._generate import demo_input
    from ._runner import run
    from .config import from_arguments
    from .errors import (
        AlertFailed,
        DatabaseError,
        ExecutorError,
        PluginError,
        RunAborted,
        SourceError,
        UsageError,
    )
    from .sinks import mask_url

    config = from_arguments(args)  # HOOKLINE_* are read here, before any plugin import
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
    if args.executor == "dask":
        from ._executors.dask import MISSING, dask_installed

        if not dask_installed():
            print(f"hookline run: {MISSING}", file=sys.stderr)
            return EXIT_USAGE
    elif args.scheduler:
        print("hookline run: --scheduler is for --executor dask", file=sys.stderr)
        return EXIT_USAGE
    # before any input is read: a selected plugin that fails to load stops the run
    pipeline = _pipeline_or_exit_code("run", config)
    if isinstance(pipeline, int):
        return pipeline
    if args.demo:  # generated once per size and seed into the cache folder, then reused
        demo, stats = demo_input(args.demo_events, seed=args.seed)
        print(f"demo: generated {stats.total:,} events ({stats.invalid:,} invalid) in {demo}"
              if stats is not None else f"demo: {args.demo_events:,} events (seed "
              f"{args.seed}) from {demo}, generated before", file=sys.stderr)
        inputs.append(demo)
    stop = threading.Event()
    received: list[str] = []

    def request_stop(signum: int, frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        print(f"\nhookline: {received[-1]} received, finishing the current "
              "batch and committing…", file=sys.stderr)
        stop.set()

    # Only for the run: `main()` called from a program (or a test) gives its handlers back.
    before = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        report = run(inputs, db=args.db, config=config, pipeline=pipeline, stop=stop,
                     jsonl=args.jsonl, executor=args.executor, workers=args.workers,
                     scheduler=args.scheduler, duplicates=args.duplicates,
                     reprocess=args.reprocess, progress=args.progress,
                     progress_every=args.progress_every)
    # PluginError: a plugin's hookline_sinks offers something unusable; SourceError: a
    # plugin's source failed (what was read before is committed)
    except (FileNotFoundError, RunAborted, AlertFailed, ExecutorError, DatabaseError, UsageError,
            PluginError, SourceError) as exc:
        print(f"hookline run: {exc}", file=sys.stderr)
        return ended_by(exc)[1]  # as the report stores it
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    if args.format == "json":
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.format())
        if not report.nothing_new:
            print(f"  database: {mask_url(args.db)}")
    if args.metrics_file:
        with open(args.metrics_file, "w", encoding="utf-8") as handle:
            handle.write(report.prometheus(pipeline.stats))
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
    return report.exit_status  # as stored for `hookline runs`: 3 over the limit, else 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    from ._check import load_and_check
    from .config import from_arguments

    plugins, findings = load_and_check(from_arguments(args))
    findings.report("hookline plugins")  # listed whatever they are: exit 0
    plugins.describe()
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
        dist = "local" if record["origin"] == "local" else dist
        print(f"{record['name']:<16} {record['status']:<13} {dist:<28} "
              f"{record['path'] or record['module']}")
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
        if record["fields"]:
            print("    fields:")
        width = max((len(added["name"]) for added in record["fields"]), default=0)
        for added in record["fields"]:
            details = [added["constraints"], f"default {added['default']}" if added["default"]
                       else "", "optional" if added["optional"] else ""]
            print(f"      {added['name']:<{width}}  {added['type']:<9} "
                  f"{'; '.join(d for d in details if d) or '-'}  ({added['in']})")
    return 0


def _flag_assignments(items: Sequence[str]) -> dict[str, str]:
    assignments = {}
    for item in items:
        name, sep, value = item.partition("=")
        assignments[name.strip()] = value.strip() if sep else "on"
    return assignments


def _cmd_flags(args: argparse.Namespace) -> int:
    from ._pipeline import Pipeline
    from .config import from_arguments
    from .errors import FlagError

    config = from_arguments(args).with_(allow_broken_plugins=True, strict=False)
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
    from . import _history
    from ._replay import replay
    from .config import from_arguments
    from .errors import DatabaseError, UsageError
    from .sinks import mask_url, sink_class

    config = from_arguments(args)
    pipeline = _pipeline_or_exit_code("replay", config)
    if isinstance(pipeline, int):
        return pipeline
    try:
        if not sink_class(args.db, pipeline).exists(args.db):
            print(f"hookline replay: no database at {mask_url(args.db)}", file=sys.stderr)
            return EXIT_PROBLEM
        print(replay(args.db, pipeline, batch_size=config.batch_size,
                     where=_history.letter_filter(args), limit=args.limit or None,
                     duplicates=args.duplicates).format())
    except (DatabaseError, UsageError) as exc:
        print(f"hookline replay: {exc}", file=sys.stderr)
        return ended_by(exc)[1]
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from ._generate import write_jsonl

    target = sys.stdout if args.output in (None, "-") else args.output
    stats = write_jsonl(target, args.n, invalid_rate=args.invalid_rate, seed=args.seed,
                        attack_rate=args.attacks)
    if target is not sys.stdout:
        attacks = f", {stats.attacks:,} in attacks" if args.attacks else ""
        print(f"wrote {stats.total:,} events ({stats.invalid:,} invalid{attacks}) to "
              f"{args.output}", file=sys.stderr)
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


def build_parser(plugin_options: argparse.Namespace | None = None) -> argparse.ArgumentParser:
    """The parser of the ``hookline`` command: the core's commands, and with
    ``plugin_options`` (the global options of a command line, ``--config``,
    ``--plugins-dir``…) the commands of the plugins those options select too
    (:func:`_add_plugin_commands`)."""
    parser = argparse.ArgumentParser(
        prog="hookline", description="An extensible analytics event engine.")
    parser.add_argument("--version", action="version",
                        version=f"hookline {__version__} (plugin API {API_VERSION})")
    parser.add_argument("--config", help="config file (default: ./hookline.toml or "
                        "[tool.hookline] in ./pyproject.toml)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run JSONL events through the installed plugins")
    run.add_argument("inputs", nargs="*", metavar="INPUT",
                     help="JSONL files, globs, .gz files, - for stdin, or what a plugin's "
                     "source reads (a URL, a file suffix)")
    run.add_argument("--demo", action="store_true",
                     help=f"generate {DEMO_EVENTS:,} synthetic events and run them")
    run.add_argument("--demo-events", type=_positive, default=DEMO_EVENTS, help=argparse.SUPPRESS)
    run.add_argument("--seed", type=int, default=0, help="seed of --demo's events")
    run.add_argument("--db", default="hookline.db", metavar="URL",
                     help="where to write: a SQLite path or sqlite:///path (default "
                     "hookline.db), postgresql://user@host/dbname, or a plugin sink's URL")
    run.add_argument("--executor", choices=("inline", "process", "dask"), default="inline",
                     help="inline (default); process: worker processes partitioned by "
                     "user_id; dask: a Dask cluster (pip install \"hookline[dask]\")")
    run.add_argument("--workers", type=_positive, default=None,
                     help="worker processes for --executor process, or of the local Dask "
                     "cluster (default: CPU count)")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="--executor dask: the Dask scheduler to use, tcp://host:port (also "
                     "DASK_SCHEDULER_ADDRESS); without it, a local cluster of --workers "
                     "processes on 127.0.0.1")
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
    run.add_argument("--duplicates", choices=("count", "dead-letter"), default="count",
                     help="lines whose event_id is stored already: count them in the report "
                     "(default), or also store them in dead_letters with their payload")
    run.add_argument("--reprocess", action="store_true",
                     help="read the inputs again from their start, replacing their events: "
                     "what the database holds of them (events, dead letters, aggregates, "
                     "stage state) is deleted first; refused when it holds other inputs too")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="show progress: a bar on a terminal (the default there), else a "
                     "log line every --progress-every seconds; --no-progress: none")
    run.add_argument("--progress-every", type=float, default=10.0, metavar="SECONDS",
                     help="seconds between --progress log lines when not on a terminal "
                     "(default 10)")
    run.add_argument("--format", choices=("text", "json"), default="text",
                     help="the report as text (default) or the whole report as JSON")
    run.set_defaults(handler=_cmd_run)

    flags = commands.add_parser("flags", help="list declared feature flags and their values")
    flags.add_argument("--flag", action="append", metavar="NAME[=on|off|0.25]")
    flags.add_argument("--format", choices=("text", "json"), default="text")
    flags.set_defaults(handler=_cmd_flags)

    plugins = commands.add_parser("plugins", help="list installed plugins and their stages")
    plugins.add_argument("--format", choices=("text", "json"), default="text")
    plugins.set_defaults(handler=_cmd_plugins)

    from . import _history

    replay = commands.add_parser(
        "replay", help="re-run the dead letters of a database through the current plugins")
    replay.add_argument("--db", default="hookline.db", metavar="URL",
                        help="the database of the runs, as hookline run --db takes it "
                        "(default hookline.db)")
    _history.add_letter_filters(replay)
    replay.add_argument("--limit", type=_positive, default=0, metavar="N",
                        help="replay at most N dead letters, oldest first (default 0: all)")
    replay.add_argument("--duplicates", choices=("count", "dead-letter"), default="count",
                        help="a letter whose event is stored by now: delete it and count it "
                        "(default), or dead-letter it again")
    replay.set_defaults(handler=_cmd_replay)

    generate = commands.add_parser("generate", help="write synthetic JSONL events")
    generate.add_argument("-n", type=_positive, default=1000, help="number of events")
    generate.add_argument("--invalid-rate", type=_rate, default=0.05,
                          help="share of invalid lines (default 0.05)")
    generate.add_argument("--attacks", type=_rate, default=0.0, metavar="RATE",
                          help="share of lines replaced by injected fraud attacks, labeled in "
                          "properties.injected (default 0)")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("-o", "--output", help="file to write (default stdout)")
    generate.set_defaults(handler=_cmd_generate)

    from . import _check
    from . import _scaffold as scaffold

    _check.add_arguments(commands)
    scaffold.add_arguments(commands)
    _history.add_arguments(commands)
    if plugin_options is not None:
        _add_plugin_commands(commands, plugin_options)
    _add_common_options(parser)
    for command in commands.choices.values():
        _add_common_options(command, after_command=True)
    return parser


def _add_plugin_commands(commands: Any, options: argparse.Namespace) -> None:
    """Let the plugins ``options`` select add their subcommands (``hookline_commands``),
    one plugin at a time, each given the subparsers object ``commands``. No pipeline is built.
    A plugin that fails to load, raises, or would replace a command already there is named on
    stderr and its additions are taken back: the other commands work as before."""
    import inspect

    from ._discovery import installed
    from ._loader import load_entry_points
    from .config import from_arguments
    from .errors import HooklineError

    try:
        config = from_arguments(options)
    except HooklineError as exc:
        print(f"hookline: the plugins' commands are not loaded: {exc}", file=sys.stderr)
        return
    plugins = load_entry_points(installed(), config)
    for record in plugins.failed():
        print(f"hookline: plugin {record.label} failed to load, so its commands (if any) are "
              f"missing: {record.error}", file=sys.stderr)
    records = {record.name: record for record in plugins.records}
    for impl in plugins.impls("hookline_commands"):
        kept, listed = dict(commands.choices), len(commands._choices_actions)
        try:
            result = impl.function(**{name: commands for name in impl.argnames})
            if inspect.iscoroutine(result):  # an async def implementation
                import asyncio

                asyncio.run(result)
            replaced = sorted(name for name, parser in kept.items()
                              if commands.choices.get(name) is not parser)
            if replaced:
                raise ValueError(f"it replaces the command(s) {', '.join(replaced)}")
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: the plugin's failure, not the CLI's
            commands.choices.clear()
            commands.choices.update(kept)
            del commands._choices_actions[listed:]
            plugin = impl.plugin_name.partition(".")[0]
            label = records[plugin].label if plugin in records else plugin
            print(f"hookline: plugin {label} failed to add its commands: "
                  f"{_blamed(exc, impl.function)}", file=sys.stderr)


def _blamed(error: BaseException, function: Any) -> str:
    """``ValueError: message (at file:line)``: the last line of the plugin's own file the error
    went through (where argparse raised, the plugin's call to it); none when hookline's
    check raised it."""
    import traceback

    own = getattr(getattr(function, "__code__", None), "co_filename", None)
    mine = [frame for frame in traceback.extract_tb(error.__traceback__)
            if frame.filename == own]
    where = f" (at {mine[-1].filename}:{mine[-1].lineno})" if mine else ""
    return f"{type(error).__name__}: {error}{where}"


def _plugin_options(parser: argparse.ArgumentParser,
                    argv: Sequence[str]) -> argparse.Namespace | None:
    """The global options of ``argv`` when it may name a plugin's command (its command is not
    one of the core's, or it asks for help without a command), else None: a core command never
    imports the plugins to build its parser."""
    core = next(action.choices for action in parser._actions
                if isinstance(action, argparse._SubParsersAction))
    before = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    before.add_argument("--config")
    before.add_argument("-h", "--help", action="store_true")
    _add_common_options(before)
    before.add_argument("command", nargs="?")
    try:
        options, _ = before.parse_known_args(argv)
    except (argparse.ArgumentError, SystemExit):  # the full parser will say what is wrong
        return None
    if options.command in core or (options.command is None and not options.help):
        return None
    return options


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, not {text}")
    return value


def _add_common_options(parser: argparse.ArgumentParser, *, after_command: bool = False
                        ) -> None:
    """The options every command takes, before the command or after it: logging (to stderr;
    the report goes to stdout), hook tracing and the plugins folder. After the command, their
    defaults are left to the ones before it; an option a command defines itself is kept."""
    from ._logging import FORMATS, LEVELS

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if after_command else value

    options: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        (("-v", "--verbose"), {"action": "count", "default": default(0),
                               "help": "log more: -v DEBUG (the default level is INFO)"}),
        (("-q", "--quiet"), {"action": "count", "default": default(0),
                             "help": "log less: -q WARNING, -qq ERROR"}),
        (("--log-level",), {"type": str.upper, "choices": LEVELS, "default": default(None),
                            "help": "the level of the logs on stderr (wins over -v/-q)"}),
        (("--log-format",), {"choices": FORMATS, "default": default("text"),
                             "help": "logs as text lines (default) or one JSON object a line"}),
        (("--plugins-dir",), {"metavar": "DIR", "default": default(None),
                              "help": "also load each *.py file in DIR as a plugin named "
                              "after the file (also plugins_dir in the configuration)"}),
        (("--trace-hooks",), {"action": "store_true", "default": default(False),
                              "help": "log each hook implementation call: plugin, stage, "
                              "duration, outcome (also HOOKLINE_TRACE_HOOKS=1)"}),
        (("--trace-sample",), {"type": _at_least_one, "metavar": "N", "default": default(None),
                               "help": "with --trace-hooks, log one call in N of each "
                               "implementation (default 1: every call)"}),
    ]
    group = parser.add_argument_group("options of every command")
    for flags, settings in options:
        if not any(flag in parser._option_string_actions for flag in flags):
            group.add_argument(*flags, **settings)


def main(argv: Sequence[str] | None = None) -> int:
    from . import _logging

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    options = _plugin_options(parser, argv)
    if options is not None:
        parser = build_parser(plugin_options=options)
    args = parser.parse_args(argv)
    restore = _logging.configure(
        _logging.level_of(args.verbose, args.quiet, args.log_level), args.log_format)
    try:
        return _dispatch(args)
    finally:
        restore()


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command ``args`` names; the exit status of what it raised, if it did."""
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
