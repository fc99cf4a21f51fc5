"""Each kind of contract violation, in a plugin installed as a wheel: refused at load with its
message while the other plugins run, and listed by ``hookline check``, which exits 1."""

from __future__ import annotations

import importlib
import json
import re
import textwrap
from pathlib import Path

from hookline import contracts
from hookline.testing import database_content

from .conftest import Env, sorted_rows
from .wheels import make_wheel

#: One plugin source per violation code, each otherwise fine: those of the unit tests
#: (tests/test_contracts.py), imported by name so that mypy does not check that module too.
ONE_EACH: dict[str, str] = importlib.import_module("test_contracts").ONE_EACH

EVENTS = [
    {"event_id": f"e{i}", "user_id": f"u{i % 7}", "kind": "purchase" if i % 3 else "view",
     "ts": 1_700_000_000_000 + i, "amount": float(i), "currency": "EUR" if i % 5 else "USD"}
    for i in range(200)
]

#: The plugin that satisfies the contract. Its after= names a plugin that is refused: an
#: installed plugin counts as known even when it fails to load.
TAGGER = '''
import hookline

class NoUsd(hookline.Stage, phase="validate", name="no_usd", after="missing_process"):
    def process(self, event):
        if event.currency == "USD":
            raise hookline.Reject("tagger: USD refused")

class Tag(hookline.Stage, phase="enrich", name="tag"):
    def process(self, event):
        event.tags = [*event.tags, "tagged"]
'''

_WRAP = "(see 'Phase wrappers' in the hook reference)"
_RETURN = ("return None after assigning fields, or return a replacement event (or raise "
           "hookline.Reject / hookline.Drop)")

#: Per code: the stage at fault (None for a hook function), text of the line the violation
#: points at, and the message, worded as in docs/contracts.md for the names of ONE_EACH.
EXPECTED: dict[str, tuple[str | None, str, str]] = {
    "missing-process": (
        "velocity", "class Velocity",
        "Velocity defines no process(self, event) method (it inherits Stage.process, which "
        "does nothing): define process(self, event) -> Event | None ('proces' looks like a "
        "misspelling)"),
    "process-not-callable": (
        "t", "class T",
        "T.process is int 1, not a method; define process(self, event) -> Event | None"),
    "wrong-parameters": (
        "velocity", "def process(self, evt)",
        "Velocity.process(self, evt): the parameter is named 'evt'; name it 'event' (pluggy "
        "passes hook arguments by name: hookline_validate(event))"),
    "annotation-mismatch": (
        "t", "def process(self, event) -> int",
        f"T.process is annotated -> int, but hookline_score returns Event | None: {_RETURN}"),
    "unknown-hook": (
        None, "@hookline.hookimpl",
        "hookline_scor is marked @hookimpl, but hookline has no hook 'hookline_scor'; did you "
        "mean 'hookline_score'?"),
    "unmarked-hook": (
        None, "def hookline_score",
        "hookline_score is named like the hook hookline_score but is not marked "
        "@hookline.hookimpl, so hookline never calls it: decorate it with @hookline.hookimpl"),
    "unexpected-generator": (
        "t", "def process(self, event)",
        "T.process is a generator function (it contains yield), but only "
        f"@hookimpl(wrapper=True) implementations yield: {_RETURN}"),
    "wrapper-not-generator": (
        None, "@hookline.hookimpl(wrapper=True)",
        "hookline_score is declared @hookimpl(wrapper=True) but is not a generator function; "
        f"it must yield exactly once: result = yield; return result {_WRAP}"),
    "hookwrapper-on-phase": (
        None, "@hookline.hookimpl(hookwrapper=True)",
        "hookline_score uses old-style @hookimpl(hookwrapper=True), which hookline's phases do "
        f"not support; use @hookimpl(wrapper=True): result = yield; return result {_WRAP}"),
    "unknown-phase": (
        "t", "class T",
        "T declares phase='late', which is not a phase; did you mean 'validate'? (phases, in "
        "order: validate, enrich, score)"),
    "unknown-flag": (
        "t", "class T",
        "T is gated by flag='nope', which no plugin declares (declared: none); declare it in a "
        "hookline_flags() hook or fix the name"),
    "unknown-plugin": (
        "t", "class T",
        "T declares after='nobody', which names no installed plugin or stage"),  # nor a near one
}


def _name(code: str) -> str:
    return code.replace("-", "_")


def _line(source: str, text: str) -> int:
    """The number of the first line of the installed (dedented) ``source`` containing ``text``."""
    lines = textwrap.dedent(source).splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def _wheels(folder: Path) -> list[Path]:
    wheels = [make_wheel(folder, "plugin-tagger", {"plugin_tagger/__init__.py": TAGGER},
                         {"tagger": "plugin_tagger"})]
    for code, source in ONE_EACH.items():
        wheels.append(make_wheel(folder, f"plugin-{code}",
                                 {f"plugin_{_name(code)}/__init__.py": source},
                                 {_name(code): f"plugin_{_name(code)}"}, version="2.0"))
    return wheels



