"""The documentation is tested: it cannot drift from the code without a test failing.

Conventions of the pages under docs/ (see also mkdocs.yml):

* The hook reference, docs/hooks.md, has one section per hook of ``hookline.hookspecs``, in
  the module's order, headed ``## `hookline_x(param: Type) -> Type` {#hookline_x}`` with the
  signature exactly as ``inspect.signature`` gives it.
* A fenced block preceded by a marker line is a copy of something real, checked here:

  ``<!-- example: tests/doc_examples/PATH -->``        the whole file
  ``<!-- example: tests/doc_examples/PATH#NAME -->``   the lines between ``# --8<-- [start:NAME]``
                                                       and ``# --8<-- [end:NAME]`` in it
  ``<!-- output: tests/doc_examples/PATH -->``         what running the file prints
  ``<!-- source: hookline.module.function -->``        the source of that object
  ``<!-- generated: tests/doc_examples/PATH#Cls.method -->``  code hookline generated

  Every ``python`` block in the docs carries a marker, so every Python example is a file
  that a test below runs against a real pipeline. After editing an example file, copy it
  into the pages with ``python tests/test_docs.py --sync``.
* A ``toml`` block whose first line is ``# hookline.toml`` or ``# pyproject.toml`` is a
  configuration example: it must load.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import inspect
import io
import itertools
import json
import logging
import os
import re
import runpy
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import hookline
from hookline import hookspecs
from hookline.config import Config, load_config

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "tests" / "doc_examples"
PLUGIN = EXAMPLES / "plugin"
CORE = Path(hookline.__file__).resolve().parent

# -- reading the pages ----------------------------------------------------------------------------

_MARKER = re.compile(r"<!-- (example|output|source|generated): (\S+) -->")
_FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    """One fenced code block of a page, with the marker line before it (if any)."""

    page: str
    line: int  # of the opening fence, 1-based
    end: int  # of the closing fence
    lang: str
    text: str
    kind: str | None = None
    target: str | None = None

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def pages() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(DOCS.glob("*.md"))}


def blocks(page: str, text: str) -> list[Block]:
    found: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        close = next((j for j in range(index + 1, len(lines)) if lines[j].rstrip() == "```"),
                     None)
        assert close is not None, f"docs/{page}:{index + 1}: a code block is never closed"
        previous = next((lines[j] for j in range(index - 1, -1, -1) if lines[j].strip()), "")
        marker = _MARKER.fullmatch(previous.strip())
        body = "".join(line + "\n" for line in lines[index + 1:close])
        found.append(Block(page, index + 1, close + 1, opening.group(1), body,
                           marker.group(1) if marker else None,
                           marker.group(2) if marker else None))
        index = close + 1
    return found


def all_blocks() -> list[Block]:
    return [block for page, text in pages().items() for block in blocks(page, text)]


def marked_blocks() -> list[Block]:
    return [block for block in all_blocks() if block.kind]


# -- what a marked block must contain -------------------------------------------------------------

_counter = itertools.count()


def load_example(relative: str) -> ModuleType:
    """Import an example file as a fresh module, its stages in a registry of their own."""
    path = EXAMPLES / relative
    stem = re.sub(r"\W", "_", relative.removesuffix(".py"))
    name = f"doc_example_{stem}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    with hookline.Registry().activate():
        spec.loader.exec_module(module)
    return module


def _section(text: str, name: str, path: str) -> str:
    start, end = f"# --8<-- [start:{name}]", f"# --8<-- [end:{name}]"
    lines = text.splitlines(keepends=True)
    begin = [i for i, line in enumerate(lines) if line.strip() == start]
    finish = [i for i, line in enumerate(lines) if line.strip() == end]
    assert len(begin) == len(finish) == 1, f"{path}: needs one {start!r} and one {end!r}"
    return textwrap.dedent("".join(lines[begin[0] + 1:finish[0]]))


@contextlib.contextmanager
def scratch_folder() -> Iterator[Path]:
    """A temporary current folder, with hookline's cache and environment kept out of it."""
    keep_cwd, keep_env = os.getcwd(), dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="hookline-docs-") as folder:
        os.chdir(folder)
        os.environ["HOOKLINE_CACHE_DIR"] = str(Path(folder) / ".cache")
        try:
            yield Path(folder)
        finally:
            os.chdir(keep_cwd)
            os.environ.clear()
            os.environ.update(keep_env)


