"""``hookline new-plugin NAME``: write a new plugin distribution, laid out like those in contrib/.

The result passes its own checks right after ``pip install -e ".[test]"``: ``pytest``, and
``tox`` (its tests, ``mypy --strict`` and ``ruff``, as its CI workflow runs them)::

    hookline-NAME/
    ├── pyproject.toml            distribution hookline-NAME, entry point NAME = "hookline_NAME"
    ├── README.md
    ├── tox.ini                   envs py (tests), type (mypy --strict), lint (ruff)
    ├── .gitignore
    ├── .github/workflows/ci.yml  tox on Python 3.10-3.13
    ├── src/hookline_NAME/
    │   ├── __init__.py           one validate stage, with settings
    │   └── py.typed
    └── tests/test_NAME.py        tests using the fixtures of hookline's pytest plugin

tox installs hookline from PyPI; ``HOOKLINE_PACKAGE`` names another one for it to install
instead (a wheel file, a source folder or a requirement): how hookline's own tests run a new
plugin's tox against the hookline being developed.

The templates are below, as ``string.Template`` text (``$name``, ``$Name``…): one module holds
the whole scaffold, so nothing needs to be packaged besides it.
"""

from __future__ import annotations

import keyword
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from ._version import API_VERSION, __version__
from .errors import ScaffoldError

if TYPE_CHECKING:
    import argparse

__all__ = ["ScaffoldError", "add_arguments", "check_name", "cmd_new_plugin", "create_plugin"]


_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_MAX_LENGTH = 40


def check_name(name: str) -> str:
    """``name`` if it can name a plugin (``fraud``, ``geo_ip``); else a ScaffoldError saying why.

    The name is the entry point's name, the plugin's name in configuration and stage names
    (``NAME.stage``), and part of the import package ``hookline_NAME``: lower-case letters,
    digits and ``_``, starting with a letter.
    """
    if not name:
        raise ScaffoldError("a plugin name is required, such as 'fraud' or 'geo_ip'")
    if _NAME.match(name) and not keyword.iskeyword(name) and len(name) <= _MAX_LENGTH:
        if name == "hookline" or name.startswith("hookline_"):
            raise ScaffoldError(
                f"plugin name {name!r}: leave out the 'hookline' prefix, the scaffold adds it "
                f"(distribution hookline-NAME, package hookline_NAME)")
        return name
    suggestion = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    fits = _NAME.match(suggestion) and not keyword.iskeyword(suggestion)
    hint = f"; try {suggestion!r}" if fits and suggestion != name else ""
    if keyword.iskeyword(name):
        why = "is a Python keyword"
        hint = f"; try {name + '_plugin'!r}"
    elif len(name) > _MAX_LENGTH:
        why = f"is longer than {_MAX_LENGTH} characters"
        hint = ""
    elif name != name.lower() and _NAME.match(name.lower()):
        why = "must be lower case"
    elif not name[0].isalpha():
        why = "must start with a letter"
    else:
        why = "may hold only lower-case letters, digits and _"
    raise ScaffoldError(f"plugin name {name!r} {why}{hint}")


def create_plugin(name: str, directory: str | os.PathLike[str] = ".") -> Path:
    """Write the distribution ``hookline-NAME`` into ``directory``; return its folder.

    The folder and the distribution are named ``hookline-NAME``, the import package
    ``hookline_NAME``.

    Refuses (ScaffoldError) a bad name or an existing folder; writes nothing in either case,
    and never leaves a half-written folder behind.
    """
    values = _values(check_name(name))
    parent = Path(directory)
    target = parent / values["distribution"]
    if target.exists():
        raise ScaffoldError(f"{target} exists already; choose another name or --dir "
                            "(nothing was written)")
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=parent))
    try:
        for path, template in _FILES.items():
            file = staging / Template(path).substitute(values)
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(Template(template).substitute(values), encoding="utf-8")
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target



def _values(name: str) -> dict[str, str]:
    major, minor = __version__.split(".")[:2]
    return {
        "name": name,
        "package": f"hookline_{name}",
        "distribution": f"hookline-{name}",
        "title": name.replace("_", " ").title(),
        "hookline_requirement": f"hookline>={major}.{minor}",
        "api": str(API_VERSION),
    }


# -- the command line ---------------------------------------------------------------------------


