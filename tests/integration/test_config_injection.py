"""Behaviours injected by configuration onto a contrib stage, with no edit to its package.

hookline-fraud is built as a wheel from contrib/fraud and pip-installed, untouched, into a
fresh environment. A ``[behaviors]`` table in the working folder's ``hookline.toml`` then
wraps ``fraud.blocked_currency`` in ``timed()`` and ``logged(level='WARNING')``: the run
counts and times every call of the stage and logs one record per call, ``hookline plugins
--format json`` lists the behaviours on that stage (and on no other), and the package's files
are byte for byte what pip installed.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, Env
from .wheels import make_wheel

STAGE = "fraud.blocked_currency"
#: Every stage of hookline-fraud, the first one the events meet first: ``fraud.*`` selects them.
FRAUD_STAGES = (STAGE, "fraud.blocked_user", "fraud.amount_limit", "fraud.velocity",
                "fraud.sequence")

#: 60 events the schema accepts, every fourth one paid in a currency hookline-fraud blocks;
#: then a line that is not JSON and an event with a negative amount, which are dead-lettered
#: before any stage sees them.
CURRENCIES = ("EUR", "USD", "SEK", "XTS", "EUR", "USD", "NOK", "XXX")
VALID = [
    {"event_id": f"e{i}", "user_id": f"u{i % 9}", "kind": "purchase" if i % 3 else "view",
     "ts": 1_700_000_000_000 + i, "amount": float(i), "currency": CURRENCIES[i % 8]}
    for i in range(60)
]
BLOCKED = Counter(event["currency"] for event in VALID if event["currency"] in ("XTS", "XXX"))
LINES = [json.dumps(event) for event in VALID] + [
    "{not json",
    json.dumps({"event_id": "bad", "user_id": "u1", "kind": "view", "ts": 1, "amount": -1}),
]

#: A plugin whose name starts like fraud's: ``fraud.*`` must not select its stage.
NEIGHBOUR = """
import hookline

class Watch(hookline.Stage, phase="validate", name="watch"):
    def process(self, event):
        return None
"""

BEHAVIORS = """\
[behaviors]
"fraud.*" = ["timed()", "logged(level='WARNING')"]
"""

#: What ``logged`` writes per call, as the hookline command logs it on stderr
#: (``WARNING hookline.behaviors: fraud.blocked_currency ok in 0.004 ms``).
LOG_LINE = re.compile(r"^WARNING hookline\.behaviors: (\S+) (ok|rejected|error) in "
                      r"\d+\.\d{3} ms(?:: (.*))?$", re.M)


@pytest.fixture(scope="session")
def fraud_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hookline-fraud built as a wheel from a copy of contrib/fraud (the checkout stays clean
    of build/ and egg-info folders), once per test session."""
    source = tmp_path_factory.mktemp("fraud-src") / "fraud"
    shutil.copytree(ROOT / "contrib" / "fraud", source, ignore=shutil.ignore_patterns(
        "build", "dist", "*.egg-info", "__pycache__", ".*_cache"))
    out = tmp_path_factory.mktemp("fraud-wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--disable-pip-version-check", "-w", str(out), str(source)], check=True)
    return next(out.glob("hookline_fraud-*.whl"))


def _install(env: Env, fraud_wheel: Path, tmp_path: Path) -> Path:
    """hookline-fraud and the neighbour plugin installed; the events written; their path."""
    neighbour = make_wheel(tmp_path, "plugin-fraudwatch",
                           {"plugin_fraudwatch/__init__.py": NEIGHBOUR},
                           {"fraudwatch": "plugin_fraudwatch"})
    env.pip("install", str(fraud_wheel), str(neighbour))
    events = env.work / "events.jsonl"
    events.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return events


def _package_digest(env: Env) -> dict[str, str]:
    """sha256 of every file of the installed hookline_fraud package (bytecode caches aside)."""
    folder = Path(env.run(env.python, "-c", "import hookline_fraud, os; "
                          "print(os.path.dirname(hookline_fraud.__file__))").stdout.strip())
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts}


def _stages(env: Env) -> dict[str, list[dict[str, str]]]:
    """``hookline plugins --format json``: each loaded stage's behaviours, by stage name."""
    listing = json.loads(env.hookline("plugins", "--format", "json").stdout)
    assert {p["name"]: p["status"] for p in listing["plugins"]} == {
        "fraud": "loaded", "fraudwatch": "loaded"}
    return {stage["name"]: stage["behaviors"]
            for plugin in listing["plugins"] for stage in plugin["stages"]}


def _run(env: Env, events: Path, name: str) -> tuple[dict[str, Any], str, str]:
    """A run's JSON report, its --metrics-file, and its stderr."""
    done = env.hookline("run", str(events), "--db", f"{name}.db", "--format", "json",
                        "--metrics-file", f"{name}.prom")
    return (json.loads(done.stdout), (env.work / f"{name}.prom").read_text(encoding="utf-8"),
            done.stderr)


def _outcomes(report: dict[str, Any]) -> tuple[Any, ...]:
    return (report["read"], report["accepted"], report["dropped"], report["dead_lettered"],
            report["dead_letter_reasons"], report["dead_letters_by_stage"])