def run_example(relative: str) -> str:
    """What running an example file as a script prints."""
    out = io.StringIO()
    with scratch_folder(), hookline.Registry().activate(), contextlib.redirect_stdout(out):
        runpy.run_path(str(EXAMPLES / relative), run_name="__main__")
    return out.getvalue()


def _resolve(dotted: str) -> Any:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


def expected(block: Block) -> str:
    """The text a marked block must have."""
    assert block.kind is not None and block.target is not None
    target = block.target
    if block.kind == "source":
        return textwrap.dedent(inspect.getsource(_resolve(target)))
    path, _, name = target.partition("#")
    assert path.startswith("tests/doc_examples/"), f"{block.where}: {path} is not an example"
    relative = path.removeprefix("tests/doc_examples/")
    file = EXAMPLES / relative
    assert file.is_file(), f"{block.where}: {path} does not exist"
    if block.kind == "example":
        text = file.read_text(encoding="utf-8")
        return _section(text, name, path) if name else text
    if block.kind == "output":
        return run_example(relative)
    # generated: the source hookline generated for Class.method, compiled on first use
    module = load_example(relative)
    owner, _, method = name.partition(".")
    cls = getattr(module, owner)
    with contextlib.suppress(hookline.ValidationError):
        cls.from_dict({})
    return inspect.getsource(getattr(cls, method))


def sync() -> None:
    """Copy every marked block's source into the pages (``python tests/test_docs.py --sync``)."""
    for page, text in pages().items():
        lines = text.splitlines(keepends=True)
        for block in reversed(blocks(page, text)):
            if not block.kind:
                continue
            try:
                lines[block.line:block.end - 1] = [expected(block)]
            except Exception as error:  # one broken marker must not stop the others
                print(f"skipped {block.where}: {error}")
        new = "".join(lines)
        if new != text:
            (DOCS / page).write_text(new, encoding="utf-8")
            print(f"updated docs/{page}")


# -- 1. the hook reference ------------------------------------------------------------------------

_HOOK_HEADING = re.compile(r"^## `(hookline_\w+)\((.*?)\)(?: -> (.+?))?` \{#(hookline_\w+)\}$",
                           re.M)


def hookspecs_in_order() -> list[tuple[str, Any]]:
    return [(name, value) for name, value in vars(hookspecs).items()
            if name.startswith("hookline_") and callable(value)]


def signature_text(name: str, spec: Any) -> str:
    signature = inspect.signature(spec)
    params = ", ".join(
        p.name if p.annotation is inspect.Parameter.empty else f"{p.name}: {p.annotation}"
        for p in signature.parameters.values())
    returns = signature.return_annotation
    return f"{name}({params})" + ("" if returns is inspect.Signature.empty else f" -> {returns}")


def hook_sections() -> dict[str, tuple[str, str]]:
    """hook name -> (the signature in its heading, the section's text)."""
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    headings = list(_HOOK_HEADING.finditer(text))
    sections = {}
    for match, following in zip(headings, [*headings[1:], None]):
        name, params, returns, anchor = match.groups()
        assert anchor == name, f"the section of {name} has the anchor #{anchor}"
        end = following.start() if following else len(text)
        next_h2 = text.find("\n## ", match.end())
        if next_h2 != -1:
            end = min(end, next_h2)
        signature = f"{name}({params})" + (f" -> {returns}" if returns else "")
        sections[name] = (signature, text[match.end():end])
    return sections


def test_every_hook_has_a_section_with_its_signature_in_spec_order() -> None:
    specs = hookspecs_in_order()
    sections = hook_sections()
    missing = [name for name, _ in specs if name not in sections]
    assert not missing, f"undocumented hooks, add a section to docs/hooks.md: {missing}"
    unknown = sorted(set(sections) - {name for name, _ in specs})
    assert not unknown, f"docs/hooks.md documents hooks that do not exist: {unknown}"
    for name, spec in specs:
        assert sections[name][0] == signature_text(name, spec), (
            f"docs/hooks.md: the heading of {name} must be `{signature_text(name, spec)}`")
    assert list(sections) == [name for name, _ in specs], "sections not in hookspecs order"


@pytest.mark.parametrize("name", [name for name, _ in hookspecs_in_order()])
def test_each_hook_section_has_parameters_return_and_an_example(name: str) -> None:
    _, section = hook_sections().get(name, ("", ""))
    assert "**Parameters**" in section and "**Returns**" in section, name
    for parameter in inspect.signature(getattr(hookspecs, name)).parameters:
        assert f"`{parameter}`" in section, f"{name}: parameter {parameter!r} not described"
    assert "<!-- example: tests/doc_examples/" in section, f"{name} has no example"


