"""``hookline check``: load the selected plugins as a run would and list every contract
violation, with the plugin's distribution and version and the file and line to fix."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from ._loader import PluginRecord
    from .contracts import Violation

__all__ = ["add_arguments", "cmd_check"]


def add_arguments(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hookline check`` to the CLI's subcommands."""
    check = commands.add_parser(
        "check", help="verify every installed plugin against the stage contract",
        description="Load the selected plugins as a run would and verify each against the "
                    "stage contract. Prints every violation with the plugin, its distribution "
                    "and version, and the file and line to fix; exits 1 when there is any, or "
                    "when a plugin fails to load.")
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    """``hookline check``: 0 when every selected plugin loads and satisfies the contract, else 1.

    The plugins are loaded as a run loads them; the loader verifies each against the contract
    and refuses a violating one, recording its violations.
    """
    from ._discovery import installed
    from ._loader import FAILED, LOADED, load_entry_points
    from .config import load_config

    plugins = load_entry_points(installed(), load_config(getattr(args, "config", None)))
    results = [(record, list(record.violations)) for record in plugins.records]
    bad = [(r, found) for r, found in results if found or r.status == FAILED]
    if getattr(args, "format", "text") == "json":
        print(json.dumps([{**_identity(r), "status": _status(r, found), "error": r.error,
                           "violations": [v.as_dict() for v in found]}
                          for r, found in results], indent=2))
        return 1 if bad else 0
    if not results:
        print("no hookline plugins installed (entry point group 'hookline.plugins')")
        return 0
    for record, found in results:
        dist = f"{record.distribution} {record.version}" if record.distribution else "-"
        print(f"{record.name:<16} {_status(record, found):<13} {dist:<28} {record.module}")
        origin = f"{record.distribution} {record.version}" if record.distribution else None
        for violation in found:
            print(f"    {violation.format(origin)}")
        if record.status == FAILED and not found:
            print(f"    error: {record.error}")
    checked = sum(1 for r, _ in results if r.status in (LOADED, FAILED))
    if bad:
        count = sum(len(found) for _, found in bad)
        broken = sum(1 for r, found in bad if not found)
        parts = [f"{count} contract violation{'s' if count != 1 else ''}"] if count else []
        parts += [f"{broken} could not load"] if broken else []
        print(f"hookline check: {len(bad)} of {checked} plugin(s) failed: {', '.join(parts)}")
        return 1
    print(f"hookline check: all {checked} selected plugin(s) satisfy the stage contract")
    return 0


def _status(record: PluginRecord, found: list[Violation]) -> str:
    if found:
        return "violations"
    return "ok" if record.status == "loaded" else record.status


def _identity(record: PluginRecord) -> dict[str, Any]:
    return {"name": record.name, "distribution": record.distribution,
            "version": record.version, "module": record.module}