def test_each_violation_installed_as_a_wheel_is_refused_and_listed_by_check(
    env: Env, tmp_path: Path
) -> None:
    assert sorted(ONE_EACH) == sorted(EXPECTED) == sorted(contracts.CODES)
    (env.work / "events.jsonl").write_text("\n".join(map(json.dumps, EVENTS)) + "\n")
    env.pip("install", "--no-deps", *map(str, _wheels(tmp_path)))
    site = Path(env.run(env.python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                          "['purelib'])").stdout.strip())
    assert site.name == "site-packages" and site.is_relative_to(env.path)

    def located(code: str) -> tuple[str, int]:
        """Where the violation of ``code`` is: the installed file, and the line it names."""
        filename = site / f"plugin_{_name(code)}" / "__init__.py"
        lineno = _line(ONE_EACH[code], EXPECTED[code][1])
        installed = filename.read_text().splitlines()[lineno - 1]
        assert EXPECTED[code][1] in installed, (code, installed)
        return str(filename), lineno

    # 1. hookline plugins: each violating plugin is refused, with its one violation
    listing = {p["name"]: p for p in json.loads(
        env.hookline("plugins", "--format", "json").stdout)["plugins"]}
    assert sorted(listing) == sorted(["tagger", *map(_name, ONE_EACH)])
    tagger = listing.pop("tagger")
    assert (tagger["status"], tagger["error"], tagger["violations"]) == ("loaded", None, [])
    assert [s["name"] for s in tagger["stages"]] == ["tagger.no_usd", "tagger.tag"]
    for code, (stage, _, message) in EXPECTED.items():
        plugin = listing[_name(code)]
        filename, lineno = located(code)
        assert (plugin["status"], plugin["distribution"], plugin["version"]) == (
            "failed", f"plugin-{code}", "2.0"), code
        assert plugin["stages"] == [] and plugin["hooks"] == [], code
        [violation] = plugin["violations"]
        assert violation == {"plugin": _name(code), "code": code, "message": message,
                             "filename": filename, "lineno": lineno, "stage": stage}
        subject = f"{_name(code)}.{stage}" if stage else _name(code)
        assert plugin["error"] == ("breaks the stage contract (1 violation):\n  "
                                   f"{filename}:{lineno}: {subject}: {message} [{code}]")

    # 2. hookline run refuses to start; allowed, the good plugin runs and no refused
    # plugin's stage does, and the report names the missing ones first
    refused = env.hookline("run", "events.jsonl", "--db", "all.db", check=False)
    assert refused.returncode == 5
    assert all(f"{_name(code)} (plugin-{code} 2.0)" in refused.stderr for code in ONE_EACH)
    result = env.hookline("run", "events.jsonl", "--db", "all.db", "--allow-broken-plugins")
    assert result.returncode == 0
    head = result.stdout.partition("\n  accepted")[0].splitlines()  # before the counts
    for code in ONE_EACH:
        assert any(line.startswith(f"  MISSING plugin {_name(code)} (plugin-{code} 2.0): "
                                   "failed to load") and "breaks the stage contract" in line
                   for line in head), code
    usd = sum(event["currency"] == "USD" for event in EVENTS)
    db = env.work / "all.db"
    dead = "SELECT DISTINCT reason, stage, plugin, distribution FROM dead_letters"
    assert sorted_rows(db, dead) == [
        ("tagger: USD refused", "tagger.no_usd", "tagger", "plugin-tagger")]
    assert sorted_rows(db, "SELECT count(*), tags FROM events GROUP BY tags") == [
        (len(EVENTS) - usd, '["tagged"]')]
    [report] = (json.loads(text) for (text,) in sorted_rows(db, "SELECT report FROM runs"))
    assert (report["read"], report["accepted"], report["dead_lettered"]) == (
        len(EVENTS), len(EVENTS) - usd, usd)
    assert sorted(report["stages"]) == ["tagger.no_usd", "tagger.tag"]
    assert [p["name"] for p in report["plugins"] if p["status"] == "loaded"] == ["tagger"]
    env.hookline("run", "events.jsonl", "--db", "alone.db", env={"HOOKLINE_PLUGINS": "tagger"})
    assert database_content(db) == database_content(env.work / "alone.db")

    # 3. hookline check: every violation, with distribution, version, file and line; exit 1
    check = env.hookline("check", check=False)
    assert check.returncode == 1, check.stdout + check.stderr
    lines = check.stdout.splitlines()
    assert re.fullmatch(r"tagger +ok +plugin-tagger 1\.0\.0 +plugin_tagger",
                        next(line for line in lines if line.startswith("tagger ")))
    for code, (stage, _, message) in EXPECTED.items():
        name = _name(code)
        filename, lineno = located(code)
        subject = f"{name}.{stage}" if stage else name
        header = lines.index(next(line for line in lines if line.startswith(f"{name} ")))
        assert re.fullmatch(rf"{name} +violations +plugin-{code} 2\.0 +plugin_{name}",
                            lines[header]), lines[header]
        assert lines[header + 1] == (
            f"    {filename}:{lineno}: {subject} (plugin-{code} 2.0): {message} [{code}]")
    assert sorted(re.findall(r"\[([a-z-]+)\]$", check.stdout, re.M)) == sorted(contracts.CODES)
    assert "error:" not in check.stdout  # every plugin imported; none failed another way
    assert lines[-1] == "hookline check: 12 of 13 plugin(s) failed: 12 contract violations"

    # 4. hookline check --format json: the same, per distribution
    json_check = env.hookline("check", "--format", "json", check=False)
    assert json_check.returncode == 1
    checked = {p["distribution"]: p for p in json.loads(json_check.stdout)["plugins"]}
    assert sorted(checked) == sorted(["plugin-tagger", *(f"plugin-{c}" for c in ONE_EACH)])
    assert (checked["plugin-tagger"]["status"], checked["plugin-tagger"]["violations"]) == (
        "ok", [])
    for code, (stage, _, message) in EXPECTED.items():
        entry = checked[f"plugin-{code}"]
        filename, lineno = located(code)
        assert (entry["name"], entry["version"], entry["module"], entry["status"]) == (
            _name(code), "2.0", f"plugin_{_name(code)}", "violations")
        assert entry["violations"] == [{"plugin": _name(code), "code": code, "message": message,
                                        "filename": filename, "lineno": lineno,
                                        "stage": stage}]