def test_the_configure_section_lists_every_configuration_key() -> None:
    _, section = hook_sections()["hookline_configure"]
    missing = [key for key in Config().as_dict() if f"`{key}`" not in section]
    assert not missing, f"hookline_configure's config has keys the docs omit: {missing}"


# -- 2. code blocks are copies of tested files ----------------------------------------------------


@pytest.mark.parametrize("block", marked_blocks(), ids=lambda block: block.where)
def test_marked_block_equals_its_source(block: Block) -> None:
    assert block.text == expected(block), (
        f"{block.where} differs from {block.target}: run `python tests/test_docs.py --sync`")


def test_every_python_block_is_a_tested_file() -> None:
    untested = [block.where for block in all_blocks()
                if block.lang == "python" and block.kind not in ("example", "source",
                                                                  "generated")]
    assert not untested, f"Python blocks without an example marker: {untested}"


def test_every_example_file_is_shown_in_the_docs() -> None:
    shown = {block.target.partition("#")[0] for block in marked_blocks()
             if block.target and block.kind != "source"}
    files = {f"tests/doc_examples/{path.relative_to(EXAMPLES).as_posix()}"
             for path in EXAMPLES.rglob("*")
             if path.suffix in (".py", ".toml") and path.name != "conftest.py"
             and "__pycache__" not in path.parts}
    assert not files - shown, f"example files no page shows: {sorted(files - shown)}"


# -- 3. names, commands, options, variables and modules -------------------------------------------


def test_every_public_name_is_documented() -> None:
    text = "\n".join(pages().values())
    missing = [name for name in hookline.__all__ if f"hookline.{name}" not in text]
    assert not missing, f"public names the docs never mention: {missing}"


def test_every_field_type_has_a_section() -> None:
    text = (DOCS / "schema.md").read_text(encoding="utf-8")
    missing = [name for name in hookline.fields.__all__ if f"### `{name}`" not in text]
    assert not missing, f"docs/schema.md has no section for: {missing}"