def add_arguments(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hookline new-plugin`` to the CLI's subcommands."""
    new = commands.add_parser(
        "new-plugin", help="scaffold a new plugin distribution",
        description="Write hookline-NAME/ (pyproject.toml with the entry point, src/ layout, a "
                    "validate stage, tests using hookline's pytest fixtures, README) into DIR.")
    new.add_argument("name", metavar="NAME",
                     help="the plugin's name: lower-case letters, digits and _ (e.g. geo_ip)")
    new.add_argument("--dir", default=".", metavar="DIR",
                     help="the folder to create hookline-NAME in (default: the current one)")
    new.set_defaults(handler=cmd_new_plugin)


def cmd_new_plugin(args: argparse.Namespace) -> int:
    """``hookline new-plugin``: 0 on success, 2 for a bad name, 1 when the folder exists."""
    try:
        check_name(args.name)
    except ScaffoldError as exc:
        print(f"hookline new-plugin: {exc}", file=sys.stderr)
        return 2
    try:
        target = create_plugin(args.name, args.dir)
    except (ScaffoldError, OSError) as exc:
        print(f"hookline new-plugin: {exc}", file=sys.stderr)
        return 1
    shown = os.path.relpath(target) if not Path(args.dir).is_absolute() else str(target)
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    print(f"created {shown}/")
    for file in files:
        print(f"  {file}")
    print("\nnext:\n"
          f"  cd {shown}\n"
          '  pip install -e ".[test]"    # installs the plugin: hookline finds its entry point\n'
          "  pytest                      # its tests pass as they are\n"
          "  tox                         # tests, mypy --strict and ruff, as its CI runs them\n"
          f"  hookline plugins            # lists {args.name} and its stage "
          f"{args.name}.blocked_kinds")
    return 0


# -- the templates ------------------------------------------------------------------------------

_PYPROJECT = '''\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "$distribution"
version = "0.1.0"
description = "A hookline plugin: $title."
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["$hookline_requirement"]
classifiers = ["Typing :: Typed"]

[project.optional-dependencies]
# Everything tox.ini runs, and tox itself.
test = ["pytest>=8", "mypy>=1.10", "ruff>=0.5", "tox>=4.11"]

# The entry point is the plugin: its name ($name) names the plugin and its stages.
[project.entry-points."hookline.plugins"]
$name = "$package"

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
$package = ["py.typed"]

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "-ra --strict-markers"

[tool.mypy]
strict = true
files = ["src", "tests"]

[tool.ruff]
line-length = 100
src = ["src", "tests"]

[tool.ruff.lint]
select = ["E", "F", "W", "I", "B", "UP"]
'''

_TOX = '''\
# Every check of $distribution: `tox` runs them all, each in a virtual environment of its
# own; the CI workflow (.github/workflows/ci.yml) runs the same.
#
# hookline comes from PyPI. To check against another hookline (a wheel you built, a source
# checkout, a version), name it in HOOKLINE_PACKAGE:
#     HOOKLINE_PACKAGE=/path/to/hookline-0.2.0-py3-none-any.whl tox
[tox]
requires = tox>=4.11
env_list = py, type, lint

[testenv]
description = the plugin's tests, against the plugin built as a wheel
package = wheel
deps =
    {env:HOOKLINE_PACKAGE:$hookline_requirement}
    pytest>=8
commands = pytest {posargs}

[testenv:type]
description = mypy --strict on src and tests (configured in pyproject.toml)
deps =
    {[testenv]deps}
    mypy>=1.10
commands = mypy {posargs}

[testenv:lint]
description = ruff on src and tests
skip_install = true
deps = ruff>=0.5
commands = ruff check src tests
'''

_CI = '''\
# tox on every push and pull request, on each Python hookline supports.
name: ci

on:
  push:
  pull_request:

jobs:
  tox:
    runs-on: ubuntu-latest
    strategy:
      fail-fast: false
      matrix:
        python: ["3.10", "3.11", "3.12", "3.13"]
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: $${{ matrix.python }}
      - run: python -m pip install "tox>=4.11"
      - run: tox
'''

_GITIGNORE = '''\
__pycache__/
*.py[cod]
*.egg-info/
build/
dist/
.tox/
.venv/
.mypy_cache/
.pytest_cache/
.ruff_cache/
hookline.db
'''

_INIT = '''\
"""$distribution: a hookline plugin.

Installed next to hookline, this package is found through its entry point
``$name = "$package"`` in the group ``hookline.plugins``. Importing it defines its
stages, which the ``hookline.Stage`` metaclass records:

- ``$name.blocked_kinds`` (:class:`BlockedKinds`): rejects events whose ``kind`` is on a
  block list (``["test"]`` unless ``[settings.$name]`` says otherwise).
"""

from __future__ import annotations

import hookline
from hookline import fields

#: The hookline plugin API this plugin is written for (checked when it is loaded).
HOOKLINE_API = $api

__all__ = ["HOOKLINE_API", "BlockedKinds"]


class BlockedKinds(hookline.Stage, phase="validate", name="blocked_kinds"):
    """Reject an event whose ``kind`` is on the block list."""

    class Settings(hookline.Settings):
        """Settings of ``$name.blocked_kinds``, read from ``[settings.$name]``."""

        blocked = fields.List(fields.String(min_length=1), default=lambda: ["test"])

    def process(self, event: hookline.Event) -> None:
        """Raise ``hookline.Reject`` when the event's kind is blocked; pass it on otherwise.

        A stage may also assign fields (each assignment is validated), return a replacement
        event, or raise ``hookline.Drop()`` to filter the event out on purpose.
        """
        if event.kind in self.settings.blocked:
            raise hookline.Reject(f"kind {event.kind!r} is blocked")
'''

_TEST = '''\
"""Tests of $distribution, with the fixtures of hookline's pytest plugin.

The fixtures come with hookline (see its docs/testing.md): no install of this plugin is
needed to test it, and nothing leaks from one test into the next.
"""

from __future__ import annotations

import hookline
import pytest
from hookline.testing import AssertContract, EventFactory, PipelineFactory, RunReporter

import $package


def test_the_plugin_satisfies_the_stage_contract(assert_contract: AssertContract) -> None:
    assert_contract($package)


def test_a_blocked_kind_is_rejected_with_its_reason(
    make_pipeline: PipelineFactory, make_event: EventFactory
) -> None:
    pipeline = make_pipeline($package)
    with pytest.raises(hookline.Reject) as rejected:
        pipeline.process(make_event(kind="test"))
    assert rejected.value.reason == "kind 'test' is blocked"
    assert rejected.value.stage == "$name.blocked_kinds"


def test_other_kinds_pass_unchanged(
    make_pipeline: PipelineFactory, make_event: EventFactory
) -> None:
    event = make_event(kind="purchase")
    assert make_pipeline($package).process(event).to_dict() == event


def test_the_block_list_is_a_setting(
    make_pipeline: PipelineFactory, make_event: EventFactory
) -> None:
    pipeline = make_pipeline($package, settings={"$name": {"blocked": ["refund"]}})
    with pytest.raises(hookline.Reject, match="kind 'refund' is blocked"):
        pipeline.process(make_event(kind="refund"))
    assert pipeline.process(make_event(kind="test")).kind == "test"


def test_a_run_stores_accepted_events_and_dead_letters(
    make_pipeline: PipelineFactory, make_event: EventFactory, run_report: RunReporter
) -> None:
    events = [make_event(), make_event(kind="test"), make_event()]
    result = run_report(make_pipeline($package), events)
    assert (result.report.accepted, result.report.dead_lettered) == (2, 1)
    assert result.query("SELECT reason, stage FROM dead_letters") == [
        ("kind 'test' is blocked", "$name.blocked_kinds")
    ]
'''

_README = '''\
# $distribution

A [hookline](https://pypi.org/project/hookline/) plugin. Its stages run on every
`hookline run` once it is installed next to hookline.

```sh
pip install -e ".[test]"   # from this folder; or: pip install $distribution
pytest                     # the plugin's tests
tox                        # tests, mypy --strict and ruff, as CI runs them
hookline plugins           # lists "$name" and its stage $name.blocked_kinds
hookline check             # verifies it against the stage contract
```

## What it contributes

| stage | phase | what it does |
|---|---|---|
| `$name.blocked_kinds` | `validate` | rejects an event whose `kind` is on the block list |

## Settings

Read from the `[settings.$name]` table of the hookline configuration (`hookline.toml`, or
`[tool.hookline.settings.$name]` in `pyproject.toml`) and validated when the pipeline is built.

| setting | type | default | meaning |
|---|---|---|---|
| `blocked` | list of str | `["test"]` | event kinds to reject |

```toml
[settings.$name]
blocked = ["test", "internal"]
```

## Entry point

```toml
[project.entry-points."hookline.plugins"]
$name = "$package"
```

Importing `$package` defines its `hookline.Stage` subclasses, which registers them. Select or
exclude the plugin with `HOOKLINE_PLUGINS=$name,…` or `HOOKLINE_DISABLE_PLUGINS=$name`.

## Develop

- Add a stage: a `hookline.Stage` subclass with `phase="validate"`, `"enrich"` or `"score"`
  and a `process(self, event)` method, in `src/$package/`.
- Add an event field: a `hookline_event_fields()` hook returning `{"name": fields.…}`.
- Test with the fixtures `make_pipeline`, `make_event`, `run_report` and `assert_contract`
  (hookline's pytest plugin, loaded automatically).
- Type-check with `mypy` (configured strict in `pyproject.toml`), lint with `ruff check`.
- `tox` runs all three, each in a fresh environment: `tox -e py` the tests, `tox -e type`,
  `tox -e lint`. The CI workflow in `.github/workflows/ci.yml` runs `tox` on Python 3.10 to
  3.13. tox installs hookline from PyPI; `HOOKLINE_PACKAGE=/path/to/hookline.whl tox` (a
  wheel, a source folder or a requirement) checks against another hookline.

## Publish

```sh
python -m build            # dist/$package-0.1.0-py3-none-any.whl and the sdist
python -m twine upload dist/*
```
'''

_FILES: dict[str, str] = {
    "pyproject.toml": _PYPROJECT,
    "README.md": _README,
    "tox.ini": _TOX,
    ".gitignore": _GITIGNORE,
    ".github/workflows/ci.yml": _CI,
    "src/$package/__init__.py": _INIT,
    "src/$package/py.typed": "",
    "tests/test_$name.py": _TEST,
}
