"""``hookline check``, and the pre-flight every command that runs events does first.

The plugins are loaded as a run loads them; the loader verifies each against the stage
contract and refuses a violating one, recording its violations with the plugin's
distribution and version and the file and line to fix. The pre-flight (:func:`preflight`)
then checks the configuration against what is installed: names that match nothing are
mistakes that would otherwise do nothing at all (a ``[behaviors]`` pattern no stage matches,
a flag no plugin declares, a ``[settings.NAME]`` for no plugin). Each is an error naming the
closest valid name. An entry point in a group spelt like hookline's but not hookline's is a
warning: hookline never loads it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from ._suggest import did_you_mean

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterable

    from ._loader import PluginRecord, PluginSet
    from .config import Config
    from .contracts import Violation

__all__ = ["Findings", "add_arguments", "cmd_check", "load_and_check", "preflight"]


@dataclass
class Findings:
    """What the pre-flight found: errors stop a run before it reads any input; warnings are
    printed and the run goes on."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def report(self, prefix: str, stream: TextIO | None = None) -> bool:
        """Print every warning and error after ``prefix`` (``hookline run``); whether there
        is no error."""
        stream = stream if stream is not None else sys.stderr
        for warning in self.warnings:
            print(f"{prefix}: warning: {warning}", file=stream)
        for error in self.errors:
            print(f"{prefix}: error: {error}", file=stream)
        if self.errors:
            count = len(self.errors)
            print(f"{prefix}: refusing to start: {count} configuration error"
                  f"{'s' if count != 1 else ''} (nothing was read or written)", file=stream)
        return not self.errors


def load_and_check(config: Config) -> tuple[PluginSet, Findings]:
    """The installed plugins (and those of ``plugins_dir``) as ``config`` selects them,
    loaded, and what :func:`preflight` finds."""
    from ._discovery import installed
    from ._loader import load_entry_points

    plugins = load_entry_points(installed(), config)
    return plugins, preflight(config, plugins)


def preflight(config: Config, plugins: PluginSet) -> Findings:
    """Check ``config`` against the loaded ``plugins``: settings sections, error policies,
    behaviour patterns and flags must each name something installed; entry points of a
    lookalike group are warned about. A name under a plugin that did not load (failed, not
    selected, blocked) cannot be judged and passes: that plugin is reported on its own."""
    findings = Findings(warnings=_lookalike_warnings())
    installed = {r.name: r for r in plugins.records if r.origin != "object" and r.module != "?"}
    loaded = {r.name for r in plugins.loaded()}
    stages = [stage.qualname for r in plugins.loaded() for stage in r.stages]

    def opaque(name: str) -> bool:  # under an installed plugin whose stages are not known
        owner = name.partition(".")[0]
        return owner in installed and owner not in loaded

    where = config.source
    for name in config.plugin_settings:
        if name not in installed:
            findings.errors.append(
                f"{where}: [settings.{name}] names no installed plugin"
                f"{did_you_mean(name, installed)}{_listed('installed plugins', installed)}")
    for name in config.error_policy:
        if name not in installed and name not in stages and not opaque(name):
            findings.errors.append(
                f"{where}: [error_policy] {name!r} names no installed plugin or loaded stage"
                f"{did_you_mean(name, [*installed, *stages])}")
    findings.errors += _behavior_errors(config, stages, opaque)
    failed = {r.name for r in plugins.failed()}
    findings.errors += _flag_errors(config, plugins, lambda name: name.partition(".")[0] in failed,
                                    {name for name in installed if name not in loaded})
    for name in config.disable_plugins:
        if name not in installed:
            findings.warnings.append(
                f"disable_plugins names {name!r}, which is not installed (nothing is disabled "
                f"by it){did_you_mean(name, installed)}")
    return findings


def _listed(what: str, names: Iterable[str]) -> str:
    shown = sorted(names)
    return f" ({what}: {', '.join(shown)})" if shown else f" (no {what})"


def _behavior_errors(config: Config, stages: list[str], opaque: Callable[[str], bool]
                     ) -> list[str]:
    from ._behavior_specs import match

    errors = []
    for pattern in config.behaviors:
        if any(match(pattern, stage) for stage in stages) or opaque(pattern):
            continue
        errors.append(f"{config.source}: [behaviors] pattern {pattern!r} matches no stage of "
                      f"the loaded plugins, so nothing would be wrapped"
                      f"{did_you_mean(pattern, stages)}{_listed('stages', stages)}")
    return errors