def _cli_sections() -> dict[str, str]:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    parts = re.split(r"^## `hookline (\S+)`$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_command_and_option_is_documented() -> None:
    from hookline.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sections = _cli_sections()
    head = (DOCS / "cli.md").read_text(encoding="utf-8").split("\n## ")[0]
    problems = [f"global option {o}" for a in parser._actions for o in a.option_strings
                if o.startswith("--") and o != "--help" and f"`{o}" not in head]
    # the options of every command are documented once, with the global ones
    everywhere = {o for a in parser._actions for o in a.option_strings if f"`{o}" in head}
    for name, subparser in commands.choices.items():
        if name not in sections:
            problems.append(f"command {name!r} (no `## `hookline {name}`` section)")
            continue
        for action in subparser._actions:
            if action.help == argparse.SUPPRESS or "-h" in action.option_strings:
                continue
            if action.option_strings and set(action.option_strings) <= everywhere:
                continue
            shown = action.option_strings or [action.metavar or action.dest]
            if not any(f"`{option}" in sections[name] for option in shown):
                problems.append(f"hookline {name} {'/'.join(shown)}")
    assert not problems, f"docs/cli.md does not document: {problems}"


def test_every_environment_variable_is_documented() -> None:
    text = "\n".join(pages().values())
    used = set()
    for path in CORE.rglob("*.py"):
        used |= set(re.findall(r"\bHOOKLINE_[A-Z_]+\b", path.read_text(encoding="utf-8")))
    missing = sorted(name for name in used if name not in text)
    assert not missing, f"environment variables the docs never mention: {missing}"


def test_every_module_is_in_the_architecture_map() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    modules = []
    for path in sorted(CORE.rglob("*.py")):
        parts = path.relative_to(CORE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            modules.append(".".join(parts))
    missing = [module for module in modules if f"`{module}`" not in text]
    assert not missing, f"docs/architecture.md's module map lacks: {missing}"


def test_the_public_modules_are_the_ones_the_map_calls_public() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    table = text.split("**Public**", 1)[1].split("**Private**", 1)[0]
    documented = set(re.findall(r"^\| `([\w.]+)` \|", table, flags=re.M)) - {"hookline"}
    public = {path.stem for path in CORE.glob("*.py")
              if not path.stem.startswith("_")} | {
              path.parent.name for path in CORE.glob("*/__init__.py")
              if not path.parent.name.startswith("_")}
    assert public == documented, "a module without a leading underscore is public: list it"


# -- 4. what the docs call planned is missing, and what they name exists ---------------------------


def _hook_called(name: str) -> bool:
    pattern = re.compile(rf"hook\.{name}\b|impls\(\"{name}\"\)")
    return any(pattern.search(path.read_text(encoding="utf-8")) for path in CORE.rglob("*.py"))


def _commands() -> dict[str, argparse.ArgumentParser]:
    from hookline.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


#: What docs/index.md lists as planned, and how to tell that it arrived.
PLANNED = {
    # arrived when a module besides discovery (which scans the group) uses the group
    "`hookline.backends` entry points": lambda: any(
        "BACKEND_GROUP" in path.read_text(encoding="utf-8")
        for path in CORE.rglob("*.py") if path.name != "_discovery.py"),
}


@pytest.mark.parametrize("feature", sorted(PLANNED))
def test_what_the_docs_call_planned_is_still_missing(feature: str) -> None:
    assert feature in (DOCS / "index.md").read_text(encoding="utf-8")
    assert not PLANNED[feature](), (
        f"{feature} exists now: document it, and remove it from the planned features in "
        "docs/index.md (and from PLANNED in tests/test_docs.py)")


#: `hookline.x` names in the docs that are not Python objects: files, entry point groups, and
#: the span attributes that ``behaviors.traced`` sets.
_NOT_PYTHON = {"hookline.toml", "hookline.db", "hookline.plugins", "hookline.backends",
               "hookline.stage", "hookline.outcome", "hookline.reason"}


def test_every_python_name_the_docs_use_exists() -> None:
    missing = []
    for page, text in pages().items():
        for name in sorted(set(re.findall(r"`(hookline(?:\.[A-Za-z_]\w*)+)", text))):
            if name in _NOT_PYTHON:
                continue
            try:
                _resolve(name)
            except (ImportError, AttributeError):
                missing.append(f"docs/{page}: {name}")
    assert not missing, f"the docs name objects that do not exist: {missing}"


def test_every_command_the_docs_use_exists() -> None:
    commands = _commands()
    missing = []
    for page, text in pages().items():
        used = set(re.findall(r"`hookline ([a-z][a-z-]*)", text))
        for block in blocks(page, text):
            if block.lang == "sh":
                used |= set(re.findall(r"(?:^|[|&;]\s*)hookline ([a-z][a-z-]*)", block.text,
                                       re.M))
        missing += [f"docs/{page}: hookline {name}" for name in sorted(used - set(commands))]
    assert not missing, f"the docs use commands that do not exist: {missing}"


def test_the_pytest_plugin_the_docs_describe_is_declared() -> None:
    if "pytest11" not in "\n".join(pages().values()):
        return
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = project.get("entry-points", {}).get("pytest11", {})
    assert declared.get("hookline") == "hookline.testing", (
        "the docs describe the pytest11 entry point `hookline`; pyproject.toml does not "
        "declare it")


# -- 5. configuration examples load ---------------------------------------------------------------


@pytest.mark.parametrize(
    "block", [b for b in all_blocks() if b.lang == "toml" and b.text.startswith(
        ("# hookline.toml", "# pyproject.toml"))], ids=lambda block: block.where)
def test_configuration_example_loads(block: Block, tmp_path: Path) -> None:
    name = block.text.split()[1]
    path = tmp_path / name
    path.write_text(block.text, encoding="utf-8")
    config = load_config(path, env={})
    assert config.source == str(path)


# -- 6. the examples do what the docs say ---------------------------------------------------------


def event(**fields: Any) -> dict[str, Any]:
    return {"event_id": "e1", "user_id": "u1", "kind": "click", "ts": 1_767_225_600_000,
            **fields}


def pipeline(*plugins: Any, config: Config | None = None) -> hookline.Pipeline:
    return hookline.Pipeline.from_plugins(list(plugins), config or Config())


def run_events(folder: Path, pipe: hookline.Pipeline, lines: list[Any],
               config: Config | None = None) -> tuple[hookline.Report, Path]:
    """Run JSON lines (dicts, or raw text) through ``pipe`` into folder/hookline.db."""
    source = folder / f"input-{next(_counter)}.jsonl"
    source.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                              for line in lines), encoding="utf-8")
    db = folder / "hookline.db"
    report = hookline.run([str(source)], db=str(db), config=config or Config(), pipeline=pipe)
    return report, db


