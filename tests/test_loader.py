"""Loading plugins: isolation of failures, selection, order, settings, API handshake,
duplicate names, cycles, interrupts and slow imports."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import hookline
from hookline import _loader
from hookline._discovery import EntryPointInfo
from hookline._loader import load_entry_points
from hookline.config import Config
from hookline.errors import BrokenPlugins, Interrupted, PluginError

GOOD = """
import hookline

class Tag(hookline.Stage, phase="enrich", name="tag"):
    def process(self, event):
        event.tags = [*event.tags, "{name}"]
"""


def ep(name: str, value: str, dist: str | None = None) -> EntryPointInfo:
    return EntryPointInfo(name, value, "hookline.plugins", dist or f"dist-{name}", "1.0")


def _event() -> dict[str, object]:
    return {"event_id": "e1", "user_id": "u1", "kind": "click", "ts": 1}


def test_failing_plugins_are_recorded_and_the_others_run(
    make_module: Callable[[str, str], str], registry: hookline.Registry
) -> None:
    make_module("good_a", GOOD.format(name="a"))
    make_module("good_b", GOOD.format(name="b"))
    make_module("bad_import", "import no_such_module_anywhere\n")
    make_module("bad_runtime", "raise RuntimeError('config server unreachable')\n")
    make_module("bad_exit", "import sys\nsys.exit(3)\n")
    plugins = load_entry_points(
        [ep("a", "good_a"), ep("b", "good_b"), ep("imp", "bad_import"),
         ep("rt", "bad_runtime"), ep("ex", "bad_exit"), ep("gone", "not_installed_module")],
        Config(), registry=registry)
    status = {r.name: (r.status, r.error) for r in plugins.records}
    assert [name for name, (s, _) in status.items() if s == "loaded"] == ["a", "b"]
    assert "ModuleNotFoundError" in status["imp"][1]
    assert "no_such_module_anywhere" in status["imp"][1]
    assert "RuntimeError: config server unreachable" in status["rt"][1]
    assert "bad_runtime.py:1)" in status["rt"][1]
    assert "SystemExit(3)" in status["ex"][1]
    assert "not_installed_module" in status["gone"][1]
    pipeline = hookline.Pipeline(plugins)
    assert pipeline.process(_event()).tags == ["a", "b"]
    assert not any(name.startswith("bad_") for name in sys.modules)


def test_a_failing_plugin_leaves_no_stage_behind(
    make_module: Callable[[str, str], str], registry: hookline.Registry
) -> None:
    make_module("half", GOOD.format(name="half") + "\nraise ImportError('late failure')\n")
    plugins = load_entry_points([ep("half", "half")], Config(), registry=registry)
    assert plugins.records[0].status == "failed"
    assert len(registry) == 0
    assert hookline.Pipeline(plugins).process(_event()).tags == []


def test_plugins_not_selected_are_never_imported(
    make_module: Callable[[str, str], str], registry: hookline.Registry
) -> None:
    for index in range(5):
        make_module(f"unselected_{index}", GOOD.format(name=index))
    make_module("chosen", GOOD.format(name="chosen"))
    eps = [ep(f"u{i}", f"unselected_{i}") for i in range(5)] + [ep("chosen", "chosen")]
    plugins = load_entry_points(eps, Config(plugins=("chosen",)), registry=registry)
    assert [r.status for r in plugins.records].count("not selected") == 5
    assert not [name for name in sys.modules if name.startswith("unselected_")]
    disabled = load_entry_points(eps, Config(disable_plugins=("chosen",), autoload=False),
                                 registry=registry)
    assert {r.status for r in disabled.records} == {"not selected", "blocked"}


def test_selected_but_not_installed_is_reported() -> None:
    plugins = load_entry_points([], Config(plugins=("ghost",)))
    assert plugins.records[0].status == "failed"
    assert "not installed" in (plugins.records[0].error or "")


def test_order_is_independent_of_install_order(
    make_module: Callable[[str, str], str], registry: hookline.Registry
) -> None:
    for name in ("zeta", "alpha", "mid"):
        make_module(f"order_{name}", GOOD.format(name=name))
    eps = [ep(n, f"order_{n}") for n in ("zeta", "alpha", "mid")]
    first = hookline.Pipeline(load_entry_points(eps, Config(), registry=registry))
    second = hookline.Pipeline(load_entry_points(eps[::-1], Config(), registry=registry))
    assert first.process(_event()).tags == ["alpha", "mid", "zeta"]
    assert second.process(_event()).tags == ["alpha", "mid", "zeta"]


def test_before_after_tryfirst_and_cycles(registry: hookline.Registry) -> None:
    calls: list[str] = []

    def stage(name: str, **keywords: object) -> type[hookline.Stage]:
        def process(self: hookline.Stage, event: hookline.Event) -> None:
            calls.append(name)

        return type(name, (hookline.Stage,), {"process": process},
                    phase="validate", name=name, **keywords)

    a = stage("a", after="t.c")
    b = stage("b", before="t.a")
    c = stage("c")
    last = stage("last", trylast=True)
    first = stage("first", tryfirst=True)
    pipeline = hookline.Pipeline.from_plugins([("t", s) for s in (a, b, c, last, first)])
    pipeline.process(_event())
    assert calls == ["first", "b", "c", "a", "last"]
    x = stage("x", after="u.y")
    y = stage("y", after="u.x")
    with pytest.raises(PluginError, match="cycle: u.x -> u.y -> u.x"):
        hookline.Pipeline.from_plugins([("u", x), ("u", y)])


def test_api_version_mismatch_is_refused_with_advice(
    make_module: Callable[[str, str], str], registry: hookline.Registry
) -> None:
    make_module("future_plugin", "HOOKLINE_API = 99\n")
    make_module("old_plugin", "HOOKLINE_API = 0\n")
    plugins = load_entry_points([ep("future", "future_plugin"), ep("old", "old_plugin")],
                                Config(), registry=registry)
    errors = {r.name: r.error or "" for r in plugins.records}
    assert "needs hookline plugin API 99" in errors["future"]
    assert "upgrade hookline" in errors["future"]
    assert "upgrade dist-old" in errors["old"]


def test_settings_are_validated_and_split_among_stages(
    make_module: Callable[[str, str], str], registry: hookline.Registry
) -> None:
    make_module("limits_plugin", """
        import hookline
        from hookline import fields

        class Cap(hookline.Stage, phase="validate", name="cap"):
            class Settings(hookline.Settings):
                limit = fields.Number(minimum=0, default=100)

            def process(self, event):
                if event.amount > self.settings.limit:
                    raise hookline.Reject(f"over {self.settings.limit}")
    """)
    config = Config(plugin_settings={"limits": {"limit": 5}})
    pipeline = hookline.Pipeline(load_entry_points([ep("limits", "limits_plugin")], config,
                                                   registry=registry))
    with pytest.raises(hookline.Reject, match="over 5"):
        pipeline.process({**_event(), "amount": 6})
    bad = load_entry_points([ep("limits", "limits_plugin")],
                            Config(plugin_settings={"limits": {"limit": -1, "typo": 1}}),
                            registry=registry)
    assert "unknown key(s) typo" in (bad.records[0].error or "")
    bad = load_entry_points([ep("limits", "limits_plugin")],
                            Config(plugin_settings={"limits": {"limit": -1}}), registry=registry)
    assert "limit: must be ≥ 0" in (bad.records[0].error or "")


ABSTRACT_BASE = """
import abc

