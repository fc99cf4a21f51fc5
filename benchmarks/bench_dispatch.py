"""Dispatching one event through one phase of N implementations (issue 5).

For N = 3 and N = 10 implementations that each do trivial work (read one field of the event
and return None), one event through:

* direct loop: ``for f in functions: f(event)`` over the same bound ``process`` methods
  (the limit: nothing but the calls);
* hookline phase: the compiled call plan of the validate phase, ``pipeline._phases[0]``,
  of ``Pipeline.from_plugins([...N Stage classes...])``;
* hookline process(event): ``pipeline.process(event)`` on that pipeline, whose enrich and
  score phases are empty;
* pluggy: ``pm.hook.hookline_validate(event=e)``, plain pluggy, N plugin objects;
* stevedore: ``ExtensionManager.map(call, e)``, N extensions built in memory with
  ``make_test_instance`` (skipped when stevedore is not installed).

And the cost of one monitoring-style ``@hookline.hookimpl(wrapper=True)`` generator wrapper
(two clock reads, two counter updates) added to the phase: ``(phase with the wrapper - phase)
/ direct loop``, paired per round, against what the same wrapper adds to pluggy's hook call.
hookline drives the wrapper, the plugin's own generator function, per event (a pooled pump
generator hands it the result through ``yield from``). The same for a histogram wrapper, the
kind a monitoring plugin records latencies with (two clock reads, one addition to a
:class:`hookline.metrics.Histogram` bucket, errors counted: what hookline-monitoring's
wrappers did before 0.3.0, which reads hookline's own phase statistics instead). For
comparison: the timing wrapper driven by hand around the direct loop the usual way
(``next``, ``send``, catch ``StopIteration``), the same work with no generator and no call at
all (the floor of what the wrapper itself does), and a wrapper that only yields.

    python benchmarks/bench_dispatch.py [--quick] [--json PATH]
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from time import perf_counter_ns
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pluggy
from _harness import Case, Results, check, compare, finish, note, parse_args

import hookline
from hookline.metrics import SAMPLE, Histogram, bucket_index

NAME = "dispatch"
PACKAGES = ("hookline", "pluggy", "stevedore")
SIZES = (3, 10)

EVENT = {"event_id": "e-1", "user_id": "u-1842", "kind": "purchase", "ts": 1_767_225_600_000,
         "amount": 12.5, "currency": "EUR", "tags": ["web"]}

# --------------------------------------------------------------------------------------------
# The implementations: N stage classes whose process() reads one field


class _Reads(hookline.Stage, abstract=True):
    """A stage doing the least real work: read one field of the event."""

    def process(self, event: Any) -> None:
        event.amount  # noqa: B018 - the read is the work


def stage_classes(n: int) -> list[type[hookline.Stage]]:
    """N distinct validate-phase stages ``s00``... (recorded in the registry active now)."""
    return [
        types.new_class(f"Reads{i:02d}", (_Reads,),
                        {"phase": "validate", "name": f"s{i:02d}"})
        for i in range(n)
    ]


class Stats:
    """What a monitoring wrapper keeps: a call count and the total time."""

    __slots__ = ("calls", "total_ns")

    def __init__(self) -> None:
        self.calls = 0
        self.total_ns = 0


def timing_wrapper(stats: Stats) -> Callable[[Any], Generator[None, Any, Any]]:
    """A monitoring-style generator wrapper: time the phase, count the call."""

    def hookline_validate(event: Any) -> Generator[None, Any, Any]:
        start = perf_counter_ns()
        try:
            return (yield)
        finally:
            stats.total_ns += perf_counter_ns() - start
            stats.calls += 1

    return hookline_validate


def histogram_wrapper(latency: Histogram, errors: list[int]
                      ) -> Callable[[Any], Generator[None, Any, Any]]:
    """A monitoring plugin's latency wrapper: time the phase into ``latency`` (one addition
    to its bucket, as code on a hot path records into a histogram), count in ``errors[0]``
    the calls that raised."""
    bins = latency.bins

    def hookline_validate(event: Any) -> Generator[None, Any, Any]:
        start = perf_counter_ns()
        try:
            return (yield)
        except Exception:
            errors[0] += 1
            raise
        finally:
            ns = perf_counter_ns() - start
            bins[bucket_index(ns)] += ns + SAMPLE

    return hookline_validate


def _yield_only(event: Any) -> Generator[None, Any, Any]:
    return (yield)


def wrapper_plugin(function: Callable[[Any], Generator[None, Any, Any]], marker: Any) -> Any:
    """A plugin object whose ``hookline_validate`` is ``function`` marked ``wrapper=True``."""
    plugin = types.SimpleNamespace()
    function.__name__ = "hookline_validate"
    plugin.hookline_validate = marker(wrapper=True)(function)
    return plugin


# --------------------------------------------------------------------------------------------
# The peers


def hookline_pipeline(classes: Sequence[type[hookline.Stage]], *extra: Any) -> Any:
    """``Pipeline.from_plugins`` with the stages in plugin ``bench`` and ``extra`` plugins."""
    from hookline._pipeline import Pipeline

    plugins = [("bench", cls) for cls in classes]
    plugins += [(f"extra{i}", obj) for i, obj in enumerate(extra)]
    return Pipeline.from_plugins(plugins)


_spec = pluggy.HookspecMarker("bench")
_impl = pluggy.HookimplMarker("bench")


class _Spec:
    @_spec
    def hookline_validate(self, event: Any) -> Any:
        """The phase, as a plain pluggy hook."""


class _PluggyPlugin:
    @_impl
    def hookline_validate(self, event: Any) -> None:
        event.amount  # noqa: B018 - the read is the work


def pluggy_manager(n: int, *wrappers: Any) -> pluggy.PluginManager:
    """Plain pluggy: a manager with the hook spec and N implementations (plus wrappers)."""
    manager = pluggy.PluginManager("bench")
    manager.add_hookspecs(_Spec)
    for i in range(n):
        manager.register(_PluggyPlugin(), name=f"s{i:02d}")
    for i, wrapper in enumerate(wrappers):
        manager.register(wrapper, name=f"wrapper{i}")
    return manager


def _call_extension(extension: Any, event: Any) -> Any:
    return extension.obj.process(event)


def stevedore_manager(stages: Sequence[hookline.Stage]) -> Any:
    """An ExtensionManager over the stage instances, built in memory (None if not installed)."""
    try:
        from stevedore.extension import Extension, ExtensionManager
    except ImportError:
        return None
    extensions = [Extension(f"s{i:02d}", None, type(stage), stage)  # type: ignore[arg-type]
                  for i, stage in enumerate(stages)]
    return ExtensionManager.make_test_instance(extensions, propagate_map_exceptions=True)


# --------------------------------------------------------------------------------------------
# The benchmark


def cases(n: int) -> tuple[list[Case], list[str]]:
    """The cases for N implementations, checked to call every implementation once."""
    skipped: list[str] = []
    with hookline.Registry().activate():
        classes = stage_classes(n)
    calls = [0]

    event = hookline.DefaultEvent.from_dict(dict(EVENT))
    instances = [cls() for cls in classes]
    functions = [stage.process for stage in instances]
    plain = hookline_pipeline(classes)
    stats = Stats()
    wrapped = hookline_pipeline(classes, wrapper_plugin(timing_wrapper(stats), hookline.hookimpl))
    yielding = hookline_pipeline(classes, wrapper_plugin(_yield_only, hookline.hookimpl))
    latency = Histogram()
    histogram = hookline_pipeline(
        classes, wrapper_plugin(histogram_wrapper(latency, [0]), hookline.hookimpl))
    pm = pluggy_manager(n)
    pm_wrapped = pluggy_manager(n, wrapper_plugin(timing_wrapper(Stats()), _impl))
    pm_histogram = pluggy_manager(n, wrapper_plugin(histogram_wrapper(Histogram(), [0]), _impl))
    assert plain.event_class is hookline.DefaultEvent, "no plugin adds fields: no conversion"

    ns: dict[str, Any] = {
        "e": event, "fns": functions, "phase": plain._phases[0], "process": plain.process,
        "wphase": wrapped._phases[0], "yphase": yielding._phases[0],
        "hphase": histogram._phases[0], "pm": pm, "pm_wrapped": pm_wrapped,
        "pm_histogram": pm_histogram, "w": timing_wrapper(Stats()),
        "clock": perf_counter_ns, "st": Stats(),
    }
    found = [
        Case.inline("direct loop", "for f in fns:\n    f(e)", ns),
        Case.inline("hookline phase", "phase(e)", ns),
        Case.inline("hookline process(event)", "process(e)", ns),
        Case.inline("pluggy hook call", "pm.hook.hookline_validate(event=e)", ns),
    ]
    manager = stevedore_manager(instances)
    if manager is not None:
        ns["smap"], ns["call"] = manager.map, _call_extension
        found.append(Case.inline("stevedore map", "smap(call, e)", ns))
    else:
        skipped.append("stevedore is not installed: its row is skipped")
    found += [
        Case.inline("hookline phase + timing wrapper", "wphase(e)", ns),
        Case.inline("hookline phase + yield-only wrapper", "yphase(e)", ns),
        Case.inline("direct loop + timing wrapper by hand",
                    "g = w(e)\nnext(g)\nfor f in fns:\n    f(e)\n"
                    "try:\n    g.send(e)\nexcept StopIteration as stop:\n    r = stop.value", ns,
                    note="driven as most hosts do: next(), then send() and catch StopIteration"),
        Case.inline("direct loop + the timing work, no generator",
                    "t = clock()\nfor f in fns:\n    f(e)\nst.total_ns += clock() - t\n"
                    "st.calls += 1", ns,
                    note="the floor of the wrapper's own work: two clock reads, two updates"),
        Case.inline("pluggy + timing wrapper", "pm_wrapped.hook.hookline_validate(event=e)", ns),
        Case.inline("hookline phase + histogram wrapper", "hphase(e)", ns),
        Case.inline("pluggy + histogram wrapper",
                    "pm_histogram.hook.hookline_validate(event=e)", ns),
    ]

    # Every peer calls each of the N implementations once (a counting event tells).
    counting: Any = _Counting(calls)
    peers: list[tuple[str, Callable[[], object]]] = [
        ("direct loop", lambda: [f(counting) for f in functions]),
        ("hookline phase", lambda: plain._phases[0](counting)),
        ("hookline phase + timing wrapper", lambda: wrapped._phases[0](counting)),
        ("hookline phase + yield-only wrapper", lambda: yielding._phases[0](counting)),
        ("pluggy", lambda: pm.hook.hookline_validate(event=counting)),
        ("pluggy + timing wrapper", lambda: pm_wrapped.hook.hookline_validate(event=counting)),
        ("hookline phase + histogram wrapper", lambda: histogram._phases[0](counting)),
        ("pluggy + histogram wrapper",
         lambda: pm_histogram.hook.hookline_validate(event=counting)),
    ]
    for name, call in peers:
        calls[0] = 0
        call()
        assert calls[0] == n, f"{name} read the field {calls[0]} times, not {n}"
    if manager is not None:
        calls[0] = 0
        manager.map(_call_extension, counting)
        assert calls[0] == n, f"stevedore read the field {calls[0]} times, not {n}"
    before = stats.calls
    wrapped._phases[0](event)
    assert stats.calls == before + 1, "the timing wrapper did not run"
    before = latency.count
    histogram._phases[0](event)
    assert latency.count == before + 1, "the histogram wrapper did not run"
    return found, skipped


class _Counting:
    """An event whose ``amount`` counts its reads (to check each peer calls every impl)."""

    def __init__(self, calls: list[int]) -> None:
        self._calls = calls

    @property
    def amount(self) -> float:
        self._calls[0] += 1
        return 0.0


def run_size(n: int, repeats: int, min_time: float) -> Results:
    """Measure the cases for N implementations and check the targets."""
    found, skipped = cases(n)
    for text in skipped:
        note(text)
    results = compare(
        f"One event through one phase of {n} implementations (ns per event)",
        found, reference="direct loop", repeats=repeats, min_time=min_time,
    )

    def added(with_wrapper: str, without: str) -> float:
        return results.paired(lambda s: (s[with_wrapper] - s[without]) / s["direct loop"])

    print("  wrapper cost added, as a fraction of the direct loop:")
    for label, with_wrapper, without in [
        ("hookline, timing wrapper", "hookline phase + timing wrapper", "hookline phase"),
        ("hookline, yield-only wrapper", "hookline phase + yield-only wrapper",
         "hookline phase"),
        ("by hand, timing wrapper", "direct loop + timing wrapper by hand", "direct loop"),
        ("the timing work alone", "direct loop + the timing work, no generator",
         "direct loop"),
        ("pluggy, timing wrapper", "pluggy + timing wrapper", "pluggy hook call"),
        ("hookline, histogram wrapper", "hookline phase + histogram wrapper",
         "hookline phase"),
        ("pluggy, histogram wrapper", "pluggy + histogram wrapper", "pluggy hook call"),
    ]:
        print(f"    {label:<34} {added(with_wrapper, without):5.2f}x")

    def relative(wrapper: str) -> float:
        """What ``wrapper`` adds to the hookline phase, x what it adds to pluggy's call."""
        return results.paired(lambda s: (s[f"hookline phase + {wrapper}"] - s["hookline phase"])
                              / (s[f"pluggy + {wrapper}"] - s["pluggy hook call"]))

    print(f"  histogram wrapper added, x what it adds to pluggy: "
          f"{relative('histogram wrapper'):5.2f}x (no target)")
    print(f"Targets, N = {n} (issues 5 and 13):")
    check(f"hookline phase, N={n}, x direct loop", results.ratio("hookline phase"), "<=", 2)
    check(f"timing wrapper added, N={n}, x what it adds to pluggy", relative("timing wrapper"),
          "<=", 0.5)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__.partition("\n")[0], argv)
    for n in SIZES:
        run_size(n, args.repeats, args.min_time)
    return finish(args, NAME, PACKAGES)


if __name__ == "__main__":
    raise SystemExit(main())