def rows(db: Path, query: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return connection.execute(query).fetchall()


@pytest.fixture(autouse=True)
def _no_hookline_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("HOOKLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOOKLINE_CACHE_DIR", str(tmp_path / "cache"))


def test_validate_example_rejects_and_drops(tmp_path: Path) -> None:
    quality = pipeline(("quality", load_example("hooks/validate.py")))
    assert quality.process(event(kind="purchase", amount=5)).amount == 5
    with pytest.raises(hookline.Reject) as rejected:
        quality.process(event(kind="refund"))
    assert (rejected.value.reason, rejected.value.stage) == (
        "a refund of 0 refunds nothing", "quality.sanity")
    with pytest.raises(hookline.Drop):
        quality.process(event(tags=["bot"]))

    report, db = run_events(tmp_path, quality, [
        event(event_id="a"), event(event_id="b", kind="refund"), event(event_id="c", tags=["bot"])])
    assert (report.accepted, report.dead_lettered, report.dropped) == (1, 1, 1)
    assert rows(db, "SELECT reason, stage, plugin, line FROM dead_letters") == [
        ("a refund of 0 refunds nothing", "quality.sanity", "quality", 2)]


def test_enrich_example_tidies_tags() -> None:
    tidy = pipeline(("tidy", load_example("hooks/enrich.py")))
    assert tidy.process(event(tags=[" Promo", "promo", "VIP", ""])).tags == ["promo", "vip"]


def test_score_example_adds_a_field_and_sets_it(tmp_path: Path) -> None:
    triage = pipeline(("triage", load_example("hooks/score.py")))
    assert "priority" in triage.event_class.__fields__
    assert triage.process(event(kind="refund", amount=1500)).priority == 3
    assert triage.process(event(kind="purchase", amount=1000)).priority == 1
    assert triage.process(event()).priority == 0
    _, db = run_events(tmp_path, triage, [event(kind="refund", amount=5)])
    assert rows(db, "SELECT priority FROM events") == [(2,)]


def test_replace_example_returns_a_new_event() -> None:
    privacy = pipeline(("privacy", load_example("hooks/replace.py")))
    given = privacy.make_event(event(properties={"email": "a@example.com", "page": "/"}))
    result = privacy.process(given)
    assert result is not given and type(result) is type(given)
    assert result.user_id != "u1" and len(result.user_id) == 16
    assert result.properties == {"page": "/"}


def test_async_example_is_awaited() -> None:
    geo = pipeline(("geo", load_example("hooks/async_enrich.py")))
    assert geo.process(event(user_id="u1", tags=["web"])).tags == ["web", "country:NO"]
    assert geo.process(event(user_id="u9")).tags == []


def test_wrapper_example_sees_every_outcome() -> None:
    timing = load_example("hooks/wrapper.py")
    wrapped = pipeline(("timing", timing.timer), ("quality", load_example("hooks/validate.py")))
    wrapped.process(event())
    for bad in (event(kind="refund"), event(tags=["bot"])):
        with contextlib.suppress(hookline.Reject, hookline.Drop):
            wrapped.process(bad)
    assert timing.timer.outcomes == Counter({"passed": 1, "Reject": 1, "Drop": 1})
    assert timing.timer.total_ns > 0


def test_event_fields_example_extends_the_schema_and_the_table(tmp_path: Path) -> None:
    geo = pipeline(("geo", load_example("hooks/event_fields.py")))
    assert {"country", "session_id"} <= set(geo.event_class.__fields__)
    with pytest.raises(hookline.ValidationError) as invalid:
        geo.make_event(event(country="no"))
    assert invalid.value.fields == ["country"]
    _, db = run_events(tmp_path, geo, [event(country="NO"), event(event_id="e2")])
    assert rows(db, "SELECT country, session_id FROM events ORDER BY event_id") == [
        ("NO", None), (None, None)]


def test_flags_example_gates_its_stage_for_a_stable_share_of_users() -> None:
    from hookline import flags
    from hookline.flags import bucket

    name = "ranking.boost_new_users"
    boost = pipeline(("ranking_exp", load_example("hooks/flags.py")))
    users = [f"u{n}" for n in range(500)]

    def boosted() -> set[str]:
        return {user for user in users
                if "boosted" in boost.process(event(user_id=user, tags=["new_user"])).tags}

    assert boosted() == {user for user in users if bucket(name, user) < 0.1}
    assert 25 < len(boosted()) < 75
    with flags.enabled(name):
        assert boosted() == set(users)
    with flags.disabled(name):
        assert boosted() == set()
    row = next(row for row in boost.flags.describe() if row["name"] == name)
    assert (row["owner"], row["value"], row["source"]) == ("ranking_exp", 0.1, "default")


def test_configure_example_receives_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "hookline.toml").write_text("batch_size = 250\n", encoding="utf-8")
    configure = load_example("hooks/configure.py")
    config = load_config(tmp_path / "hookline.toml", env={})
    pipeline(("batching", configure.watcher), config=config)
    assert configure.watcher.batch_size == 250
    assert configure.watcher.config_source == str(tmp_path / "hookline.toml")