import hookline

class Labeller(hookline.Stage, abc.ABC):
    @abc.abstractmethod
    def label(self) -> str: ...

    def process(self, event):
        event.tags = [*event.tags, self.label()]

class Gold(Labeller, phase="enrich", name="gold"):
    def label(self):
        return "gold"
"""


def test_a_stage_base_class_may_be_an_abc(
    make_module: Callable[[str, str], str], registry: hookline.Registry
) -> None:
    make_module("abc_plugin", ABSTRACT_BASE)
    plugins = load_entry_points([ep("abc", "abc_plugin")], Config(), registry=registry)
    assert [r.status for r in plugins.records] == ["loaded"]
    assert [info.name for info in registry] == ["gold"]  # the abstract base is not registered
    assert [stage.qualname for stage in plugins.records[0].stages] == ["abc.gold"]
    assert hookline.Pipeline(plugins).process(_event()).tags == ["gold"]
    labeller = sys.modules["abc_plugin"].Labeller
    assert labeller.__stage__ is None
    with pytest.raises(TypeError, match="abstract"):
        labeller()


def test_a_subclass_that_leaves_a_method_abstract_is_a_base_class(
    registry: hookline.Registry
) -> None:
    import abc

    class Base(hookline.Stage, abc.ABC):
        @abc.abstractmethod
        def threshold(self) -> float: ...

    class Still(Base, phase="validate", name="still"):  # threshold is still abstract
        pass

    class Done(Still, phase="validate", name="done"):
        def threshold(self) -> float:
            return 1.0

    assert [info.name for info in registry] == ["done"]
    assert Still.__stage__ is None and Done.__stage__ is not None
    assert Done().threshold() == 1.0


def test_a_name_two_distributions_declare_loads_neither(
    make_module: Callable[[str, str], str], registry: hookline.Registry
) -> None:
    make_module("twin_a", GOOD.format(name="a"))
    make_module("twin_b", GOOD.format(name="b"))
    plugins = load_entry_points([ep("twin", "twin_a", "dist-a"), ep("twin", "twin_b", "dist-b")],
                                Config(), registry=registry)
    assert [(r.distribution, r.status) for r in plugins.records] == [
        ("dist-a", "failed"), ("dist-b", "failed")]
    for record in plugins.records:
        assert "dist-a 1.0 (twin_a) and dist-b 1.0 (twin_b)" in (record.error or "")
    assert "twin_a" not in sys.modules and "twin_b" not in sys.modules
    with pytest.raises(BrokenPlugins, match="twin \\(dist-a 1.0\\)"):
        plugins.refuse_broken(Config())
    plugins.refuse_broken(Config(allow_broken_plugins=True))
    with pytest.raises(BrokenPlugins):
        plugins.refuse_broken(Config(allow_broken_plugins=True, strict=True))


def test_discovery_keeps_every_distribution_declaring_a_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hookline._discovery import installed
    from hookline.testing import write_installed

    site = write_installed(tmp_path / "site", "dupe", "X = 1\n")
    write_installed(site, "other", "X = 2\n", version="3.0")
    (site / "other_plugin-3.0.dist-info" / "entry_points.txt").write_text(
        "[hookline.plugins]\ndupe = other_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    found = [(e.distribution, e.version) for e in installed(use_cache=False) if e.name == "dupe"]
    assert found == [("dupe-plugin", "1.0"), ("other-plugin", "3.0")]


def test_keyboard_interrupt_at_import_is_a_failure_but_a_real_one_stops(
    make_module: Callable[[str, str], str], registry: hookline.Registry, python_sigint: None
) -> None:
    make_module("kbd_plugin", "raise KeyboardInterrupt\n")
    plugins = load_entry_points([ep("kbd", "kbd_plugin")], Config(), registry=registry)
    assert plugins.records[0].status == "failed"
    assert (plugins.records[0].error or "").startswith("KeyboardInterrupt (at ")
    make_module("ctrl_c_plugin", "import os, signal\nos.kill(os.getpid(), signal.SIGINT)\n"
                                 "import time\ntime.sleep(5)\n")
    with pytest.raises(Interrupted):
        load_entry_points([ep("ctrl_c", "ctrl_c_plugin")], Config(), registry=registry)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_cycle_fails_its_plugins_and_the_others_load(
    make_module: Callable[[str, str], str], registry: hookline.Registry
) -> None:
    make_module("cyc_a", "import hookline\nclass X(hookline.Stage, phase='validate', name='x',"
                         " after='b'):\n    def process(self, event): pass\n")
    make_module("cyc_b", "import hookline\nclass Y(hookline.Stage, phase='validate', name='y',"
                         " after='a'):\n    def process(self, event): pass\n")
    make_module("cyc_c", GOOD.format(name="c"))
    plugins = load_entry_points([ep("a", "cyc_a"), ep("b", "cyc_b"), ep("c", "cyc_c")],
                                Config(), registry=registry)
    status = {r.name: (r.status, r.error or "") for r in plugins.records}
    assert status["c"] == ("loaded", "")
    for name in ("a", "b"):
        assert status[name][0] == "failed"
        assert "cycle: a.x -> b.y -> a.x" in status[name][1]
        assert "a.x (class cyc_a.X, a (dist-a 1.0))" in status[name][1]
    assert hookline.Pipeline(plugins).process(_event()).tags == ["c"]


def test_a_flag_defined_at_import_is_owned_by_the_importing_plugin(
    make_module: Callable[[str, str], str], registry: hookline.Registry
) -> None:
    from hookline.flags import default_flags

    make_module("definer_plugin", "from hookline import flags\n"
                                  "flags.define('definer_test.flag', default=True)\n")
    load_entry_points([ep("definer", "definer_plugin")], Config(), registry=registry)
    try:
        assert default_flags.declared["definer_test.flag"].owner == (
            "definer (dist-definer 1.0), at import")
        with pytest.raises(hookline.errors.FlagError, match="by definer \\(dist-definer 1.0\\)"):
            default_flags.define("definer_test.flag", default=False, owner="other")
    finally:
        default_flags.declared.pop("definer_test.flag", None)
        default_flags.values["default"].pop("definer_test.flag", None)


def test_a_slow_import_is_named_while_it_runs(
    make_module: Callable[[str, str], str], registry: hookline.Registry,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_loader, "SLOW_IMPORT_S", 0.3)
    make_module("slow_plugin", "import time\ntime.sleep(0.6)\n")
    make_module("fast_plugin", GOOD.format(name="fast"))
    with caplog.at_level("WARNING", logger="hookline.loader"):
        load_entry_points([ep("fast", "fast_plugin"), ep("slow", "slow_plugin")], Config(),
                          registry=registry)
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == "still loading plugin slow (dist-slow 1.0) after 0 s…"
    assert messages[1].startswith("plugin slow (dist-slow 1.0) took 0.")
    assert len(messages) == 2  # nothing about the fast one
    assert threading.active_count() == 1 or not any(
        t.name == "hookline-import-clock" for t in threading.enumerate())
