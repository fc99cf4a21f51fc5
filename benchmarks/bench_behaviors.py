"""Per-call overhead of each behaviour: against the bare call and against tenacity and cachetools.

Two bare calls are wrapped:

* a real stage: ``fraud.blocked_currency``'s ``process(event)`` from the contrib plugin
  hookline-fraud (one field read, one set lookup; an equivalent class when the plugin is not
  installed), on an event it lets through: the smallest stage there is;
* a trivial function ``f(x) -> x``: the floor, where any wrapper looks expensive.

Each bare call is timed side by side with the same call under ``retry(attempts=3)`` (the
success path) and tenacity's ``@retry(stop=stop_after_attempt(3), reraise=True)``;
``timed()``; ``cached()`` on a hit (the stage keyed by ``currency``) and cachetools'
``@cached(LRUCache(1024))`` with the same key (and ``functools.lru_cache``, in C, for scale);
``logged()`` with its level off; ``traced()`` (a no-op unless OpenTelemetry is installed);
and the stack ``retry + timed + logged``. ``timeout()`` is timed on its own: a sync call
under it runs in a worker thread, so it costs a thread hand-over, microseconds, per call.

Targets (issue 7), on the stage: ``timed`` and ``cached`` (hit) add at most 3x the bare
call's cost, ``(wrapped - bare) / bare`` paired per round; hookline's retry is faster than
tenacity's on the success path.

    python benchmarks/bench_behaviors.py [--quick] [--json PATH]
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Case, Results, check, compare, finish, note, parse_args

import hookline
from hookline import behaviors
from hookline.behaviors import cached, logged, retry, timed, timeout, traced

NAME = "behaviors"
PACKAGES = ("hookline", "hookline-fraud", "tenacity", "cachetools", "opentelemetry-api")

EVENT = {"event_id": "e-1", "user_id": "u-1842", "kind": "purchase", "ts": 1_767_225_600_000,
         "amount": 12.5, "currency": "EUR", "tags": ["web"]}


# --------------------------------------------------------------------------------------------
# The bare calls


class _BlockedCurrency:
    """What hookline-fraud's stage does, for when that plugin is not installed."""

    _blocked = frozenset({"XTS", "XXX"})

    def process(self, event: Any) -> None:
        currency = event.currency
        if currency in self._blocked:
            raise hookline.Reject(f"currency {currency!r} is blocked")


def the_stage() -> tuple[Callable[[Any], Any], str]:
    """The bound ``process`` of fraud.blocked_currency, and where it came from."""
    try:
        from hookline_fraud import BlockedCurrency
    except ImportError:
        return _BlockedCurrency().process, "an equivalent class (hookline-fraud not installed)"
    stage = BlockedCurrency()
    stage.process(hookline.DefaultEvent.from_dict(dict(EVENT)))  # warm its cached_property
    return stage.process, "hookline_fraud.BlockedCurrency"


def identity(value: Any) -> Any:
    return value


# --------------------------------------------------------------------------------------------
# The wrapped variants


def variants(bare: Callable[..., Any], key: Callable[[Any], Any] | str | None,
             ) -> dict[str, Callable[..., Any]]:
    """Every way of wrapping ``bare`` that is timed, by case name (peers when installed)."""
    quiet = logging.getLogger("hookline.bench.quiet")
    quiet.setLevel(logging.WARNING)
    metrics = behaviors.Metrics()
    found: dict[str, Callable[..., Any]] = {
        "bare": bare,
        "retry": retry(attempts=3)(bare),
        "timed": timed(metrics=metrics)(bare),
        "cached (hit)": cached(key=key)(bare),
        "logged (off)": logged(logger=quiet.name)(bare),
        "traced": traced()(bare),
        "retry+timed+logged": behaviors.inject(
            bare, [retry(attempts=3), timed(metrics=metrics), logged(logger=quiet.name)]),
    }
    try:
        import tenacity
    except ImportError:
        pass
    else:
        found["tenacity retry"] = tenacity.retry(
            stop=tenacity.stop_after_attempt(3), reraise=True)(bare)
    try:
        import cachetools
    except ImportError:
        pass
    else:
        if isinstance(key, str):
            attribute = key
            found["cachetools (hit)"] = cachetools.cached(
                cachetools.LRUCache(maxsize=1024),
                key=lambda event: getattr(event, attribute))(bare)
        else:
            found["cachetools (hit)"] = cachetools.cached(cachetools.LRUCache(maxsize=1024))(bare)
    if key is None:
        found["functools.lru_cache (hit)"] = functools.lru_cache(maxsize=1024)(bare)
    return found