def test_run_start_example_announces_the_run(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    announce = pipeline(("announce", load_example("hooks/run_start.py")))
    report, db = run_events(tmp_path, announce, [event()])
    assert f"run {report.run_id}: 1 input(s) into {db}\n" in capsys.readouterr().err


def test_run_end_example_adds_a_report_section(tmp_path: Path) -> None:
    quality = pipeline(("quality", load_example("hooks/run_end.py")))
    report, db = run_events(tmp_path, quality, [event(), event(event_id="e2", ts=0)])
    section = {"accepted_share": 0.5, "most_dead_letters_from": "schema"}
    assert report.sections["quality"] == section
    assert "[quality]" in report.format()
    stored = json.loads(rows(db, "SELECT report FROM runs")[0][0])
    assert stored["sections"]["quality"] == section


def test_event_rejected_example_sees_plugin_dead_letters_only(tmp_path: Path) -> None:
    rejections = load_example("hooks/event_rejected.py")
    watched = pipeline(("alerts", rejections.log), ("quality", load_example("hooks/validate.py")))
    report, _ = run_events(tmp_path, watched, [
        event(event_id="a"), event(event_id="b", kind="refund"), event(event_id="c", ts=0),
        event(event_id="d", tags=["bot"]), "not json"])
    assert report.dead_lettered == 3
    assert rejections.log.entries == [("quality.sanity", "a refund of 0 refunds nothing", 2)]


def test_stage_error_example_logs_under_both_policies(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    with hookline.Registry().activate():

        class Broken(hookline.Stage, phase="enrich", name="broken"):
            def process(self, event: hookline.Event) -> None:
                raise KeyError("sku")

        errors = load_example("hooks/stage_error.py")
        caplog.set_level(logging.WARNING, logger="stage-errors")
        skipping = pipeline(("errors", errors), ("shop", Broken),
                            config=Config(error_policy={"shop": "skip-plugin"}))
        assert skipping.process(event()).event_id == "e1"
        report, _ = run_events(tmp_path, pipeline(("errors", errors), ("shop", Broken)),
                               [event()])
    assert report.dead_lettered == 1
    assert [record.getMessage() for record in caplog.records] == [
        "shop.broken raised KeyError('sku')"] * 2


def test_batch_committed_example_follows_each_batch(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = Config(batch_size=2)
    progress = pipeline(("progress", load_example("hooks/batch_committed.py")),
                        ("quality", load_example("hooks/validate.py")), config=config)
    run_events(tmp_path, progress, [event(event_id="a"), event(event_id="b", kind="refund"),
                                    event(event_id="c"), "not json", event(event_id="d")], config)
    said = [line for line in capsys.readouterr().err.splitlines() if "dead-lettered" in line]
    assert said == ["2 events, 50% dead-lettered, slowest stage quality.sanity"] * 2 + [
        "1 events, 0% dead-lettered, slowest stage quality.sanity"]


def test_alert_example_passes_each_alert_on() -> None:
    example = load_example("hooks/alert.py")
    paging = pipeline(("pager", example.pager))
    alert = argparse.Namespace(run_id="4bfcf8976229", batch=3, message="dead-letter ratio 50.0%")
    paging.hook.hookline_alert(alert=alert)
    assert example.pager.pages == ["run 4bfcf8976229, batch 3: dead-letter ratio 50.0%"]


def test_the_aggregation_example_fills_its_table_across_batches_and_runs(tmp_path: Path) -> None:
    lines = [event(event_id=f"a{n}", currency="EUR" if n % 3 else "USD", amount=float(n))
             for n in range(10)]
    config = Config(batch_size=4)  # three batches, each its own partial
    fx = pipeline(("fx", load_example("hooks/aggregations.py")))
    report, db = run_events(tmp_path, fx, lines[:7], config)
    assert report.accepted == 7
    run_events(tmp_path, fx, lines[7:], config)
    assert sorted(rows(db, "SELECT * FROM agg_by_currency")) == [
        ("EUR", 6, 1 + 2 + 4 + 5 + 7 + 8, 8.0), ("USD", 4, 0 + 3 + 6 + 9, 9.0)]


def test_sources_example_reads_its_url_scheme_and_resumes(tmp_path: Path) -> None:
    memory = load_example("hooks/sources.py")
    memory.EVENTS["orders"] = [event(event_id=f"o{n}", amount=n) for n in range(3)]
    db = str(tmp_path / "hookline.db")
    first = hookline.run(["memory://orders"], db=db, config=Config(), pipeline=pipeline(
        ("memory", memory)))
    memory.EVENTS["orders"].append(event(event_id="o3", ts=0))  # a bad one, appended
    second = hookline.run(["memory://orders"], db=db, config=Config(), pipeline=pipeline(
        ("memory", memory)))
    assert (first.accepted, second.read, second.dead_lettered) == (3, 1, 1)
    assert rows(Path(db), "SELECT event_id, amount FROM events ORDER BY event_id") == [
        ("o0", 0), ("o1", 1), ("o2", 2)]
    assert rows(Path(db), "SELECT line, stage, source FROM dead_letters") == [
        (4, "schema", "memory://orders")]


def test_the_guides_csv_source_reads_rows_as_events(tmp_path: Path) -> None:
    csv_source = load_example("csv_source.py")
    table = tmp_path / "orders.csv"
    table.write_text('event_id,user_id,kind,ts,amount\r\n'
                     'c1,u1,purchase,1767225600000,12.5\r\n'
                     '\r\n'
                     'c2,u2,"a ""quoted""\nkind",1767225600001,\r\n'
                     'c3,u3,view,1767225600002,1,extra\r\n', encoding="utf-8")
    report = hookline.run([str(table)], db=str(tmp_path / "hookline.db"), config=Config(),
                          pipeline=pipeline(("csv", csv_source)))
    assert (report.accepted, report.dead_lettered) == (2, 1)
    assert rows(tmp_path / "hookline.db", "SELECT event_id, kind, amount FROM events") == [
        ("c1", "purchase", 12.5), ("c2", 'a "quoted"\nkind', 0)]
    [(line, reason)] = rows(tmp_path / "hookline.db", "SELECT line, reason FROM dead_letters")
    assert line == 6 and "column 6: is not a field of the schema (got 'extra')" in reason


def test_sinks_example_is_chosen_by_its_scheme(tmp_path: Path) -> None:
    # (tests/sinks/test_example_sink.py runs the whole conformance kit against it)
    store = pipeline(("jsonfile", load_example("hooks/sinks.py")))
    lines = [event(event_id=f"j{n}", amount=float(n)) for n in range(3)] + ["not json"]
    source = tmp_path / "in.jsonl"
    source.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                              for line in lines), encoding="utf-8")
    url = f"jsonfile://{tmp_path}/db.json"
    report = hookline.run([str(source)], db=url, config=Config(), pipeline=store)
    assert (report.accepted, report.dead_lettered) == (3, 1)
    data = json.loads((tmp_path / "db.json").read_text(encoding="utf-8"))
    assert sorted(data["events"]) == ["j0", "j1", "j2"]
    assert data["tables"]["agg_by_user"]  # the aggregates, in the batch's commit
    assert hookline.run([str(source)], db=url, config=Config(), pipeline=store).read == 0


def test_reserved_hook_examples_are_accepted_and_callable(capsys: pytest.CaptureFixture[str],
                                                          ) -> None:
    parser = argparse.ArgumentParser(prog="hookline")
    commands = pipeline(("hello", load_example("hooks/commands.py")))
    commands.hook.hookline_commands(cli=parser.add_subparsers())
    arguments = parser.parse_args(["hello", "Ada"])
    assert arguments.handler(arguments) == 0
    assert capsys.readouterr().out == "hello, Ada\n"


def test_stateful_example_keeps_its_counts_across_runs(tmp_path: Path) -> None:
    buy = [event(event_id=f"p{n}", kind="purchase", ts=1_767_225_600_000 + n)
           for n in range(5)]
    first, db = run_events(tmp_path, pipeline(("limits", load_example("stateful.py"))),
                           buy[:2])
    second, _ = run_events(tmp_path, pipeline(("limits", load_example("stateful.py"))),
                           buy[2:])
    assert (first.dead_lettered, second.accepted, second.dead_lettered) == (0, 1, 2)
    assert rows(db, "SELECT reason FROM dead_letters ORDER BY line") == [
        ("purchase number 4 of u1 today",), ("purchase number 5 of u1 today",)]
    assert rows(db, "SELECT stage, key, value FROM stage_state") == [
        ("limits.daily_limit", "u1:20454", "5")]


def test_query_example_reads_a_real_database() -> None:
    with scratch_folder() as folder:
        run_events(folder, pipeline(), [event(), event(event_id="e2", kind="purchase",
                                                       amount=12.5), "{broken"])
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            runpy.run_path(str(EXAMPLES / "query.py"))
    assert out.getvalue().splitlines() == [
        "kind          events       amount", "click              1          0.0",
        "purchase           1         12.5", "dead letters by stage", "parse              1"]


def test_config_in_code_example_reads_the_folder_and_builds_configs() -> None:
    with scratch_folder() as folder:
        (folder / "hookline.toml").write_text("batch_size = 10\n", encoding="utf-8")
        namespace = runpy.run_path(str(EXAMPLES / "config_in_code.py"))
    assert namespace["from_files"].batch_size == 10
    in_code, strict = namespace["in_code"], namespace["strict"]
    assert in_code.selects("fraud") and not in_code.selects("monitoring")
    assert strict.strict and not in_code.strict
    assert in_code.settings_for("fraud") == {"blocked": ["XTS", "XXX", "XAU"]}


# -- 7. the plugin of the plugin guide ------------------------------------------------------------


def test_plugin_guide_tests_pass(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run the guide's plugin tests as its author would, against the source tree."""
    monkeypatch.syspath_prepend(str(PLUGIN / "src"))
    monkeypatch.delitem(sys.modules, "hookline_review", raising=False)
    spec = importlib.util.spec_from_file_location("test_review_guide",
                                                  PLUGIN / "tests" / "test_review.py")
    assert spec is not None and spec.loader is not None
    tests = importlib.util.module_from_spec(spec)
    with hookline.Registry().activate():
        spec.loader.exec_module(tests)
        ran = 0
        for name, function in vars(tests).items():
            if name.startswith("test_") and callable(function):
                wants = inspect.signature(function).parameters
                folder = tmp_path / name
                folder.mkdir()
                function(**({"tmp_path": folder} if "tmp_path" in wants else {}))
                ran += 1
    assert ran >= 5
    sys.modules.pop("hookline_review", None)


@pytest.mark.integration
def test_plugin_guide_plugin_installs_lists_and_runs(tmp_path: Path) -> None:
    """pip install the guide's plugin, then `hookline plugins` and `hookline run` as shown."""
    source = tmp_path / "hookline-review"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--disable-pip-version-check", "--target", str(target), str(source)],
                   check=True, timeout=600)
    env = {**os.environ, "PYTHONPATH": str(target),
           "HOOKLINE_CACHE_DIR": str(tmp_path / "cache"), "HOOKLINE_PLUGINS": "review"}
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(PLUGIN / "hookline.toml", work / "hookline.toml")  # limit = 5000

    def hookline_cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "hookline.cli", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    listing = hookline_cli("plugins")
    assert re.search(r"^review\s+loaded\s+hookline-review 0\.1\.0\s+hookline_review$", listing,
                     re.M), listing
    assert re.search(r"^\s+validate\s+#1\s+review\.big_spender$", listing, re.M), listing
    assert "    hooks: hookline_event_fields, hookline_validate\n" in listing, listing

    (work / "events.jsonl").write_text("".join(
        json.dumps(event(event_id=f"e{amount}", kind="purchase", amount=amount)) + "\n"
        for amount in (10, 3_000, 6_000)), encoding="utf-8")
    hookline_cli("run", "events.jsonl", "--db", "hookline.db")
    db = work / "hookline.db"
    assert rows(db, "SELECT line, reason, distribution, version FROM dead_letters "
                    "WHERE plugin = 'review'") == [
        (3, "amount 6000 is over the limit of 5000", "hookline-review", "0.1.0")]
    assert rows(db, "SELECT event_id, amount, review FROM events WHERE review IS NOT NULL") == [
        ("e3000", 3000, "amount 3000 is over half the limit")]


# -- 8. the site builds ---------------------------------------------------------------------------


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    assert importlib.util.find_spec("mkdocs") is not None, "mkdocs is missing: tox installs it"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


if __name__ == "__main__":
    if sys.argv[1:] == ["--sync"]:
        sync()
    else:
        print(__doc__)
