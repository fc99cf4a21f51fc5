"""Plugins add subcommands to ``hookline`` through ``hookline_commands``.

The plugin adding ``hello`` is the hook reference's example (docs/hooks.md). Each plugin is
installed as pip leaves it (``hookline.testing.write_installed``), and the ``hookline``
command is run on it: in this process (``tests/_cli_site.py``), and once in a process of its
own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from _cli_site import Site

#: The hook reference's example: ``hookline hello NAME [--shout]``.
HELLO = (Path(__file__).parent / "doc_examples" / "hooks" / "commands.py").read_text(
    encoding="utf-8")

#: Leaves a mark when imported: a core command must not import it.
MARKED = '''
import os, pathlib
pathlib.Path(os.environ["MARK_FILE"]).write_text("imported")
'''

BROKEN_IMPORT = '''
raise RuntimeError("the plugin's configuration service is down")
'''

#: Adds one command, then fails: the command it added must not stay half-made.
HALF = '''
import hookline

@hookline.hookimpl
def hookline_commands(cli):
    cli.add_parser("half", help="half a command")
    raise ValueError("no arguments for half")
'''

#: Would take the place of the core's ``run``.
HIJACK = '''
import hookline

@hookline.hookimpl
def hookline_commands(cli):
    cli.add_parser("rerun", help="fine")
    cli.add_parser("run", help="mine now")
'''


def test_a_plugin_command_runs_with_its_own_arguments_and_exit_status(site: Site) -> None:
    site.install("hello", HELLO)
    assert site.hookline("hello", "Ada") == (0, "hello, Ada\n", "")
    assert site.hookline("hello", "Ada", "--shout").out == "HELLO, ADA\n"
    assert site.hookline("hello", " ").code == 1  # the handler's status is the exit status


def test_plugin_commands_are_listed_with_their_help(site: Site) -> None:
    site.install("hello", HELLO)
    with pytest.raises(SystemExit) as done:
        site.hookline("--help")
    assert done.value.code == 0
    listing = site.capsys.readouterr().out
    assert "hello" in listing and "greet someone" in listing
    assert "run" in listing  # the core's commands are all there
    with pytest.raises(SystemExit):
        site.hookline("hello", "--help")
    own = site.capsys.readouterr().out
    assert "Say hello to NAME." in own and "--shout" in own and "in capitals" in own


def test_a_core_command_does_not_import_the_plugins(site: Site, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    mark = tmp_path / "imported"
    monkeypatch.setenv("MARK_FILE", str(mark))
    site.install("marked", MARKED)
    site.install("hello", HELLO)
    assert site.hookline("generate", "-n", "2", "-o", "two.jsonl").code == 0
    assert not mark.exists()
    assert site.hookline("hello", "Ada").code == 0  # a plugin's command loads the plugins
    assert mark.exists()


def test_a_broken_plugin_is_named_and_the_other_commands_still_work(site: Site) -> None:
    site.install("broken", BROKEN_IMPORT, version="2.1")
    site.install("half", HALF)
    site.install("hello", HELLO)
    result = site.hookline("hello", "Ada")
    assert (result.code, result.out) == (0, "hello, Ada\n")
    assert ("plugin broken (broken-plugin 2.1) failed to load, so its commands (if any) are "
            "missing: RuntimeError: the plugin's configuration service is down") in result.err
    assert "plugin half (half-plugin 1.0) failed to add its commands: ValueError: no arguments " \
           "for half (at " in result.err
    assert "half_plugin" in result.err  # the file and line of the raise
    with pytest.raises(SystemExit) as done:  # what it added before failing is taken back
        site.hookline("half")
    assert done.value.code == 2
    assert "invalid choice: 'half'" in site.capsys.readouterr().err


def test_a_plugin_cannot_replace_a_core_command(site: Site) -> None:
    site.install("hijack", HIJACK)
    with pytest.raises(SystemExit):
        site.hookline("--help")
    listing, err = site.capsys.readouterr()
    # (argparse refuses the second "run" itself from Python 3.11 on; hookline, before)
    assert "plugin hijack (hijack-plugin 1.0) failed to add its commands: " in err
    assert "run" in err.partition("failed to add its commands: ")[2]
    if sys.version_info >= (3, 11):  # the plugin's line, not argparse's
        assert f"hijack_plugin{os.sep}__init__.py:7)" in err
    assert "run JSONL events through the installed plugins" in listing
    assert "mine now" not in listing
    assert "rerun" not in listing  # what else it added is taken back too
    with pytest.raises(SystemExit) as done:
        site.hookline("rerun")
    assert done.value.code == 2


def test_plugin_selection_applies_to_commands(site: Site,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    site.install("hello", HELLO)
    monkeypatch.setenv("HOOKLINE_DISABLE_PLUGINS", "hello")
    with pytest.raises(SystemExit) as done:
        site.hookline("hello", "Ada")
    assert done.value.code == 2
    monkeypatch.delenv("HOOKLINE_DISABLE_PLUGINS")
    config = site.config('disable_plugins = ["hello"]\n', "without-hello.toml")
    with pytest.raises(SystemExit):
        site.hookline("--config", str(config), "hello", "Ada")
    assert site.hookline("hello", "Ada").code == 0


def test_a_plugin_command_in_a_process_of_its_own(site: Site) -> None:
    site.install("hello", HELLO)
    listing = site.process("--help")
    assert listing.returncode == 0, listing.stderr
    assert "greet someone" in listing.stdout
    greeted = site.process("hello", "Ada", "--shout")
    assert (greeted.returncode, greeted.stdout, greeted.stderr) == (0, "HELLO, ADA\n", "")
