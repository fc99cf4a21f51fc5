"""Stage contracts: every kind of violation is found, named by code, explained, and located."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import hookline
from hookline import contracts
from hookline._discovery import EntryPointInfo
from hookline._loader import load_entry_points
from hookline._registry import StageInfo
from hookline.cli import main
from hookline.config import Config
from hookline.contracts import StageContract, Violation, verify
from hookline.errors import PluginError

ROOT = Path(__file__).resolve().parent.parent

MakeModule = Callable[[str, str], str]

GOOD = '''
from __future__ import annotations

import asyncio
import functools
from collections.abc import Generator, Mapping
from typing import Any

import hookline
from hookline import fields


def traced(function):
    @functools.wraps(function)
    def call(*args, **kwargs):
        return function(*args, **kwargs)
    return call


@hookline.hookimpl
def hookline_event_fields() -> dict[str, fields.Field[Any]]:
    return {"risk": fields.Number(minimum=0, optional=True)}


@hookline.hookimpl
def hookline_flags() -> list[dict[str, Any]]:
    return [{"name": "good.strict", "default": False}]


@hookline.hookimpl
def hookline_configure(config: Mapping[str, Any]) -> None:
    pass


@hookline.hookimpl(wrapper=True)
def hookline_score(event: hookline.Event) -> Generator[None, Any, Any]:
    return (yield)


@hookline.hookimpl(specname="hookline_run_end")
def summarize(run: Any, report: Any) -> None:
    pass


class Risk(hookline.Stage, phase="enrich", name="risk", after="fraud"):
    class Settings(hookline.Settings):
        factor = fields.Number(default=1.0)

    @traced
    def process(self, event: hookline.Event) -> None:
        event.risk = event.amount * self.settings.factor


class Strict(hookline.Stage, phase="validate", name="strict", flag="good.strict"):
    async def process(self, event: hookline.DefaultEvent) -> hookline.Event | None:
        await asyncio.sleep(0)
        return None


class Base(hookline.Stage, abstract=True):
    def process(self, event: Any, limit: int = 10) -> hookline.Event:
        return event


class Concrete(Base, phase="score", name="concrete"):
    pass
'''


def _module(make_module: MakeModule, name: str, source: str) -> ModuleType:
    make_module(name, source)
    return importlib.import_module(name)


def _line(source: str, text: str) -> int:
    """The line number of the first line of dedented ``source`` containing ``text``."""
    lines = textwrap.dedent(source).splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def _only(violations: list[Violation], code: str) -> Violation:
    assert [v.code for v in violations] == [code], "\n".join(map(str, violations))
    return violations[0]


def test_a_good_plugin_has_no_violations(
    make_module: MakeModule, registry: hookline.Registry
) -> None:
    module = _module(make_module, "hookline_good", GOOD)
    flags = contracts.flags_declared_by([module])
    assert flags == {"good.strict"}
    assert verify(module, declared_flags=flags, known_plugins={"fraud", "good"}) == []
    # and it runs: the contract describes what the pipeline really accepts
    pipeline = hookline.Pipeline.from_plugins([module])
    assert pipeline.process({"event_id": "e", "user_id": "u", "kind": "k", "ts": 1,
                             "amount": 2}).risk == 2


@pytest.mark.integration  # the integration env installs the contrib wheels
def test_the_contrib_plugins_satisfy_the_contract() -> None:
    import hookline_fraud as contrib
    assert verify(contrib) == []


# -- stages: process -----------------------------------------------------------------------------

MISSING = '''
import hookline

class Velocity(hookline.Stage, phase="validate", name="velocity"):
    def proces(self, event):
        pass
'''


def test_a_stage_without_process_is_missing_process(
    make_module: MakeModule, registry: hookline.Registry
) -> None:
    module = _module(make_module, "plugin_missing", MISSING)
    violation = _only(verify(module, plugin="fraud"), "missing-process")
    assert violation.plugin == "fraud"
    assert violation.stage == "velocity"
    assert violation.subject == "fraud.velocity"
    assert "Velocity defines no process(self, event) method" in violation.message
    assert "inherits Stage.process, which does nothing" in violation.message
    assert "'proces' looks like a misspelling" in violation.message
    assert violation.filename == module.__file__
    assert violation.lineno == _line(MISSING, "class Velocity")


def test_a_class_made_by_other_means_without_process(registry: hookline.Registry) -> None:
    class Handmade:  # not a Stage subclass: a __stage__ set by hand
        pass

    Handmade.__stage__ = StageInfo(Handmade, phase="enrich", name="handmade")  # type: ignore[attr-defined]
    violation = _only(verify(Handmade, plugin="x"), "missing-process")
    assert violation.message.startswith("Handmade defines no process(self, event) method: ")
    assert "inherits" not in violation.message
    assert violation.filename == __file__
    assert violation.lineno is not None


def test_a_process_that_is_not_callable(registry: hookline.Registry) -> None:
    class Velocity(hookline.Stage, phase="validate"):
        process = 42  # type: ignore[assignment]

    violation = _only(verify(Velocity), "process-not-callable")
    assert "Velocity.process is int 42, not a method" in violation.message
    assert "define process(self, event) -> Event | None" in violation.message


def test_an_unknown_phase_on_a_stage_made_by_other_means(registry: hookline.Registry) -> None:
    class Filter(hookline.Stage, phase="validate", name="filter"):
        def process(self, event: hookline.Event) -> None:
            pass

    Filter.__stage__.phase = "valdate"  # type: ignore[union-attr]
    violation = _only(verify(Filter), "unknown-phase")
    assert "declares phase='valdate', which is not a phase; did you mean 'validate'?" in (
        violation.message)
    assert "(phases, in order: validate, enrich, score)" in violation.message
    assert violation.lineno == Filter.process.__code__.co_firstlineno - 1  # the class line


# -- parameters ----------------------------------------------------------------------------------

PARAMETERS = '''
import hookline

class Velocity(hookline.Stage, phase="validate", name="velocity"):
    def process{signature}:
        pass
'''


@pytest.mark.parametrize(("signature", "message"), [
    ("(self, evt)", "Velocity.process(self, evt): the parameter is named 'evt'; name it "
                    "'event' (pluggy passes hook arguments by name: hookline_validate(event))"),
    ("(self, event, threshold)", "Velocity.process(self, event, threshold): parameter "
                                 "'threshold' is required, but hookline_validate(event) passes "
                                 "only the event: give it a default"),
    ("(self, event, *, a, b)", "parameters 'a', 'b' are required"),
    ("(self)", "Velocity.process(self) takes no event parameter; hookline calls it with the "
               "event, as hookline_validate(event)"),
    ("(self, *args)", "Velocity.process(self, *args) takes only *args/**kwargs; pluggy passes "
                      "hook arguments by name, so declare the parameter event"),
    ("(self, *, event)", "Velocity.process(self, *, event): event is keyword-only, but hookline "
                         "passes the event positionally"),
    ("(self, event=None)", "event has a default, so pluggy would not pass it"),
    ("()", "Velocity.process() takes no self: define it as process(self, event)"),
])
def test_wrong_parameters_of_process(
    make_module: MakeModule, registry: hookline.Registry, signature: str, message: str
) -> None:
    source = PARAMETERS.format(signature=signature)
    name = "plugin_params_" + re.sub(r"\W+", "_", signature).strip("_")
    module = _module(make_module, name, source)
    violation = _only(verify(module), "wrong-parameters")
    assert message in violation.message
    assert violation.lineno == _line(source, "def process")
    assert violation.filename == module.__file__


@pytest.mark.parametrize("signature", [
    "(self, event)", "(self, event, /)", "(self, event, limit=3)", "(self, event, *rest)",
    "(self, event, **options)",
])
def test_parameters_that_fit(
    make_module: MakeModule, registry: hookline.Registry, signature: str
) -> None:
    name = "plugin_fits_" + re.sub(r"\W+", "_", signature).strip("_")
    assert verify(_module(make_module, name, PARAMETERS.format(signature=signature))) == []


def test_static_and_class_methods_are_bound_as_python_binds_them(
    registry: hookline.Registry,
) -> None:
    class Static(hookline.Stage, phase="enrich", name="static"):
        @staticmethod
        def process(event: hookline.Event) -> None:  # type: ignore[override]
            pass

    class Klass(hookline.Stage, phase="enrich", name="klass"):
        @classmethod
        def process(cls, evt: hookline.Event) -> None:  # type: ignore[override]
            pass

    assert verify(Static) == []
    assert "the parameter is named 'evt'" in _only(verify(Klass), "wrong-parameters").message


HOOK_PARAMETERS = '''
import hookline

@hookline.hookimpl
def hookline_validate(evt):
    pass

@hookline.hookimpl
def hookline_run_end(run, reprt):
    pass

@hookline.hookimpl
def hookline_configure(*, config):
    pass
'''


def test_wrong_parameters_of_hook_functions(
    make_module: MakeModule, registry: hookline.Registry
) -> None:
    module = _module(make_module, "plugin_hook_parameters", HOOK_PARAMETERS)
    found = verify(module)
    assert [v.code for v in found] == ["wrong-parameters"] * 3
    # a decorated function's definition starts at its first decorator, as in tracebacks
    by_line = {v.lineno: v.message for v in found}
    assert by_line[_line(HOOK_PARAMETERS, "def hookline_configure") - 1] == (
        "hookline_configure(*, config): 'config' is keyword-only, but pluggy passes hook "
        "arguments positionally: remove the *")
    assert by_line[_line(HOOK_PARAMETERS, "def hookline_run_end") - 1] == (
        "hookline_run_end(run, reprt): 'reprt' is not an argument of "
        "hookline_run_end(run, report); did you mean 'report'?")
    assert by_line[_line(HOOK_PARAMETERS, "def hookline_validate") - 1].startswith(
        "hookline_validate(evt): the parameter is named 'evt'; name it 'event'")


# -- hook names ----------------------------------------------------------------------------------

HOOK_NAMES = '''
import hookline

@hookline.hookimpl
def hookline_validat(event):
    pass

@hookline.hookimpl(optionalhook=True)
def hookline_someday(event):
    pass

def hookline_enrich(event):
    pass

def hookline_helper():
    pass
'''


def test_a_misspelt_hook_is_unknown_and_the_closest_is_suggested(
    make_module: MakeModule, registry: hookline.Registry
) -> None:
    module = _module(make_module, "plugin_hook_names", HOOK_NAMES)
    found = {v.code: v for v in verify(module)}
    assert set(found) == {"unknown-hook", "unmarked-hook"}  # optionalhook and helpers are fine
    unknown = found["unknown-hook"]
    assert unknown.message == ("hookline_validat is marked @hookimpl, but hookline has no hook "
                               "'hookline_validat'; did you mean 'hookline_validate'?")
    assert unknown.lineno == _line(HOOK_NAMES, "@hookline.hookimpl")  # its decorator line
    unmarked = found["unmarked-hook"]
    assert unmarked.message.startswith("hookline_enrich is named like the hook hookline_enrich "
                                       "but is not marked @hookline.hookimpl")
    assert unmarked.lineno == _line(HOOK_NAMES, "def hookline_enrich")


def test_hooks_imported_from_elsewhere_are_not_the_plugins_own(
    make_module: MakeModule, registry: hookline.Registry
) -> None:
    make_module("plugin_helpers", "def hookline_enrich(event):\n    pass\n")
    module = _module(make_module, "plugin_importer", "from plugin_helpers import hookline_enrich\n"
                                                     "from hookline.hookspecs import *\n")
    assert verify(module) == []


# -- annotations ---------------------------------------------------------------------------------

ANNOTATIONS = '''
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import hookline

if TYPE_CHECKING:
    from somewhere_else import Unknowable


class Counts(hookline.Stage, phase="validate", name="counts"):
    def process(self, event: hookline.Event) -> int:
        return 1


class Labels(hookline.Stage, phase="enrich", name="labels"):
    def process(self, event: dict[str, Any]) -> str | None:
        return None


class Vague(hookline.Stage, phase="score", name="vague"):
    def process(self, event: Unknowable) -> Unknowable:
        return event


@hookline.hookimpl
def hookline_event_fields() -> int:
    return 0
'''


def test_annotations_that_contradict_the_hookspec(
    make_module: MakeModule, registry: hookline.Registry
) -> None:
    module = _module(make_module, "plugin_annotations", ANNOTATIONS)
    found = verify(module)
    assert {v.code for v in found} == {"annotation-mismatch"}
    messages: dict[tuple[str | None, int | None], list[str]] = {}
    for v in found:
        messages.setdefault((v.stage, v.lineno), []).append(v.message)
    process_line = _line(ANNOTATIONS, "def process(self, event: hookline.Event) -> int")
    assert messages[("counts", process_line)] == [
        "Counts.process is annotated -> int, but hookline_validate returns Event | None: "
        "return None after assigning fields, or return a replacement event (or raise "
        "hookline.Reject / hookline.Drop)"]
    labels = messages["labels", _line(ANNOTATIONS, "def process(self, event: dict")]
    assert sorted(labels) == [
        "Labels.process annotates event: dict[str, Any], but hookline_enrich(event) passes "
        "Event: annotate it hookline.Event (the pipeline's event class; fields are attributes: "
        "event.amount) or Any",
        "Labels.process is annotated -> str | None, but hookline_enrich returns Event | None: "
        "return None after assigning fields, or return a replacement event (or raise "
        "hookline.Reject / hookline.Drop)",
    ]
    fields_line = _line(ANNOTATIONS, "@hookline.hookimpl")
    assert messages[(None, fields_line)] == [
        "hookline_event_fields is annotated -> int, but hookline_event_fields returns "
        "Mapping[str, hookline.fields.Field[Any]]: return Mapping[str, "
        "hookline.fields.Field[Any]]"]
    assert len(found) == 4  # an annotation that cannot be resolved (Vague) is not judged


def test_wrapper_annotations(make_module: MakeModule, registry: hookline.Registry) -> None:
    module = _module(make_module, "plugin_wrapper_annotation", '''
        import hookline

        @hookline.hookimpl(wrapper=True)
        def hookline_validate(event) -> None:
            return (yield)
    ''')
    violation = _only(verify(module), "annotation-mismatch")
    assert violation.message == ("hookline_validate is annotated -> None, but a wrapper is a "
                                 "generator: annotate it -> Generator[None, Any, Any]")


# -- wrappers and generators ---------------------------------------------------------------------

WRAPPERS = '''
import functools
import hookline


def logged(function):
    @functools.wraps(function)
    def call(*args, **kwargs):
        return function(*args, **kwargs)
    return call


@hookline.hookimpl(wrapper=True)
def hookline_validate(event):
    return None


@hookline.hookimpl(wrapper=True)
@logged
def hookline_score(event):
    result = yield
    return result


@hookline.hookimpl(hookwrapper=True)
def hookline_enrich(event):
    yield


class Streams(hookline.Stage, phase="enrich", name="streams"):
    def process(self, event):
        yield event
'''


def test_wrappers_must_yield_and_stages_must_not(
    make_module: MakeModule, registry: hookline.Registry
) -> None:
    module = _module(make_module, "plugin_wrappers", WRAPPERS)
    found = {(v.code, v.lineno): v for v in verify(module)}
    validate = found["wrapper-not-generator", _line(WRAPPERS, "@hookline.hookimpl(wrapper=True)")]
    assert validate.message == (
        "hookline_validate is declared @hookimpl(wrapper=True) but is not a generator function; "
        "it must yield exactly once: result = yield; return result (see 'Phase wrappers' in the "
        "hook reference)")
    score = next(v for (code, _), v in found.items()
                 if code == "wrapper-not-generator" and "hookline_score" in v.message)
    assert "its decorator hides the yield" in score.message
    # the definition under the decorators, reached through __wrapped__: its first decorator
    assert score.lineno == _line(WRAPPERS, "@logged") - 1
    enrich = found["hookwrapper-on-phase", _line(WRAPPERS, "@hookline.hookimpl(hookwrapper")]
    assert enrich.message.startswith(
        "hookline_enrich uses old-style @hookimpl(hookwrapper=True), which hookline's phases do "
        "not support; use @hookimpl(wrapper=True)")
    streams = found["unexpected-generator", _line(WRAPPERS, "def process")]
    assert streams.stage == "streams"
    assert streams.message.startswith("Streams.process is a generator function (it contains "
                                      "yield), but only @hookimpl(wrapper=True) implementations "
                                      "yield")
    assert len(found) == 4


def test_decorated_process_is_verified_through_wrapped(
    make_module: MakeModule, registry: hookline.Registry
) -> None:
    source = '''
        import functools
        import hookline

        def retry(function):
            @functools.wraps(function)
            def call(*args, **kwargs):
                return function(*args, **kwargs)
            return call

        class Good(hookline.Stage, phase="enrich", name="good"):
            @retry
            def process(self, event):
                pass

        class Bad(hookline.Stage, phase="enrich", name="bad"):
            @retry
            def process(self, evt) -> int:
                return 1
    '''
    module = _module(make_module, "plugin_decorated", source)
    found = verify(module)
    assert {(v.stage, v.code) for v in found} == {("bad", "wrong-parameters"),
                                                  ("bad", "annotation-mismatch")}
    assert {v.lineno for v in found} == {_line(source, "def process(self, evt)") - 1}


# -- references to flags and plugins -------------------------------------------------------------

REFERENCES = '''
import hookline

@hookline.hookimpl
def hookline_flags():
    return [{"name": "ranking.experimental"}]

class Boost(hookline.Stage, phase="score", name="boost", flag="ranking.experimentl",
            before="ranking.score", after=["frod", "fraud.velocity"]):
    def process(self, event):
        pass
'''


def test_flags_and_before_after_are_checked_when_the_names_are_known(
    make_module: MakeModule, registry: hookline.Registry
) -> None:
    module = _module(make_module, "plugin_references", REFERENCES)
    assert verify(module) == []  # without declared flags or known plugins: not judged
    found = verify(module, declared_flags=contracts.flags_declared_by([module]),
                   known_plugins={"fraud", "ranking", "ranking.score", "ranking.other"})
    by_code = {v.code: v for v in found}
    assert sorted(v.code for v in found) == ["unknown-flag", "unknown-plugin"]
    assert by_code["unknown-flag"].message == (
        "Boost is gated by flag='ranking.experimentl', which no plugin declares; did you mean "
        "'ranking.experimental'? (declared: ranking.experimental); declare it in a "
        "hookline_flags() hook or fix the name")
    assert by_code["unknown-plugin"].message == (
        "Boost declares after='frod', which names no installed plugin or stage; did you mean "
        "'fraud'?")
    assert {v.lineno for v in found} == {_line(REFERENCES, "class Boost")}
    assert verify(module, known_plugins={"ranking", "ranking.other"})[0].message.startswith(
        "Boost declares before='ranking.score'")  # ranking's stages are listed: score is not


def test_plugins_verified_together_see_each_others_flags(registry: hookline.Registry) -> None:
    class Ranking:
        @hookline.hookimpl
        def hookline_flags(self) -> list[dict[str, Any]]:
            return [{"name": "ranking.experimental", "rollout": 0.1}]

    class Boost(hookline.Stage, phase="score", name="boost", flag="ranking.experimental",
                after="ranking"):
        def process(self, event: hookline.Event) -> None:
            pass

    together = contracts.verify_plugins({"boost": [Boost], "ranking": [Ranking()]},
                                        known_plugins={"boost", "ranking"})
    assert together == {"boost": [], "ranking": []}
    alone = contracts.verify_plugins({"boost": [Boost]}, known_plugins={"boost"})
    assert [v.code for v in alone["boost"]] == ["unknown-flag", "unknown-plugin"]
    assert contracts.verify_plugins({"boost": [Boost]}, flags=["ranking.experimental"]) == {
        "boost": []}


# -- namespaces, the protocol, the violation ----------------------------------------------------


def test_a_hook_namespace_object_is_verified_by_its_methods() -> None:
    class Timer:
        @hookline.hookimpl(wrapper=True)
        def hookline_validate(self, event: hookline.Event) -> Any:
            return (yield)

        @hookline.hookimpl
        def hookline_run_start(self, run: Any, extra: int) -> None:
            pass

    violation = _only(verify(Timer(), plugin="timing"), "wrong-parameters")
    assert violation.message == ("hookline_run_start(run, extra): 'extra' is not an argument of "
                                 "hookline_run_start(run)")
    assert violation.lineno == Timer.hookline_run_start.__code__.co_firstlineno


def test_stage_contract_is_a_runtime_checkable_protocol(registry: hookline.Registry) -> None:
    class Tag(hookline.Stage, phase="enrich"):
        def process(self, event: hookline.Event) -> None:
            pass

    class Lookalike:
        def process(self, event: hookline.Event) -> hookline.Event | None:
            return None

    assert isinstance(Tag(), StageContract)
    assert isinstance(Lookalike(), StageContract)
    assert not isinstance(object(), StageContract)


def test_a_violation_formats_as_file_line_subject_message_code() -> None:
    violation = Violation("fraud", "missing-process", "Velocity defines no process",
                          "/src/fraud.py", 12, "velocity")
    assert str(violation) == (
        "/src/fraud.py:12: fraud.velocity: Velocity defines no process [missing-process]")
    assert violation.format("hookline-fraud 1.0") == (
        "/src/fraud.py:12: fraud.velocity (hookline-fraud 1.0): Velocity defines no process "
        "[missing-process]")
    assert Violation("x", "unknown-hook", "m").location == "<unknown file>"
    assert json.loads(json.dumps(violation.as_dict()))["lineno"] == 12
    assert contracts.format_violations([violation, violation]).splitlines()[0] == (
        "breaks the stage contract (2 violations):")


ZOO = '''
import hookline


class Velocity(hookline.Stage, phase="validate", name="velocity"):
    def proces(self, event):
        pass


class Threshold(hookline.Stage, phase="validate", name="threshold"):
    process = 100


class Geo(hookline.Stage, phase="enrich", name="geo"):
    def process(self, evt):
        pass


class Score(hookline.Stage, phase="score", name="score"):
    def process(self, event: hookline.Event) -> float:
        return 0.5


class Split(hookline.Stage, phase="enrich", name="split"):
    def process(self, event):
        yield event


class Filter(hookline.Stage, phase="validate", name="filter"):
    def process(self, event):
        pass


Filter.__stage__.phase = "filter"  # made by other means than the class statement


class Boost(hookline.Stage, phase="score", name="boost", flag="ranking.experimentl"):
    def process(self, event):
        pass


class Dedupe(hookline.Stage, phase="validate", name="dedupe", after="frod"):
    def process(self, event):
        pass


@hookline.hookimpl
def hookline_validat(event):
    pass


@hookline.hookimpl(wrapper=True)
def hookline_score(event):
    return None


@hookline.hookimpl(hookwrapper=True)
def hookline_enrich(event):
    yield


def hookline_event_fields():
    return {}
'''


def test_the_documented_codes_and_messages_are_real(
    make_module: MakeModule, registry: hookline.Registry
) -> None:
    """docs/contracts.md has a section per code whose example message verify really gives."""
    text = (ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^### `([a-z-]+)`\n.*?^```text\n(.+?)\n```$", text, re.M | re.S))
    assert sorted(rows) == sorted(contracts.CODES), "one section per code, with an example"
    zoo = _module(make_module, "hookline_zoo", ZOO)
    found = verify(zoo, declared_flags={"ranking.experimental"}, known_plugins={"fraud", "zoo"})
    produced: dict[str, list[str]] = {}
    for violation in found:
        produced.setdefault(violation.code, []).append(violation.message)
    assert sorted(produced) == sorted(contracts.CODES)
    for code, message in rows.items():
        assert message in produced[code], f"{code}: verify says {produced[code]}"


# -- the loader refuses a violating plugin ------------------------------------------------------

#: One plugin per kind of violation, each otherwise fine.
ONE_EACH = {
    "missing-process": MISSING,
    "process-not-callable": 'import hookline\nclass T(hookline.Stage, phase="score"):\n'
                            '    process = 1\n',
    "wrong-parameters": PARAMETERS.format(signature="(self, evt)"),
    "annotation-mismatch": 'import hookline\nclass T(hookline.Stage, phase="score"):\n'
                           '    def process(self, event) -> int:\n        return 1\n',
    "unknown-hook": 'import hookline\n@hookline.hookimpl\ndef hookline_scor(event):\n'
                    '    pass\n',
    "unmarked-hook": "def hookline_score(event):\n    pass\n",
    "unexpected-generator": 'import hookline\nclass T(hookline.Stage, phase="score"):\n'
                            '    def process(self, event):\n        yield\n',
    "wrapper-not-generator": 'import hookline\n@hookline.hookimpl(wrapper=True)\n'
                             'def hookline_score(event):\n    pass\n',
    "hookwrapper-on-phase": 'import hookline\n@hookline.hookimpl(hookwrapper=True)\n'
                            'def hookline_score(event):\n    yield\n',
    "unknown-phase": 'import hookline\nclass T(hookline.Stage, phase="score"):\n'
                     '    def process(self, event):\n        pass\nT.__stage__.phase = "late"\n',
    "unknown-flag": 'import hookline\nclass T(hookline.Stage, phase="score", flag="nope"):\n'
                    '    def process(self, event):\n        pass\n',
    "unknown-plugin": 'import hookline\nclass T(hookline.Stage, phase="score", after="nobody"):\n'
                      '    def process(self, event):\n        pass\n',
}

TAGGER = '''
import hookline

class Tag(hookline.Stage, phase="enrich", name="tag", after="missing_process"):
    def process(self, event):
        event.tags = [*event.tags, "tagged"]
'''


def test_a_violating_plugin_is_refused_at_load_and_the_others_run(
    make_module: MakeModule, registry: hookline.Registry
) -> None:
    assert sorted(ONE_EACH) == sorted(contracts.CODES)
    eps = [EntryPointInfo("tagger", "plugin_tagger", "hookline.plugins", "tagger", "1.0")]
    make_module("plugin_tagger", TAGGER)
    for code, source in ONE_EACH.items():
        name = code.replace("-", "_")
        make_module(f"plugin_{name}", source)
        eps.append(EntryPointInfo(name, f"plugin_{name}", "hookline.plugins", f"dist-{code}",
                                  "2.0"))
    plugins = load_entry_points(eps, Config(), registry=registry)
    records = {record.name: record for record in plugins.records}
    assert [r.name for r in plugins.loaded()] == ["tagger"]
    for code in ONE_EACH:
        record = records[code.replace("-", "_")]
        assert record.status == "failed", code
        assert [v.code for v in record.violations] == [code]
        assert record.error is not None and f"[{code}]" in record.error
        assert str(record.violations[0]) in record.error  # file:line and message
        assert record.as_dict()["violations"][0]["code"] == code
    event = {"event_id": "e1", "user_id": "u1", "kind": "click", "ts": 1}
    assert hookline.Pipeline(plugins).process(event).tags == ["tagged"]


def test_pipelines_from_plugins_in_hand_refuse_them_too(registry: hookline.Registry) -> None:
    class Geo(hookline.Stage, phase="enrich", name="geo", after="not_here"):
        def process(self, evt: hookline.Event) -> None:
            pass

    with pytest.raises(PluginError) as refused:
        hookline.Pipeline.from_plugins([("geo", Geo)])
    assert "geo (test_contracts): breaks the stage contract (1 violation):" in str(refused.value)
    assert "Geo.process(self, evt): the parameter is named 'evt'" in str(refused.value)
    # objects in hand are a few plugins of many: their before=/after= are not judged


# -- hookline check ------------------------------------------------------------------------------


def _check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, eps: list[EntryPointInfo],
           *argv: str) -> int:
    monkeypatch.chdir(tmp_path)  # no hookline.toml of the developer's folder
    for name in ("HOOKLINE_PLUGINS", "HOOKLINE_DISABLE_PLUGINS",
                 "HOOKLINE_DISABLE_PLUGIN_AUTOLOAD", "HOOKLINE_FLAGS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("hookline._discovery.installed", lambda: eps)
    return main(["check", *argv])


def test_check_lists_every_violation_with_distribution_version_and_location(
    make_module: MakeModule, registry: hookline.Registry, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    make_module("plugin_fine", PARAMETERS.format(signature="(self, event)"))
    make_module("plugin_flawed", REFERENCES.replace('"frod", ', "") + MISSING.replace(
        "import hookline", ""))
    make_module("plugin_broken", "raise RuntimeError('no config server')\n")
    eps = [EntryPointInfo("fine", "plugin_fine", "hookline.plugins", "plugin-fine", "1.0"),
           EntryPointInfo("flawed", "plugin_flawed", "hookline.plugins", "plugin-flawed", "2.1"),
           EntryPointInfo("broken", "plugin_broken", "hookline.plugins", "plugin-broken", "0.3")]
    assert _check(monkeypatch, tmp_path, eps) == 1
    out = capsys.readouterr().out
    flawed = str(Path(tmp_path / "modules" / "plugin_flawed.py"))
    assert re.search(rf"{re.escape(flawed)}:\d+: flawed\.boost \(plugin-flawed 2\.1\): Boost is "
                     r"gated by flag='ranking.experimentl'.*\[unknown-flag\]", out)
    assert re.search(rf"{re.escape(flawed)}:\d+: flawed\.velocity \(plugin-flawed 2\.1\): "
                     r"Velocity defines no process.*\[missing-process\]", out)
    assert "after='fraud.velocity'" in out  # no plugin named fraud is installed here
    assert re.search(r"^fine +ok +plugin-fine 1\.0", out, re.M)
    assert "RuntimeError: no config server" in out
    assert out.splitlines()[-1] == ("hookline check: 2 of 3 plugin(s) failed: 4 contract "
                                    "violations, 1 could not load")

    assert _check(monkeypatch, tmp_path, eps[:1]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "hookline check: all 1 selected plugin(s) satisfy the stage contract")
    assert _check(monkeypatch, tmp_path, eps[1:2], "--format", "json") == 1
    (listed,) = json.loads(capsys.readouterr().out)["plugins"]
    assert listed["distribution"] == "plugin-flawed"
    assert sorted(v["code"] for v in listed["violations"]) == [
        "missing-process", "unknown-flag", "unknown-plugin", "unknown-plugin"]


# -- static checking -----------------------------------------------------------------------------

BAD_PLUGIN = '''
from __future__ import annotations

import hookline


class Counts(hookline.Stage, phase="validate", name="counts"):
    def process(self, event: hookline.Event) -> int:
        return 1


class Needs(hookline.Stage, phase="enrich", name="needs"):
    def process(self, event: hookline.Event, threshold: float) -> None:
        pass
'''

GOOD_PLUGIN = '''
from __future__ import annotations

import hookline
from hookline.contracts import StageContract


class Tag(hookline.Stage, phase="enrich", name="tag"):
    def process(self, event: hookline.Event) -> None:
        event.tags = [*event.tags, "seen"]


class Replace(hookline.Stage, phase="enrich", name="replace"):
    def process(self, event: hookline.Event) -> hookline.Event | None:
        return type(event).from_dict({**event.to_dict(), "kind": "replaced"})


class Lookup(hookline.Stage, phase="enrich", name="lookup"):
    async def process(self, event: hookline.Event) -> None:
        event.tags = [*event.tags, "looked-up"]


contract: StageContract = Tag()
'''


def _mypy(tmp_path: Path, name: str, source: str) -> subprocess.CompletedProcess[str]:
    """``mypy --strict`` on one module, seeing hookline as an installed, typed package."""
    site = tmp_path / "site"
    if not site.exists():  # hookline as a plugin author's environment has it (py.typed)
        shutil.copytree(Path(hookline.__file__).parent, site / "hookline",
                        ignore=shutil.ignore_patterns("__pycache__"))
        (tmp_path / "mypy.ini").write_text(
            "[mypy]\nstrict = True\n"
            f"mypy_path = {site}\n"
            # as for any installed package, errors inside hookline are not the plugin's
            "[mypy-hookline.*]\nignore_errors = True\n")
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source).lstrip())
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(tmp_path / "mypy.ini"),
         "--cache-dir", str(tmp_path / ".mypy_cache"), "--no-error-summary",
         f"{name}.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)


def test_mypy_catches_a_wrong_plugin(tmp_path: Path) -> None:
    bad = _mypy(tmp_path, "bad_plugin", BAD_PLUGIN)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    errors = [line for line in bad.stdout.splitlines() if ": error:" in line]
    counts_line = _line(BAD_PLUGIN.lstrip(), "def process(self, event: hookline.Event) -> int")
    needs_line = _line(BAD_PLUGIN.lstrip(), "threshold: float")
    assert any(line.startswith(f"bad_plugin.py:{counts_line}: error: Return type \"int\" of "
                               "\"process\" incompatible with return type") for line in errors), (
        bad.stdout)
    assert any(line.startswith(f"bad_plugin.py:{needs_line}: error: Signature of \"process\" "
                               "incompatible with supertype") for line in errors), bad.stdout
    good = _mypy(tmp_path, "good_plugin", GOOD_PLUGIN)
    assert good.returncode == 0, good.stdout + good.stderr