def _flag_errors(config: Config, plugins: PluginSet, opaque: Callable[[str], bool],
                 absent: set[str]) -> list[str]:
    """Each flag value of the file, ``HOOKLINE_FLAGS`` and ``--flag`` checked against the
    flags the plugins declare, as the pipeline will set them (so with its messages). A flag
    under a plugin that failed to load is left to that failure; one under a plugin that is
    installed but not loaded (``absent``: not selected, blocked) is an error the pipeline
    would raise too, and the message says why."""
    from .errors import FlagError
    from .flags import Flags, default_flags

    errors: list[str] = []
    declared = Flags()
    declared.declared = dict(default_flags.declared)  # those defined while importing
    for impl in plugins.impls("hookline_flags"):
        try:
            for declaration in impl.function() or ():
                declared.define(**{"owner": impl.plugin_name, **declaration})
        except Exception as exc:  # the pipeline would fail on it too: say so now
            errors.append(f"plugin {impl.plugin_name}: hookline_flags failed: "
                          f"{type(exc).__name__}: {exc}")
    environment = config.environment or {}
    sources: list[tuple[str, str, Any]] = [
        (f"{config.source} [flags]", name, value) for name, value in config.flags.items()]
    for part in environment.get("HOOKLINE_FLAGS", "").split(","):
        name, sep, value = part.strip().partition("=")
        if name.strip():
            sources.append(("HOOKLINE_FLAGS", name.strip(), value if sep else "on"))
    sources += [("--flag", name, value) for name, value in config.cli_flags.items()]
    for where, name, value in sources:
        if name not in declared.declared and opaque(name):
            continue
        try:
            declared.set("config", name, value)
        except FlagError as exc:
            owner = name.partition(".")[0]
            why = (f"; its plugin {owner!r} is installed but not loaded (not selected, or "
                   "disabled), so it declares nothing: select it, or leave the flag out"
                   if owner in absent and name not in declared.declared else "")
            errors.append(f"{where}: {str(exc).removeprefix('config: ')}{why}")
    return errors


def _lookalike_warnings() -> list[str]:
    from ._discovery import lookalikes, meant_group

    return [f"{ep.distribution} {ep.version} declares the entry point {ep.name} = {ep.value} "
            f"in the group {ep.group!r}, which hookline does not read, so it is not loaded: "
            f"did you mean {meant_group(ep.group)!r}? Fix the group in its pyproject.toml "
            f"([project.entry-points.\"{meant_group(ep.group)}\"]) and reinstall it"
            for ep in lookalikes()]


# -- hookline check ----------------------------------------------------------------------------


def add_arguments(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hookline check`` to the CLI's subcommands."""
    check = commands.add_parser(
        "check", help="verify the configuration and every installed plugin",
        description="Load the selected plugins as a run would, verify each against the "
                    "stage contract, and check the configuration against them (flags, "
                    "settings sections, error policies and behaviour patterns must each "
                    "name something installed). Prints every problem with what to fix; "
                    "exits 1 when there is any, or when a plugin fails to load.")
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    """``hookline check``: 0 when every selected plugin loads and satisfies the contract and
    the configuration names only what is installed, else 1."""
    from ._loader import FAILED, LOADED
    from .config import from_arguments

    plugins, findings = load_and_check(from_arguments(args))
    results = [(record, list(record.violations)) for record in plugins.records]
    bad = [(r, found) for r, found in results if found or r.status == FAILED]
    failed = 1 if bad or findings.errors else 0
    if getattr(args, "format", "text") == "json":
        print(json.dumps({
            "plugins": [{**_identity(r), "status": _status(r, found), "error": r.error,
                         "violations": [v.as_dict() for v in found]} for r, found in results],
            "errors": findings.errors, "warnings": findings.warnings}, indent=2))
        return failed
    if not results:
        print("no hookline plugins installed (entry point group 'hookline.plugins')")
    for record, found in results:
        dist = ("local" if record.origin == "local" else
                f"{record.distribution} {record.version}" if record.distribution else "-")
        print(f"{record.name:<16} {_status(record, found):<13} {dist:<28} "
              f"{record.path or record.module}")
        origin = f"{record.distribution} {record.version}" if record.distribution else None
        for violation in found:
            print(f"    {violation.format(origin)}")
        if record.status == FAILED and not found:
            print(f"    error: {record.error}")
    for warning in findings.warnings:
        print(f"warning: {warning}")
    for error in findings.errors:
        print(f"error: {error}")
    checked = sum(1 for r, _ in results if r.status in (LOADED, FAILED))
    config_errors = (f"{len(findings.errors)} configuration error"
                     f"{'s' if len(findings.errors) != 1 else ''}")
    if bad:
        count = sum(len(found) for _, found in bad)
        broken = sum(1 for r, found in bad if not found)
        parts = [f"{count} contract violation{'s' if count != 1 else ''}"] if count else []
        parts += [f"{broken} could not load"] if broken else []
        parts += [config_errors] if findings.errors else []
        print(f"hookline check: {len(bad)} of {checked} plugin(s) failed: {', '.join(parts)}")
    elif findings.errors:
        print(f"hookline check: {config_errors}; all {checked} selected plugin(s) satisfy "
              "the stage contract")
    elif results:
        print(f"hookline check: all {checked} selected plugin(s) satisfy the stage contract")
    return failed


def _status(record: PluginRecord, found: list[Violation]) -> str:
    if found:
        return "violations"
    return "ok" if record.status == "loaded" else record.status


def _identity(record: PluginRecord) -> dict[str, Any]:
    return {"name": record.name, "distribution": record.distribution,
            "version": record.version, "module": record.module, "origin": record.origin,
            "path": record.path}