def test_behaviours_from_config_wrap_the_installed_fraud_stage_and_plugins_lists_them(
    env: Env, fraud_wheel: Path, tmp_path: Path
) -> None:
    events = _install(env, fraud_wheel, tmp_path)
    installed = _package_digest(env)

    # Without configuration: no behaviour on any stage, nothing timed, nothing logged.
    assert _stages(env) == {**{stage: [] for stage in FRAUD_STAGES}, "fraudwatch.watch": []}
    plain, plain_metrics, plain_stderr = _run(env, events, "plain")
    assert plain["read"] == len(LINES) and plain["balanced"]
    assert plain["dead_letters_by_stage"][STAGE] == sum(BLOCKED.values())
    assert "timed" not in plain["sections"]
    assert not [line for line in plain_metrics.splitlines()  # HELP/TYPE headers only
                if line.startswith("hookline_timed")]
    assert LOG_LINE.findall(plain_stderr) == []

    # The operator's hookline.toml, and nothing else, changes.
    config = env.work / "hookline.toml"
    config.write_text(BEHAVIORS, encoding="utf-8")
    stages = _stages(env)
    assert stages["fraudwatch.watch"] == [], "'fraud.*' does not select fraudwatch.watch"
    injected = stages[STAGE]
    # Outermost first, each with where it came from: this file's [behaviors] table, pattern.
    where = f"{config.resolve()} [behaviors] 'fraud.*'"
    assert injected == [{"spec": "timed()", "source": where},
                        {"spec": "logged(level='WARNING')", "source": where}]
    assert all(stages[stage] == injected for stage in FRAUD_STAGES)

    wrapped, metrics, stderr = _run(env, events, "wrapped")
    # What the stage decides is unchanged: the same events accepted, the same dead letters.
    assert _outcomes(wrapped) == _outcomes(plain)
    # timed(): every call counted (each schema-valid event once; Reject is a call, not an
    # error), under the stage's qualified name, in the report and in the metrics file.
    timed = wrapped["sections"]["timed"]
    assert sorted(timed) == sorted(FRAUD_STAGES)
    assert (timed[STAGE]["calls"], timed[STAGE]["errors"]) == (len(VALID), 0)
    assert all(timed[stage]["calls"] == len(VALID) - sum(BLOCKED.values())  # the rest go on
               for stage in FRAUD_STAGES[1:])
    assert timed[STAGE]["p50_us"] > 0 and timed[STAGE]["p99_us"] >= timed[STAGE]["p50_us"]
    assert f'hookline_timed_calls_total{{stage="{STAGE}"}} {len(VALID)}\n' in metrics
    assert f'hookline_timed_errors_total{{stage="{STAGE}"}} 0\n' in metrics
    assert re.search(rf'^hookline_timed_latency_seconds_count{{stage="{STAGE}"}} {len(VALID)}$',
                     metrics, re.M)
    assert "fraudwatch" not in "".join(line for line in metrics.splitlines(keepends=True)
                                       if line.startswith("hookline_timed"))
    # logged(level='WARNING'): one record per call, with the outcome and the reject reason.
    records = LOG_LINE.findall(stderr)
    assert {stage for stage, _, _ in records} == set(FRAUD_STAGES)
    assert Counter(outcome for stage, outcome, _ in records if stage == STAGE) == {
        "ok": len(VALID) - sum(BLOCKED.values()), "rejected": sum(BLOCKED.values())}
    assert Counter(detail for _, outcome, detail in records if outcome == "rejected") == {
        f"blocked_currency: currency {code!r} is blocked": count
        for code, count in BLOCKED.items()}

    # The package is what pip installed, byte for byte; without the file, the stage is bare.
    assert _package_digest(env) == installed
    config.unlink()
    assert _stages(env) == {**{stage: [] for stage in FRAUD_STAGES}, "fraudwatch.watch": []}


#: A bad spec per kind of mistake, and what the error must say after
#: "hookline: configuration error: <path>/hookline.toml [behaviors] ".
BAD_SPECS = [
    ('"fraud.*" = ["timed()", "retyr(attempts=3)"]',
     "'fraud.*' #2: unknown behaviour 'retyr' in 'retyr(attempts=3)'; did you mean 'retry'? "
     "(known: cached, logged, retry, timed, timeout, traced)"),
    ('"fraud.*" = ["timeout(seconds=-1)"]',
     "'fraud.*' #1: timeout: seconds=-1 is invalid (must be a number of seconds > 0) in "
     "'timeout(seconds=-1)'"),
    ('"fraud.blocked_currency" = [{ retry = { atempts = 3 } }]',
     "'fraud.blocked_currency' #1: retry: unknown argument atempts=3 in {'retry': "
     "{'atempts': 3}}; did you mean 'attempts'? (retry takes attempts, backoff, jitter, on)"),
    ('"*" = ["retry(attempts=open(\'x\'))"]',
     "'*' #1: retry: attempts=open('x') in \"retry(attempts=open('x'))\" is not a literal; a "
     "spec takes numbers, strings, True/False/None, lists, tuples and dicts"),
    ('"fraud" = ["logged(level=\'LOUD\')"]',
     "'fraud' #1: logged: level='LOUD' is invalid (must be a level name (DEBUG, INFO, "
     "WARNING, ERROR) or a number >= 0) in \"logged(level='LOUD')\""),
]


def test_a_bad_behaviour_spec_fails_plugins_and_run_before_any_event_naming_it(
    env: Env, fraud_wheel: Path, tmp_path: Path
) -> None:
    events = _install(env, fraud_wheel, tmp_path)
    config = env.work / "hookline.toml"
    for number, (line, message) in enumerate(BAD_SPECS):
        config.write_text(f"[behaviors]\n{line}\n", encoding="utf-8")
        expected = (f"hookline: configuration error: {config.resolve()} [behaviors] "
                    f"{message}\n")
        listing = env.hookline("plugins", "--format", "json", check=False)
        assert (listing.returncode, listing.stdout, listing.stderr) == (1, "", expected), line
        db = env.work / f"bad{number}.db"
        run = env.hookline("run", str(events), "--db", str(db), check=False)
        assert (run.returncode, run.stdout, run.stderr) == (1, "", expected), line
        assert not db.exists(), "the configuration is checked before any event is read"