#: The floor of any timing wrapper: what two reads of the clock ``timed()`` uses cost here.
CLOCKS = "two clock reads"


def run_calls(title: str, functions: Mapping[str, Callable[..., Any]], argument: Any,
              timing: Mapping[str, Any]) -> Results:
    for name, function in functions.items():  # every variant gives the bare call's answer
        assert function(argument) == functions["bare"](argument), name
    cases = [Case.inline(name, "fn(arg)", {"fn": function, "arg": argument}, unroll=10)
             for name, function in functions.items()]
    cases.append(Case.inline(CLOCKS, "fn(arg)\nclock()\nclock()",
                             {"fn": functions["bare"], "arg": argument,
                              "clock": time.perf_counter_ns}, unroll=10,
                             note="the bare call plus two clock reads: the floor of timed()"))
    columns = {"x tenacity": "tenacity retry"} if "tenacity retry" in functions else None
    return compare(title, cases, reference="bare", columns=columns, **timing)


def added(results: Results, name: str) -> float:
    """``(name - bare) / bare``, the median over rounds: the wrapper's cost in bare calls."""
    return results.paired(lambda s: (s[name] - s["bare"]) / s["bare"])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__.partition("\n")[0], argv)
    timing = {"repeats": args.repeats, "min_time": args.min_time}
    process, origin = the_stage()
    event = hookline.DefaultEvent.from_dict(dict(EVENT))
    otel = ("installed: traced() opens real spans" if _has("opentelemetry")
            else "not installed: traced() returns the function itself")
    print(f"the stage: {origin}; OpenTelemetry {otel}")

    stage = run_calls("fraud.blocked_currency process(event), wrapped (ns per call)",
                      variants(process, "currency"), event, timing)
    trivial = run_calls("f(x) -> x, wrapped (ns per call)", variants(identity, None), 7, timing)

    bounded = timeout(1)(process)
    compare("timeout(1) on the stage: a worker thread per call (ns per call)", [
        Case.inline("bare", "fn(arg)", {"fn": process, "arg": event}),
        Case.inline("timeout", "fn(arg)", {"fn": bounded, "arg": event}),
    ], reference="bare", **timing)

    print("\nAdded cost per call, in bare calls ((wrapped - bare) / bare, paired per round):")
    for name in stage.samples:
        if name != "bare":
            also = f"{added(trivial, name):6.2f}x" if name in trivial.samples else "     -"
            print(f"  {name:<28} stage {added(stage, name):6.2f}x   trivial {also}")

    print("\nTargets (issue 7), on the stage:")
    check("timed adds, x the bare stage call", added(stage, "timed"), "<=", 3)
    check("cached (hit) adds, x the bare stage call", added(stage, "cached (hit)"), "<=", 3)
    for results, what in ((stage, "stage"), (trivial, "trivial function")):
        if "tenacity retry" in results.samples:
            check(f"hookline retry / tenacity retry, success path, {what}",
                  results.ratio("retry", "tenacity retry"), "<", 1)
        else:
            note("tenacity is not installed: the retry target is not checked")
            break
    if "cachetools (hit)" not in stage.samples:
        note("cachetools is not installed: no cache peer")
    return finish(args, NAME, PACKAGES)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    raise SystemExit(main())
