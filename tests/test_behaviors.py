"""Behaviours (issue 7): retry, timeout, timed, traced, logged, cached; specs and injection."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import math
import os
import pickle
import re
import sys
import time
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hookline
from hookline import behaviors
from hookline.behaviors import (
    Behavior,
    BehaviorError,
    Metrics,
    StageTimeout,
    cached,
    inject,
    logged,
    match,
    parse,
    parse_table,
    retry,
    timed,
    timeout,
    traced,
)


def _event(**overrides: Any) -> dict[str, Any]:
    return {"event_id": "e1", "user_id": "u1", "kind": "click", "ts": 1, **overrides}


class Flaky:
    """A callable that raises ``error`` on its first ``failures`` calls, then returns."""

    def __init__(self, failures: int, error: BaseException | None = None) -> None:
        self.failures = failures
        self.error = error if error is not None else ConnectionError("flaky")
        self.calls = 0

    def __call__(self, value: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return value


def every_behavior() -> list[Behavior]:
    return [retry(attempts=2), timeout(5), timed(metrics=Metrics()), traced(), logged(),
            cached()]


@retry(attempts=2)
def module_level(value: int) -> int:
    """A decorated module-level function: it pickles by reference."""
    return value + 1


# --------------------------------------------------------------------------------------------
# retry


def test_retry_passes_a_function_that_fails_twice_then_succeeds() -> None:
    flaky = Flaky(failures=2)
    assert retry(attempts=3)(flaky)("ok") == "ok"
    assert flaky.calls == 3


def test_retry_gives_up_after_its_attempts_with_the_last_error() -> None:
    flaky = Flaky(failures=2)
    with pytest.raises(ConnectionError, match="flaky") as info:
        retry(attempts=2)(flaky)("ok")
    assert flaky.calls == 2
    if sys.version_info >= (3, 11):
        assert any("retry gave up after 2 attempts" in note
                   for note in getattr(info.value, "__notes__", []))


@pytest.mark.parametrize("signal", [hookline.Reject("bad"), hookline.Drop(), KeyboardInterrupt(),
                                    SystemExit(3), GeneratorExit()])
def test_retry_never_retries_signals_or_base_exceptions(signal: BaseException) -> None:
    flaky = Flaky(failures=5, error=signal)
    with pytest.raises(type(signal)):
        retry(attempts=5)(flaky)("ok")
    assert flaky.calls == 1


def test_retry_retries_only_the_exceptions_named_in_on() -> None:
    flaky = Flaky(failures=1, error=ValueError("not transient"))
    with pytest.raises(ValueError):
        retry(attempts=3, on=ConnectionError)(flaky)("ok")
    assert flaky.calls == 1
    flaky = Flaky(failures=1, error=ConnectionResetError("transient"))
    assert retry(attempts=3, on=["ConnectionError"])(flaky)("ok") == "ok"


@pytest.mark.parametrize("on", [hookline.Reject, BaseException, KeyboardInterrupt, (), "Nope",
                                "no_such_module:Error", 3])
def test_retry_refuses_to_be_told_to_retry_signals_or_non_exceptions(on: Any) -> None:
    with pytest.raises(BehaviorError, match=r"retry: on=.* is invalid"):
        retry(on=on)


def test_retry_waits_backoff_doubling_plus_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(time, "sleep", pauses.append)  # read when the wrapper is made
    flaky = Flaky(failures=3)
    assert retry(attempts=4, backoff=0.01)(flaky)("ok") == "ok"
    assert pauses == [0.01, 0.02, 0.04]
    pauses.clear()
    retry(attempts=4, backoff=0.01, jitter=0.005)(Flaky(failures=3))("ok")
    assert [0.01 <= pauses[0] <= 0.015, 0.02 <= pauses[1] <= 0.025, 0.04 <= pauses[2] <= 0.045]\
        == [True, True, True]


def test_retry_on_async_functions() -> None:
    calls = 0

    async def flaky(value: str) -> str:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise ConnectionError("flaky")
        return value

    wrapped = retry(attempts=3)(flaky)
    assert inspect.iscoroutinefunction(wrapped)
    assert asyncio.run(wrapped("ok")) == "ok"
    assert calls == 3
    calls = 0
    with pytest.raises(ConnectionError):
        asyncio.run(retry(attempts=2)(flaky)("ok"))
    assert calls == 2

    async def rejecting(value: str) -> str:
        nonlocal calls
        calls += 1
        raise hookline.Reject("no")

    calls = 0
    with pytest.raises(hookline.Reject):
        asyncio.run(retry(attempts=3)(rejecting)("x"))
    assert calls == 1


# --------------------------------------------------------------------------------------------
# timeout


def test_a_sync_call_past_its_timeout_is_abandoned_at_the_deadline() -> None:
    sleeper = timeout(0.05)(time.sleep)
    started = time.perf_counter()
    with pytest.raises(StageTimeout, match=r"^timeout after 0.05 s$") as info:
        sleeper(2)
    assert time.perf_counter() - started < 1  # the sleeper would take 2 s
    assert isinstance(info.value, Exception)
    assert info.value.reason == "timeout after 0.05 s"


def test_an_async_call_past_its_timeout_is_cancelled_at_the_deadline() -> None:
    finished = False

    async def sleeper(seconds: float) -> None:
        nonlocal finished
        await asyncio.sleep(seconds)
        finished = True

    started = time.perf_counter()
    with pytest.raises(StageTimeout, match=r"^timeout after 0.05 s$"):
        asyncio.run(timeout(0.05)(sleeper)(2))
    assert time.perf_counter() - started < 1
    assert not finished


def test_timeout_returns_results_and_carries_errors_signals_and_context() -> None:
    assert timeout(5)(lambda value: value * 2)(21) == 42
    with pytest.raises(ValueError, match="boom"):
        timeout(5)(Flaky(1, ValueError("boom")))(1)
    with pytest.raises(hookline.Reject, match="no"):
        timeout(5)(Flaky(1, hookline.Reject("no")))(1)
    variable: contextvars.ContextVar[str] = contextvars.ContextVar("flag", default="off")
    variable.set("on")  # a flag scoped by the caller is seen by the call in its worker thread
    assert timeout(5)(lambda: variable.get())() == "on"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_timeout_works_in_a_forked_child() -> None:
    doubled = timeout(5)(lambda value: value * 2)
    assert doubled(1) == 2  # the parent's worker threads exist now; a child has none of them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads running
        child = os.fork()
    if child == 0:
        os._exit(0 if doubled(21) == 42 else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_an_async_stages_own_timeout_error_is_not_a_stage_timeout() -> None:
    async def own() -> None:
        raise TimeoutError("the database timed out")

    with pytest.raises(TimeoutError, match="database") as info:
        asyncio.run(timeout(5)(own)())
    assert not isinstance(info.value, StageTimeout)


def test_retry_around_timeout_gives_each_attempt_its_deadline() -> None:
    attempts = 0

    def slow_then_fast(value: int) -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            time.sleep(1)
        return value

    wrapped = inject(slow_then_fast, [retry(attempts=2), timeout(0.05)])
    started = time.perf_counter()
    assert wrapped(7) == 7
    assert attempts == 2 and time.perf_counter() - started < 0.9


# --------------------------------------------------------------------------------------------
# What every behaviour keeps: signature, identity, async-ness, exact parameters


@pytest.mark.parametrize("behavior", every_behavior(), ids=repr)
def test_the_wrapped_signature_and_identity_are_preserved(behavior: Behavior) -> None:
    def stage(event: dict[str, Any], *, strict: bool = False) -> int:
        """Docs of the stage."""
        return len(event) + strict

    wrapped = behavior(stage)
    assert inspect.signature(wrapped) == inspect.signature(stage)
    assert wrapped.__name__ == "stage" and wrapped.__doc__ == "Docs of the stage."
    assert inspect.unwrap(wrapped) is stage
    assert wrapped({"a": 1}, strict=True) == 2  # keywords and defaults work as on the original
    assert wrapped(event={"a": 1}) == 1
    with pytest.raises(TypeError):
        wrapped({}, True)  # type: ignore[misc]  # strict is keyword-only, as on the original


@pytest.mark.parametrize("behavior", every_behavior(), ids=repr)
def test_async_functions_get_async_wrappers(behavior: Behavior) -> None:
    async def stage(event: int) -> int:
        return event + 1

    wrapped = behavior(stage)
    assert inspect.iscoroutinefunction(wrapped)
    assert asyncio.run(wrapped(1)) == 2


@pytest.mark.parametrize("behavior", every_behavior(), ids=repr)
def test_any_parameter_shape_and_names_work(behavior: Behavior) -> None:
    def shapes(a, /, b, *rest, _function=1, _key=2, **extra):  # type: ignore[no-untyped-def]
        return (a, b, rest, _function, _key, extra)

    wrapped = behavior(shapes)
    assert wrapped(1, 2, 3, _key=5, x=6) == (1, 2, (3,), 1, 5, {"x": 6})
    assert inspect.signature(wrapped) == inspect.signature(shapes)


@pytest.mark.parametrize("behavior", every_behavior(), ids=repr)
def test_signals_pass_through_every_behavior_untouched(behavior: Behavior) -> None:
    for signal in (hookline.Reject("bad"), hookline.Drop("noise")):
        flaky = Flaky(failures=1, error=signal)
        with pytest.raises(type(signal)) as info:
            behavior(flaky)("x")
        assert info.value is signal and flaky.calls == 1


def test_behaviors_listed_by_applied_outermost_first() -> None:
    def stage(event: Any) -> None:
        pass

    chain = [retry(attempts=2), timed(metrics=Metrics()), cached(maxsize=2)]
    assert behaviors.applied(inject(stage, chain)) == tuple(chain)
    assert behaviors.applied(stage) == ()

    class Stage:
        @retry(attempts=5)
        def process(self, event: Any) -> None:
            pass

    assert behaviors.applied(Stage().process) == (retry(attempts=5),)


def test_inject_applies_the_first_behavior_outermost() -> None:
    order: list[str] = []
    metrics = Metrics()

    def stage(event: Any) -> Any:
        order.append("stage")
        if len(order) < 3:
            raise ConnectionError("once")
        return event

    # retry outside timed: each attempt is one timed call; the first two raised.
    wrapped = inject(stage, ["retry(attempts=3)", {"timed": {}}], name="p.s", metrics=metrics)
    assert wrapped(1) == 1
    assert metrics.snapshot()["p.s"]["calls"] == 3
    assert metrics.snapshot()["p.s"]["errors"] == 2


def test_wrapping_a_non_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"retry\(attempts=3\) wraps a callable, not 3"):
        retry()(3)  # type: ignore[type-var]


# --------------------------------------------------------------------------------------------
# Pickling and specs


@pytest.mark.parametrize("behavior", [
    retry(),
    retry(attempts=5, backoff=0.5, jitter=0.1, on=(ConnectionError, "json:JSONDecodeError")),
    timeout(0.05), timed(), timed(name="fraud.velocity"), traced(), traced(name="span"),
    logged(), logged(level="info", name="x", logger="app"), cached(),
    cached(key="user_id", maxsize=10, ttl=2.5), cached(key=["user_id", "kind"], maxsize=None),
], ids=repr)
def test_each_behavior_pickles_by_its_options_and_its_repr_parses_back(
        behavior: Behavior) -> None:
    copy = pickle.loads(pickle.dumps(behavior))
    assert copy == behavior and repr(copy) == repr(behavior) and hash(copy) == hash(behavior)
    assert parse(repr(behavior)) == behavior
    event = types.SimpleNamespace(user_id="u1", kind="click")
    assert copy(lambda value: value)(event) is event


def test_a_decorated_module_level_function_pickles_by_reference() -> None:
    assert pickle.loads(pickle.dumps(module_level)) is module_level
    assert module_level(1) == 2


def test_metrics_and_errors_pickle() -> None:
    metrics = Metrics()
    timed(metrics=metrics)(lambda: None)()
    copy = pickle.loads(pickle.dumps(metrics))
    assert copy.snapshot() == metrics.snapshot()
    assert pickle.loads(pickle.dumps(timed(metrics=metrics))).options["metrics"].snapshot() \
        == metrics.snapshot()
    error = pickle.loads(pickle.dumps(StageTimeout(0.05, "fraud.velocity")))
    assert (str(error), error.stage, error.seconds) == ("timeout after 0.05 s",
                                                        "fraud.velocity", 0.05)
    bad = pickle.loads(pickle.dumps(BehaviorError("m", "retry", "attempts")))
    assert (str(bad), bad.behavior, bad.argument) == ("m", "retry", "attempts")


@given(attempts=st.integers(1, 10**6), backoff=st.floats(0, 1e6), jitter=st.floats(0, 1e6),
       maxsize=st.none() | st.integers(1, 10**9), ttl=st.none() | st.floats(1e-9, 1e9),
       seconds=st.floats(1e-9, 1e9), level=st.sampled_from(["DEBUG", "INFO", "ERROR", 5]))
def test_every_literal_behavior_survives_repr_and_parse(
        attempts: int, backoff: float, jitter: float, maxsize: int | None, ttl: float | None,
        seconds: float, level: str | int) -> None:
    for behavior in (retry(attempts, backoff, jitter), cached(None, maxsize, ttl),
                     timeout(seconds), logged(level)):
        assert parse(repr(behavior)) == behavior
        assert parse({behavior.name: dict(behavior.options)}) == behavior


@pytest.mark.parametrize(("spec", "expected"), [
    ("retry(attempts=3, backoff=0.01)", retry(attempts=3, backoff=0.01)),
    ("  retry( 3 ) ", retry(attempts=3)),
    ("timeout(0.05)", timeout(0.05)),
    ("timed", timed()),
    ("timed()", timed()),
    ("logged('INFO')", logged("INFO")),
    ("cached(key='user_id', ttl=60)", cached(key="user_id", ttl=60)),
    ("retry(on=['ConnectionError', 'TimeoutError'])", retry(on=(ConnectionError, TimeoutError))),
    ({"retry": {"attempts": 3}}, retry(attempts=3)),
    ({"timeout": 0.05}, timeout(0.05)),
    ({"retry": [4, 0.5]}, retry(attempts=4, backoff=0.5)),
    ({"traced": {}}, traced()),
])
def test_parse_reads_strings_and_tables(spec: Any, expected: Behavior) -> None:
    assert parse(spec) == expected
    assert parse(expected) is expected


@pytest.mark.parametrize(("spec", "message"), [
    ("retyr(attempts=3)", r"unknown behaviour 'retyr' in 'retyr\(attempts=3\)'; did you mean "
                          r"'retry'\? \(known: cached, logged, retry, timed, timeout, traced\)"),
    ({"timeot": 0.05}, r"unknown behaviour 'timeot'.*did you mean 'timeout'\?"),
    ("explode", r"unknown behaviour 'explode' in 'explode' \(known: "),
    ("retry(atempts=3)", r"retry: unknown argument atempts=3 in 'retry\(atempts=3\)'; did you "
                         r"mean 'attempts'\? \(retry takes attempts, backoff, jitter, on\)"),
    ("retry(attempts=0)", r"retry: attempts=0 is invalid \(must be an integer >= 1\) in "),
    ("retry(attempts='3')", r"retry: attempts='3' is invalid \(must be an integer >= 1\)"),
    ("retry(backoff=-1)", r"retry: backoff=-1 is invalid \(must be a number of seconds >= 0\)"),
    ("timeout(0)", r"timeout: seconds=0 is invalid \(must be a number of seconds > 0\)"),
    ("timeout(1e10)", r"timeout: seconds=10000000000.0 is invalid \(at most "),
    ("timeout(seconds=float('inf'))", r"timeout: seconds=float\('inf'\) in .* is not a literal"),
    ("timeout()", r"timeout: missing a required argument: 'seconds'"),
    ("timeout(1, 2)", r"timeout: too many positional arguments \[1, 2\]"),
    ("cached(maxsize=0)", r"cached: maxsize=0 is invalid \(must be an integer >= 1\)"),
    ("cached(key=3)", r"cached: key=3 is invalid"),
    ("logged(level='LOUD')", r"logged: level='LOUD' is invalid"),
    ("retry(attempts=__import__('os').system('x'))", r"retry: attempts=__import__.* is not a "
                                                     r"literal"),
    ("retry(*args)", r"retry: \*arguments are not allowed"),
    ("retry(**kw)", r"retry: \*\*arguments are not allowed"),
    ("retry(attempts=1, attempts=2)", r"retry: argument attempts given twice"),
    ("retry(", r"cannot parse behaviour spec 'retry\('"),
    ("os.system('x')", r"is not a call like 'retry\(attempts=3\)'"),
    ({"retry": {}, "timed": {}}, r"exactly one behaviour, not \['retry', 'timed'\]"),
    ({"retry": {"attempts": 0}}, r"retry: attempts=0 is invalid .* in \{'retry': "),
    (3, r"a behaviour spec is a string like"),
])
def test_parse_names_the_behavior_argument_and_value_in_errors(spec: Any, message: str) -> None:
    with pytest.raises(BehaviorError, match=message):
        parse(spec)


def test_a_behavior_error_is_a_value_error_naming_behavior_and_argument() -> None:
    with pytest.raises(ValueError) as info:
        parse("retry(attempts=-2)")
    assert isinstance(info.value, BehaviorError)
    assert (info.value.behavior, info.value.argument) == ("retry", "attempts")


def test_parse_table_validates_a_behaviors_table_in_order() -> None:
    rules = parse_table({
        "fraud.*": ["retry(attempts=3)", "timeout(0.05)"],
        "*": "timed",
        "ranking.score": [{"cached": {"key": "user_id"}}],
    }, source="hookline.toml [behaviors]")
    assert [rule.pattern for rule in rules] == ["fraud.*", "*", "ranking.score"]
    assert rules[0].behaviors == (retry(attempts=3), timeout(0.05))
    assert all(rule.source == "hookline.toml [behaviors]" for rule in rules)
    selected = behaviors.matching(rules, "fraud.velocity")
    assert [b for rule in selected for b in rule.behaviors] == [
        retry(attempts=3), timeout(0.05), timed()]
    assert pickle.loads(pickle.dumps(rules)) == rules


@pytest.mark.parametrize(("table", "message"), [
    ({"fraud.*": ["retry(attempts=3)", "retyr"]},
     r"^hookline.toml \[behaviors\] 'fraud.\*' #2: unknown behaviour 'retyr'.*'retry'"),
    ({"fraud.*": [{"timeout": -1}]},
     r"^hookline.toml \[behaviors\] 'fraud.\*' #1: timeout: seconds=-1 is invalid"),
    ({"fraud.*": 3}, r"'fraud.\*': expected a list of behaviours, not 3"),
    ({"": ["timed"]}, r"'' is not a stage pattern"),
    (["timed"], r"must be a table of stage patterns"),
])
def test_parse_table_errors_name_the_source_pattern_and_position(table: Any,
                                                                 message: str) -> None:
    with pytest.raises(BehaviorError, match=message):
        parse_table(table, source="hookline.toml [behaviors]")


@pytest.mark.parametrize(("pattern", "stage", "expected"), [
    ("fraud.*", "fraud.velocity", True),
    ("fraud.*", "fraudulent.velocity", False),
    ("fraud", "fraud.velocity", True),
    ("fraud", "fraudulent.velocity", False),
    ("*", "ranking.score", True),
    ("*.velocity", "fraud.velocity", True),
    ("fraud.velocity", "fraud.velocity", True),
    ("fraud.v?locity", "fraud.velocity", True),
    ("Fraud.*", "fraud.velocity", False),
])
def test_match_selects_qualified_stage_names(pattern: str, stage: str, expected: bool) -> None:
    assert match(pattern, stage) is expected


# --------------------------------------------------------------------------------------------
# cached


def test_cached_hits_and_misses_by_the_argument() -> None:
    lookup = Flaky(failures=0)
    wrapped = cached()(lookup)
    assert [wrapped("a"), wrapped("a"), wrapped("b"), wrapped("a")] == ["a", "a", "b", "a"]
    assert lookup.calls == 2
    wrapped.cache_clear()  # type: ignore[attr-defined]
    wrapped("a")
    assert lookup.calls == 3


def test_cached_evicts_the_least_recently_used_beyond_maxsize() -> None:
    lookup = Flaky(failures=0)
    wrapped = cached(maxsize=2)(lookup)
    for key in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" comes
        wrapped(key)
    assert lookup.calls == 3
    wrapped("a")
    assert lookup.calls == 3
    wrapped("b")
    assert lookup.calls == 4


def test_cached_entries_expire_after_ttl() -> None:
    lookup = Flaky(failures=0)
    wrapped = cached(ttl=0.2)(lookup)
    wrapped("a")
    wrapped("a")
    assert lookup.calls == 1
    time.sleep(0.3)
    wrapped("a")
    assert lookup.calls == 2


def test_cached_never_stores_errors_and_calls_through_unhashable_keys() -> None:
    flaky = Flaky(failures=1, error=ValueError("once"))
    wrapped = cached()(flaky)
    with pytest.raises(ValueError):
        wrapped("a")
    assert wrapped("a") == "a" and flaky.calls == 2
    lookup = Flaky(failures=0)
    unhashable = cached()(lookup)
    assert unhashable(["x"]) == ["x"] and unhashable(["x"]) == ["x"]
    assert lookup.calls == 2


def test_cached_keys_by_attribute_callable_or_all_arguments() -> None:
    seen: list[Any] = []

    def stage(event: Any) -> str:
        seen.append(event.user_id)
        return f"risk of {event.user_id}"

    pipeline_event = hookline.DefaultEvent.from_dict(_event())  # events are unhashable
    by_user = cached(key="user_id")(stage)
    assert by_user(pipeline_event) == by_user(pipeline_event) == "risk of u1"
    assert seen == ["u1"]
    by_callable = cached(key=lambda event: event.user_id.upper())(stage)
    by_callable(pipeline_event)
    by_callable(pipeline_event)
    assert seen == ["u1", "u1"]

    calls = []

    def add(a: int, b: int, *, scale: int = 1) -> int:
        calls.append((a, b, scale))
        return (a + b) * scale

    wrapped = cached()(add)
    assert [wrapped(1, 2), wrapped(1, 3), wrapped(1, 2), wrapped(1, 2, scale=2)] == [3, 4, 3, 6]
    assert len(calls) == 3


def test_cached_methods_key_on_the_instance_too() -> None:
    class Stage:
        def __init__(self, factor: int) -> None:
            self.factor = factor

        @cached()
        def score(self, value: int) -> int:
            return value * self.factor

        @cached(key="real")
        def by_attribute(self, value: complex) -> float:
            return value.real * self.factor

    assert (Stage(2).score(5), Stage(3).score(5)) == (10, 15)
    assert Stage(2).by_attribute(1 + 2j) == 2


def test_cached_async_functions_cache_the_awaited_result() -> None:
    calls = 0

    async def lookup(key: str) -> str:
        nonlocal calls
        calls += 1
        return key * 2

    wrapped = cached()(lookup)

    async def main() -> list[str]:
        return [await wrapped("a"), await wrapped("a")]

    assert asyncio.run(main()) == ["aa", "aa"] and calls == 1


# --------------------------------------------------------------------------------------------
# timed (what it records, Metrics, is tested in test_metrics.py)

def test_timed_counts_calls_errors_and_latency() -> None:
    metrics = Metrics()
    flaky = timed(metrics=metrics)(Flaky(failures=2, error=ValueError("x")))
    for _ in range(2):
        with pytest.raises(ValueError):
            flaky(1)
    for _ in range(3):
        flaky(1)
    rejecting = timed(name="p.reject", metrics=metrics)(Flaky(1, hookline.Reject("no")))
    with pytest.raises(hookline.Reject):
        rejecting(1)
    sleeper = timed(name="p.sleep", metrics=metrics)(time.sleep)
    sleeper(0.01)
    snapshot = metrics.snapshot()
    name = next(n for n in snapshot if n.endswith("Flaky"))
    assert (snapshot[name]["calls"], snapshot[name]["errors"]) == (5, 2)
    assert (snapshot["p.reject"]["calls"], snapshot["p.reject"]["errors"]) == (1, 0)
    slept = snapshot["p.sleep"]
    assert slept["mean_us"] >= 10_000  # one call: the mean is its latency, exactly
    # ... and the quantiles are read from the middle of its bucket, within an eighth of it.
    assert slept["p50_us"] == slept["p99_us"] == pytest.approx(slept["mean_us"], rel=1 / 8)
    assert set(slept) == {"calls", "errors", "p50_us", "p99_us", "mean_us"}


def test_timed_records_where_it_is_told() -> None:
    own, injected = Metrics(), Metrics()
    before = behaviors.DEFAULT_METRICS.snapshot().get("t.default", {}).get("calls", 0)
    timed(name="t.default")(lambda: None)()
    assert behaviors.DEFAULT_METRICS.snapshot()["t.default"]["calls"] == before + 1
    inject(lambda: None, [timed()], name="t.injected", metrics=injected)()
    inject(lambda: None, [timed(metrics=own)], name="t.own", metrics=injected)()
    assert injected.names() == ["t.injected"] and own.names() == ["t.own"]


# --------------------------------------------------------------------------------------------
# logged and traced


def test_logged_emits_structured_records(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hookline.behaviors")
    wrapped = inject(Flaky(failures=1, error=ValueError("boom")), [logged()], name="fraud.v")
    with pytest.raises(ValueError):
        wrapped(1)
    wrapped(1)
    rejecting = logged(level="INFO", name="fraud.r")(Flaky(1, hookline.Reject("blocked")))
    with pytest.raises(hookline.Reject):
        rejecting(1)
    records = [r for r in caplog.records if r.name == "hookline.behaviors"]
    assert [(r.stage, r.outcome, r.levelno) for r in records] == [  # type: ignore[attr-defined]
        ("fraud.v", "error", logging.DEBUG), ("fraud.v", "ok", logging.DEBUG),
        ("fraud.r", "rejected", logging.INFO)]
    assert records[0].detail == "ValueError: boom"  # type: ignore[attr-defined]
    assert records[2].detail == "blocked"  # type: ignore[attr-defined]
    assert all(r.duration_ms >= 0 for r in records)  # type: ignore[attr-defined]
    assert re.fullmatch(r"fraud\.v ok in \d+\.\d{3} ms", records[1].getMessage())


def test_logged_costs_a_level_check_when_disabled(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="quiet")
    wrapped = logged(level="DEBUG", logger="quiet")(lambda value: value)
    assert wrapped(3) == 3
    assert not [r for r in caplog.records if r.name == "quiet"]


@pytest.fixture
def no_opentelemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)


@pytest.mark.usefixtures("no_opentelemetry")
def test_traced_is_a_no_op_without_opentelemetry() -> None:
    def stage(event: Any) -> Any:
        return event

    async def async_stage(event: Any) -> Any:
        return event

    assert traced()(stage) is stage
    assert traced()(async_stage) is async_stage
    assert inject(stage, [traced(), traced(name="x")]) is stage


class _FakeSpan:
    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self.name, self.attributes = name, dict(attributes)
        self.exceptions: list[BaseException] = []
        self.status: Any = None

    def record_exception(self, error: BaseException) -> None:
        self.exceptions.append(error)

    def set_status(self, status: Any) -> None:
        self.status = status

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> list[_FakeSpan]:
    """A stand-in ``opentelemetry.trace`` recording the spans it is asked for."""
    recorded: list[_FakeSpan] = []

    @contextlib.contextmanager
    def start_as_current_span(name: str, attributes: dict[str, Any], record_exception: bool,
                              set_status_on_exception: bool) -> Iterator[_FakeSpan]:
        assert not record_exception and not set_status_on_exception
        span = _FakeSpan(name, attributes)
        recorded.append(span)
        yield span

    trace = types.ModuleType("opentelemetry.trace")
    trace.get_tracer = lambda name: types.SimpleNamespace(  # type: ignore[attr-defined]
        start_as_current_span=start_as_current_span)
    trace.Status = lambda code, description: (code, description)  # type: ignore[attr-defined]
    trace.StatusCode = types.SimpleNamespace(ERROR="ERROR")  # type: ignore[attr-defined]
    package = types.ModuleType("opentelemetry")
    package.trace = trace  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "opentelemetry", package)
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", trace)
    return recorded


def test_traced_opens_a_span_per_call_with_outcomes(spans: list[_FakeSpan]) -> None:
    flaky = inject(Flaky(1, ValueError("boom")), [traced()], name="fraud.v")
    with pytest.raises(ValueError):
        flaky(1)
    assert flaky(1) == 1
    with pytest.raises(hookline.Drop):
        traced(name="custom")(Flaky(1, hookline.Drop("noise")))(1)

    async def async_stage(event: int) -> int:
        return event

    assert asyncio.run(traced()(async_stage)(4)) == 4
    assert [span.name for span in spans][:3] == ["fraud.v", "fraud.v", "custom"]
    assert spans[0].status == ("ERROR", "ValueError: boom") and spans[1].status is None
    assert spans[0].attributes["hookline.stage"] == "fraud.v"
    assert spans[2].attributes["hookline.outcome"] == "dropped" and spans[2].status is None
    assert spans[3].name.endswith("async_stage")


# --------------------------------------------------------------------------------------------
# In a pipeline


def _flaky_stage(failures: int, behavior: Behavior,
                 error: BaseException | None = None) -> tuple[type[hookline.Stage], list[int]]:
    calls: list[int] = []

    class Flaky(hookline.Stage, phase="validate", name="flaky"):
        @behavior
        def process(self, event: hookline.Event) -> None:
            calls.append(1)
            if len(calls) <= failures:
                raise error if error is not None else ConnectionError("flaky service")

    return Flaky, calls


@pytest.mark.usefixtures("registry")
def test_a_stage_decorated_with_retry_passes_in_a_pipeline() -> None:
    stage, calls = _flaky_stage(2, retry(attempts=3))
    pipeline = hookline.Pipeline.from_plugins([("fraud", stage)])
    assert pipeline.process(_event()).event_id == "e1"
    assert len(calls) == 3
    assert inspect.signature(stage.process) == inspect.signature(
        inspect.unwrap(stage.process))


@pytest.mark.usefixtures("registry")
def test_a_stage_that_fails_more_often_than_retry_allows_fails_in_a_pipeline() -> None:
    stage, calls = _flaky_stage(2, retry(attempts=2))
    pipeline = hookline.Pipeline.from_plugins([("fraud", stage)])
    with pytest.raises(hookline.StageFailed) as info:
        pipeline.process(_event())
    assert info.value.stage == "fraud.flaky" and isinstance(info.value.error, ConnectionError)
    assert len(calls) == 2


@pytest.mark.usefixtures("registry")
def test_reject_inside_a_retried_stage_is_not_retried_in_a_pipeline() -> None:
    stage, calls = _flaky_stage(5, retry(attempts=3), hookline.Reject("blocked"))
    pipeline = hookline.Pipeline.from_plugins([("fraud", stage)])
    with pytest.raises(hookline.Reject, match="blocked") as info:
        pipeline.process(_event())
    assert info.value.stage == "fraud.flaky" and len(calls) == 1


@pytest.mark.usefixtures("registry")
def test_a_stage_past_its_timeout_fails_with_a_timeout_in_a_pipeline() -> None:
    class Sleepy(hookline.Stage, phase="enrich", name="sleepy"):
        @timeout(0.05)
        def process(self, event: hookline.Event) -> None:
            time.sleep(2)

    class AsyncSleepy(hookline.Stage, phase="score", name="async_sleepy"):
        @timeout(0.05)
        async def process(self, event: hookline.Event) -> None:
            await asyncio.sleep(2)

    for stage, name in ((Sleepy, "sleepy"), (AsyncSleepy, "async_sleepy")):
        pipeline = hookline.Pipeline.from_plugins([("slow", stage)])
        started = time.perf_counter()
        with pytest.raises(hookline.StageFailed) as info:
            pipeline.process(_event())
        assert time.perf_counter() - started < 1
        assert info.value.stage == f"slow.{name}"
        assert isinstance(info.value.error, StageTimeout)
        assert info.value.error.reason.startswith("timeout")
        pipeline.close()


def test_inject_wraps_a_bound_process_method_by_spec() -> None:
    metrics = Metrics()

    class Stage:
        def __init__(self) -> None:
            self.calls = 0

        def process(self, event: Any) -> None:
            self.calls += 1
            if self.calls < 2:
                raise ConnectionError("once")

    stage = Stage()
    process = inject(stage.process, ["retry(attempts=2)", "timed"], name="fraud.v",
                     metrics=metrics)
    assert process(object()) is None
    assert inspect.signature(process) == inspect.signature(stage.process)
    assert metrics.snapshot()["fraud.v"]["calls"] == 2
    assert behaviors.applied(process) == (retry(attempts=2), timed())


def test_importing_the_module_starts_no_thread_and_imports_no_telemetry() -> None:
    import subprocess

    code = ("import threading, sys\nimport hookline.behaviors\n"
            "assert threading.active_count() == 1\n"
            "assert 'opentelemetry' not in sys.modules and 'asyncio' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_callable_objects_and_functions_without_signatures_can_be_wrapped() -> None:
    assert retry()(math.floor)(2.5) == 2
    assert cached()(Flaky(failures=0))(5) == 5
    assert timed(metrics=Metrics())(len)("abc") == 3

    class AsyncCallable:
        def __init__(self) -> None:
            self.calls = 0

        async def __call__(self, value: int) -> int:
            self.calls += 1
            if self.calls < 2:
                raise ConnectionError("once")
            return value

    wrapped = retry(attempts=2)(AsyncCallable())
    assert inspect.iscoroutinefunction(wrapped)
    assert asyncio.run(wrapped(8)) == 8


@pytest.mark.parametrize("factory", [retry, timeout, timed, traced, logged, cached])
def test_every_factory_is_known_to_parse_by_its_name(factory: Callable[..., Behavior]) -> None:
    assert behaviors.FACTORIES[factory.__name__] is factory
