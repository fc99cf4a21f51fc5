"""The one module that generates code.

Three things are compiled here, once per class, plugin set or wrapped stage, never per event:

* a schema's ``__init__`` and ``from_dict``, with every field's rules inlined
  (:func:`compile_schema`), and from the same rules each field's ``check()``, the check
  that guards assignment (:func:`compile_check`, :func:`compile_accepts`) and the check of an
  accepted event at the boundary, after its stages (:func:`compile_boundary`), and
* a phase's call plan, a flat function calling each implementation in order
  (:func:`compile_phase`), and the glue that drives the phase's ``wrapper=True`` generators
  around it as pluggy's caller does (:func:`compile_wrapped`; plugin code runs as written:
  only hookline's own code is generated), and
* a behaviour's wrapper with the wrapped function's own parameter list
  (:func:`compile_wrapper`).

Generated functions get a readable unique filename (``<hookline generated from_dict
app.Purchase>``) registered in :mod:`linecache` before compiling, so tracebacks and pdb show
their source. Only the lines a class needs are emitted.
"""

from __future__ import annotations

import inspect
import linecache
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, NamedTuple, Protocol

from ._fold import wrapper_error as _wrapper_error
from .errors import FieldError, ValidationError


def compile_function(
    name: str, lines: Sequence[str], namespace: dict[str, Any], *, what: str
) -> Callable[..., Any]:
    """Compile ``lines`` (one ``def``) into a function named ``name`` with readable source.

    ``what`` names the generated function in its filename, e.g. ``from_dict app.Purchase``.
    """
    source = "\n".join(lines) + "\n"
    # Named by what it is and by its source: unique, and the same code has the same name in
    # every process (tracebacks stored in dead letters do not depend on what ran before).
    digest = f"{zlib.crc32(source.encode()):08x}"
    filename = f"<hookline generated {what} #{digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    code = compile(source, filename, "exec")
    scope: dict[str, Any] = {}
    exec(code, namespace, scope)
    function: Callable[..., Any] = scope[name]
    return function


# -- schemas ---------------------------------------------------------------------------------
#
# A field states its check as rules, source text written by hookline.fields; this section
# turns the same rules into the field's check() and accepts() and into the lines a schema's
# __init__ and from_dict inline. It knows neither fields nor schemas: they hand it rules,
# plans and the names the generated code calls.


class RuleSource(Protocol):
    """A rule, as source text over a variable: ``test`` is true when the value passes;
    ``message`` gives the error, or is None on a container's items (whose errors the field
    explains itself); with ``loop=(item, iterable)`` the test holds for each item."""

    test: str
    message: str | None
    loop: tuple[str, str] | None


def check_lines(rules: Sequence[RuleSource], fail: Callable[[RuleSource], str]) -> list[str]:
    """Statements that run ``fail(rule)`` for the first rule the value breaks, if any.

    One ``if``/``elif`` per rule, then a plain loop (no generator frame) per rule on items,
    each entered only if every rule before it passed. The one rendering of a field's rules:
    its ``check()``, its ``accepts()`` and the generated ``__init__``/``from_dict`` differ
    only in what ``fail`` does.
    """
    lines: list[str] = []
    indent = ""
    for rule in rules:
        statements = [fail(rule)]
        if rule.loop is None:
            assert not indent, "rules on items come last"
            lines += [f"{'elif' if lines else 'if'} not ({rule.test}):", f"    {statements[0]}"]
            continue
        assert lines, "a rule without a loop (the type) comes first"
        if not statements[0].startswith("return "):
            statements.append("break")  # one error for the whole container
        item, iterable = rule.loop
        lines += [f"{indent}else:", f"{indent}    for {item} in {iterable}:",
                  f"{indent}        if not ({rule.test}):",
                  *(f"{indent}            {statement}" for statement in statements)]
        indent += "    "  # the next loop goes in this one's `else:` (no break: all passed)
    return lines


def condition(rules: Sequence[RuleSource], namespace: dict[str, Any]) -> str:
    """``rules`` as one expression, for the items of a container (``_all()`` for loops)."""
    parts = []
    for rule in rules:
        if rule.loop is None:
            parts.append(rule.test)
        else:
            namespace["_all"] = all
            item, iterable = rule.loop
            parts.append(f"_all({rule.test} for {item} in {iterable})")
    return " and ".join(parts)


def compile_check(
    var: str, rules: Sequence[RuleSource], namespace: dict[str, Any], *, what: str
) -> Callable[[Any], str | None]:
    """``check(value)``: the message of the first rule ``value`` breaks, or None.

    Rules without a message (on a container's items) are left out: the caller checks items.
    """
    told = [rule for rule in rules if rule.message is not None]
    checks = check_lines(told, lambda rule: f"return {rule.message}")
    lines = [f"def check({var}):", *(f"    {line}" for line in checks), "    return None"]
    return compile_function("check", lines, namespace, what=f"check {what}")


def compile_accepts(
    var: str, rules: Sequence[RuleSource], namespace: dict[str, Any], *, what: str
) -> Callable[[Any], bool]:
    """``accepts(value)``: true when ``value`` breaks none of ``rules`` (items included)."""
    checks = check_lines(rules, lambda rule: "return False")
    lines = [f"def accepts({var}):", *(f"    {line}" for line in checks), "    return True"]
    return compile_function("accepts", lines, namespace, what=f"accepts {what}")


class FieldPlan(NamedTuple):
    """One field, as the generated ``__init__`` and ``from_dict`` handle it."""

    name: str
    #: The descriptor, ``_f_<name>`` in the generated code, which calls its ``problems()``
    #: and ``convert()``.
    field: Any
    required: bool
    #: The value when the field is missing and not required (None for an optional field),
    #: or a factory called for each instance when ``factory`` is true.
    default: Any
    factory: bool
    optional: bool
    converts: bool
    #: ``rules(var, namespace)``: the field's rules over ``var``, inlined; None when the
    #: generated code calls the field's ``problems()`` instead.
    rules: Callable[[str, dict[str, Any]], Sequence[RuleSource] | None] | None


def _field_lines(plan: FieldPlan, ns: dict[str, Any], *, mapping: bool) -> list[str]:
    """The lines that fetch, default and check one field into the local ``v_<name>``.

    ``mapping``: read from the dict ``data`` (``from_dict``), else from the keyword parameter
    of the same name (``__init__``).
    """
    name = plan.name
    var = f"v_{name}"
    ns[f"_f_{name}"] = plan.field
    if plan.required:
        if_missing = [f"_errors = _missing(_errors, {name!r})"]
    elif plan.factory:
        ns[f"_default_{name}"] = plan.default
        if_missing = [f"{var} = _default_{name}()"]
    elif plan.default is None:
        if_missing = [f"{var} = None"]
    else:
        ns[f"_default_{name}"] = plan.default
        if_missing = [f"{var} = _default_{name}"]
    lines = [f"    # {name}: {plan.field!r}"]
    if mapping and plan.required:
        # The common case, a present key, costs one subscript; try is free until it raises.
        lines += ["    try:", f"        {var} = data[{name!r}]", "    except KeyError:"]
    elif mapping:
        lines += [f"    {var} = data.get({name!r}, _MISSING)", f"    if {var} is _MISSING:"]
    else:
        lines += [f"    {var} = {name}", f"    if {var} is _MISSING:"]
    if plan.converts and not plan.required:
        if_missing.append(f"if {var} is not None: {var} = _f_{name}.convert({var})")
    lines += ["        _missing_n += 1", *(f"        {line}" for line in if_missing)]
    rules = plan.rules(var, ns) if plan.rules is not None else None
    if rules is not None:

        def fail(rule: RuleSource) -> str:
            if rule.message is None:  # on items: the field names each bad item's path
                return f"_errors = _invalid(_errors, _f_{name}, {var}, {name!r})"
            return f"_errors = _fail(_errors, _f_{name}, {var}, {name!r}, {rule.message})"

        checks = check_lines(rules, fail)
        if plan.optional:
            checks = [f"if {var} is not None:", *(f"    {line}" for line in checks)]
        lines.append("    else:")
        lines.extend(f"        {line}" for line in checks)
        return lines
    # Not inlined (validators, conversion, nested schemas): ask the field itself.
    lines.append("    else:")
    lines.append(f"        _problems = _f_{name}.problems({var}, {name!r})")
    lines.append("        if _problems:")
    lines.append("            _errors = _problems if _errors is None else _errors + _problems")
    if plan.converts:
        lines.append(f"        elif {var} is not None:")
        lines.append(f"            {var} = _f_{name}.convert({var})")
    return lines


def compile_schema(
    cls: type[Any], plans: Sequence[FieldPlan], *, keep_extra: bool,
    runtime: Mapping[str, Any],
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A generated ``from_dict(data)`` and ``__init__(self, **fields)`` for ``cls``.

    ``keep_extra``: unknown keys go into the ``properties`` field instead of being errors.
    ``runtime`` holds the names the generated code calls: ``_MISSING`` (the marker of a
    keyword not given), ``_missing(errors, path)``, ``_fail(errors, field, value, path,
    message)`` (the message of the rule ``value`` broke), ``_invalid(errors, field, value,
    path)`` (every problem ``field.problems()`` finds), ``_unknown(cls, errors, data)``,
    ``_keep_extra(cls, data, properties, errors)`` (returns both, the unknown keys merged
    in and checked) and ``_set_dict(instance, values)`` (store the instance's dict). Each
    error helper takes and returns the error list, None until the first error.
    """
    qualname = f"{cls.__module__}.{cls.__qualname__}"
    ns: dict[str, Any] = {
        **runtime,
        "_ValidationError": ValidationError,
        "_FieldError": FieldError,
        "_new": object.__new__,
        "_schema_name": cls.__name__,
        "cls": cls,
    }
    stored = ", ".join(f"{plan.name!r}: v_{plan.name}" for plan in plans)

    # from_dict(data)
    lines = [
        "def from_dict(data):",
        f'    """Build a {cls.__name__} from a dict, checking every field (generated)."""',
        "    if data.__class__ is not dict:",
        "        raise _ValidationError([_FieldError('$', 'must be an object', data)],"
        " _schema_name)",
        "    _errors = None",
        "    _missing_n = 0",
    ]
    for plan in plans:
        lines += _field_lines(plan, ns, mapping=True)
    lines.append(f"    if len(data) + _missing_n != {len(plans)}:")
    if keep_extra:
        lines.append("        v_properties, _errors = _keep_extra(cls, data, v_properties,"
                     " _errors)")
    else:
        lines.append("        _errors = _unknown(cls, _errors, data)")
    lines += [
        "    if _errors is not None:",
        "        raise _ValidationError(_errors, _schema_name)",
        "    self = _new(cls)",
    ]
    if any(plan.converts for plan in plans):
        lines.append(f"    _set_dict(self, {{{stored}}})")
    else:
        # Every key present, known and valid, nothing converted: the values are data's own,
        # and copying the dict in C is cheaper than rebuilding it from the locals.
        copied = f"data.copy() if not _missing_n and len(data) == {len(plans)} else {{{stored}}}"
        lines.append(f"    _set_dict(self, {copied})")
    lines.append("    return self")
    from_dict = compile_function("from_dict", lines, ns, what=f"from_dict {qualname}")

    # __init__(self, *, field=MISSING, ...)
    params = ", ".join(f"{plan.name}=_MISSING" for plan in plans)
    lines = [
        f"def __init__(_self{', *, ' + params if params else ''}):",
        f'    """Build a {cls.__name__} from keywords, checking every field (generated)."""',
        "    _errors = None",
        "    _missing_n = 0",
    ]
    for plan in plans:
        lines += _field_lines(plan, ns, mapping=False)
    lines += [
        "    if _errors is not None:",
        "        raise _ValidationError(_errors, _schema_name)",
        f"    _set_dict(_self, {{{stored}}})",
    ]
    init = compile_function("__init__", lines, ns, what=f"__init__ {qualname}")

    for function, name in ((from_dict, "from_dict"), (init, "__init__")):
        function.__qualname__ = f"{cls.__qualname__}.{name}"
        function.__module__ = cls.__module__
    return from_dict, init


# -- behaviour wrappers ----------------------------------------------------------------------


@dataclass(frozen=True)
class WrapperShape:
    """How a wrapper takes its arguments and passes them on, as source text."""

    params: str  # the wrapper's parameter list: "self, event, *, strict=_default_2"
    arguments: str  # the call passing them on: "self, event, strict=strict"
    values: tuple[str, ...]  # one expression per argument, for cache keys
    positional: tuple[str, ...]  # the positional parameters, or ("args[0]",) when generic
    defaults: dict[str, Any] = dataclass_field(default_factory=dict)

    @property
    def subject(self) -> str | None:
        """The argument a call is about: the first positional one after ``self``/``cls``."""
        names = self.positional
        if len(names) > 1 and names[0] in ("self", "cls"):
            return names[1]
        return names[0] if names else None


_GENERIC = WrapperShape("*args, **kwargs", "*args, **kwargs",
                  ("args", "frozenset(kwargs.items())"), ("args[0]",))
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_PLACEHOLDER = re.compile(r"\{\w+\}")


def wrapper_shape(function: Callable[..., Any], reserved: set[str]) -> WrapperShape:
    """The wrapped function's own parameter list, or ``*args, **kwargs`` when it has none to
    read (some builtins) or a parameter's name is one the template uses."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return _GENERIC
    if any(p.name in reserved or p.name.startswith("_default_") for p in parameters):
        return _GENERIC
    kind = inspect.Parameter
    params: list[str] = []
    arguments: list[str] = []
    values: list[str] = []
    positional: list[str] = []
    defaults: dict[str, Any] = {}
    starred = False
    for index, parameter in enumerate(parameters):
        name, text = parameter.name, parameter.name
        if parameter.default is not parameter.empty:
            defaults[f"_default_{index}"] = parameter.default
            text = f"{name}=_default_{index}"
        if parameter.kind is kind.VAR_POSITIONAL:
            starred = True
            params.append(f"*{name}")
            arguments.append(f"*{name}")
            values.append(name)
        elif parameter.kind is kind.VAR_KEYWORD:
            params.append(f"**{name}")
            arguments.append(f"**{name}")
            values.append(f"frozenset({name}.items())")
        elif parameter.kind is kind.KEYWORD_ONLY:
            if not starred:
                params.append("*")
                starred = True
            params.append(text)
            arguments.append(f"{name}={name}")
            values.append(name)
        else:
            params.append(text)
            arguments.append(name)
            values.append(name)
            positional.append(name)
        following = parameters[index + 1].kind if index + 1 < len(parameters) else None
        if parameter.kind is kind.POSITIONAL_ONLY and following is not kind.POSITIONAL_ONLY:
            params.append("/")
    return WrapperShape(", ".join(params), ", ".join(arguments), tuple(values), tuple(positional),
                  defaults)


def compile_wrapper(template: str, function: Callable[..., Any], namespace: dict[str, Any], *,
                    name: str, what: str, is_async: bool,
                    fill: Callable[[WrapperShape], dict[str, str]]) -> Any:
    """A wrapper around ``function`` from a behaviour's source ``template``.

    The template's ``{params}`` and ``{arguments}`` become ``function``'s own parameter list
    and the call passing them on (no ``*args, **kwargs`` cost per call), ``{async_}`` and
    ``{await_}`` follow ``is_async``, and ``fill(shape)`` gives the behaviour's own fields.
    """
    reserved = set(_IDENTIFIER.findall(_PLACEHOLDER.sub("", template)))
    reserved |= set(namespace) | {"frozenset", "_function"}
    shape = wrapper_shape(function, reserved)
    source = template.format(
        wrapper=name, params=shape.params, arguments=shape.arguments,
        async_="async " if is_async else "", await_="await " if is_async else "",
        **fill(shape),
    )
    globals_ = {**namespace, **shape.defaults, "_function": function}
    return compile_function(name, source.splitlines(), globals_, what=what)


# -- phase call plans ------------------------------------------------------------------------


class PlanStep:
    """One implementation in a phase's call plan.

    ``skip_errors``: an exception it raises is passed to ``on_skip`` and the phase goes on
    without it (the ``skip-plugin`` policy) instead of propagating. ``may_await``: a sync
    function that may return an awaitable (an ``async def`` under a sync decorator), awaited.
    """

    __slots__ = ("function", "gate", "is_async", "may_await", "name", "skip_errors")

    def __init__(
        self,
        name: str,
        function: Callable[..., Any],
        *,
        is_async: bool = False,
        gate: Callable[[Any], bool] | None = None,
        skip_errors: bool = False,
        may_await: bool = False,
    ) -> None:
        self.name = name
        self.function = function
        self.is_async = is_async
        self.may_await = may_await
        self.gate = gate
        self.skip_errors = skip_errors


def _step_lines(index: int, step: PlanStep, probe: bool, *, awaits: bool,
                checked: bool) -> list[str]:
    """The statements of one step, indented for the body of the phase's ``try``.

    ``awaits``: the plan is a coroutine function and awaits an async step itself (else it
    hands the coroutine to ``_await``). ``checked``: the event is checked after the step.
    """
    call = f"_call_{index}(event)"
    if step.is_async:
        call = f"await {call}" if awaits else f"_await({call})"
    body = [f"r = {call}"]
    if step.may_await:
        body += ["if _isawaitable(r):", f"    r = {'await r' if awaits else '_await(r)'}"]
    if probe:
        body = ["t = _clock()", *body, f"_probe({index}, _clock() - t)"]
    if step.skip_errors:
        body = ["try:", *(f"    {line}" for line in body), "except _passing:", "    raise",
                "except BaseException as exc:", f"    _on_skip(_names[{index}], exc, event)",
                "    r = None"]
    body += ["if r is not None:", f"    event = _returned({step.name!r}, r)"]
    if checked:
        body.append(f"_verify(event, {step.name!r})")
    if step.gate is not None:  # a flagged stage: record that it ran, for variant analysis
        ran = f"    event.__dict__['variants'].append({step.name!r})"
        body = [f"if _gate_{index}(event):", ran, *(f"    {line}" for line in body)]
    lines = [f"        # {index}: {step.name}"]
    if index:
        lines.append(f"        at = {index}")
    return lines + [f"        {line}" for line in body]


def compile_phase(
    phase: str,
    steps: Sequence[PlanStep],
    *,
    signals: tuple[type[BaseException], ...],
    blame: Callable[[BaseException, str], None],
    returned: Callable[[str, Any], Any],
    run_async: Callable[[Any], Any],
    on_skip: Callable[[str, BaseException, Any], None] | None = None,
    probe: Callable[[int, int], None] | None = None,
    clock: Callable[[], int] | None = None,
    passing: tuple[type[BaseException], ...] = (),
    awaits: bool = False,
    verify: Callable[[Any, str], None] | None = None,
) -> Callable[[Any], Any]:
    """A flat function calling each step in order: the stages part of :func:`_fold.fold`.

    A step's non-None return replaces the event for the next step (``returned`` checks it).
    ``signals`` (Reject, Drop) get the step's name in ``.stage``; anything else raised,
    ``BaseException`` subclasses included, is passed to ``blame(exc, step_name)`` (which notes
    the culprit on it). Both propagate unchanged, so wrappers see exactly what pluggy's caller
    would show them. A ``skip_errors`` step lets ``signals`` and ``passing`` (a real
    interrupt) through and skips anything else.
    With ``probe``, each call is timed: ``probe(step_index, clock() - start)``.
    ``awaits``: an ``async def run_phase`` that awaits its async steps (else ``run_async``
    runs each to completion). ``verify(event, step_name)``: called after each step (the slow
    variant that finds the stage that broke an event).
    """
    ns: dict[str, Any] = {
        "_signals": signals,
        "_passing": signals + passing,
        "_blame": blame,
        "_returned": returned,
        "_await": run_async,
        "_on_skip": on_skip,
        "_probe": probe,
        "_clock": clock,
        "_verify": verify,
        "_isawaitable": inspect.isawaitable,
        "_names": [step.name for step in steps],
    }
    variant = "".join(word for flag, word in ((probe, " (probed)"), (verify, " (checked)"),
                                              (awaits, " (async)")) if flag)
    lines = [
        f"{'async ' if awaits else ''}def run_phase(event):",
        f'    """Phase {phase!r}{variant}: {len(steps)} implementation(s), in call order '
        '(generated)."""',
    ]
    if not steps:
        lines.append("    return event")
        return compile_function("run_phase", lines, ns, what=f"phase {phase}{variant}")
    lines += ["    at = 0", "    try:"]
    for index, step in enumerate(steps):
        ns[f"_call_{index}"] = step.function
        if step.gate is not None:
            ns[f"_gate_{index}"] = step.gate
        lines += _step_lines(index, step, probe is not None, awaits=awaits,
                             checked=verify is not None)
    lines += [
        "    except _signals as signal:",
        "        if signal.stage is None:",
        "            signal.stage = _names[at]",
        "        raise",
        "    except BaseException as exc:",
        "        _blame(exc, _names[at])",
        "        raise",
        "    return event",
    ]
    return compile_function("run_phase", lines, ns, what=f"phase {phase}{variant}")


# -- phase wrappers ---------------------------------------------------------------------------


def _pump(wrapper: Callable[[Any], Any]) -> Any:
    """A long-lived generator that drives one ``wrapper=True`` implementation per event.

    ``send(event)`` starts ``wrapper(event)`` and runs it to its ``yield``; ``send(result)``
    goes on into it (``yield from`` forwards it). When the wrapper returns, ``yield from``
    hands over its value without raising StopIteration, which is most of what driving a
    generator per call costs, and the pump waits for the next event. The driver tells the two
    kinds of suspension apart by ``gi_yieldfrom``: inside the wrapper it is the wrapper's
    generator, at the pump's own ``yield`` it is None. Exceptions are thrown into the
    wrapper's generator itself, not through the pump (:func:`_thrown`).
    """
    event = yield
    while True:
        result = yield from wrapper(event)
        event = yield result


def _primed(wrapper: Callable[[Any], Any]) -> Any:
    """A new :func:`_pump` for ``wrapper``, waiting for its first event."""
    pump = _pump(wrapper)
    next(pump)
    return pump


def _did_not_yield(wrapper: Any, returned: Any) -> RuntimeError:
    """The error for a wrapper that returned ``returned`` before its ``yield``, raised while
    handling its StopIteration (as pluggy's is)."""
    error = _wrapper_error(wrapper, "did not yield")
    error.__context__ = StopIteration() if returned is None else StopIteration(returned)
    return error


def _thrown(wrapper: Any, generator: Any, result: Any, error: BaseException
            ) -> tuple[Any, BaseException | None]:
    """Throw ``error`` into a wrapper's ``generator`` at its ``yield``, as pluggy's caller does;
    return the result and the error that go on out.

    Thrown into the generator itself, not through its pump: ``yield from`` would turn a thrown
    GeneratorExit into ``close()`` and raise it again, even where the wrapper catches it and
    returns. The pump is spent after this (the wrapper has ended): the caller drops it.
    """
    try:
        generator.throw(error)
    except StopIteration as stop:
        return stop.value, None
    except BaseException as exc:
        if isinstance(error, StopIteration) and isinstance(exc, RuntimeError) \
                and exc.__cause__ is error:
            return result, error  # the phase's StopIteration, turned (PEP 479): it goes on
        return result, exc
    finally:  # this frame is in the error's traceback: drop the reference back to the error
        error = None  # type: ignore[assignment]
    return result, _yielded_again(wrapper, generator)


def _yielded_again(wrapper: Any, generator: Any) -> BaseException:
    """A wrapper yielded a second time: close it, and return the error its closing raised, for
    the outer wrappers; if none, raise RuntimeError out of the phase at once (as pluggy does:
    the outer wrappers are not resumed and cannot swallow it)."""
    try:
        generator.close()
    except BaseException as exc:
        return exc
    raise _wrapper_error(wrapper, "has second yield")


def compile_wrapped(phase: str, inner: Callable[[Any], Any],
                    wrappers: Sequence[Callable[[Any], Any]], *, awaits: bool = False,
                    names: Sequence[str] = (),
                    own: Callable[[BaseException, str], None] | None = None
                    ) -> Callable[[Any], Any]:
    """``inner`` (a compiled phase) inside ``wrapper=True`` generators, the first outermost,
    driven exactly as pluggy's caller drives them (the rules are :func:`_fold.fold`'s).

    Each wrapper is the plugin's own generator function, called as written; it is driven by a
    :func:`_pump` from a pool of its own (a pump in use by one call, thread or nested call is
    not in the pool), one block of statements per wrapper, unrolled. ``awaits``: ``inner``
    is a coroutine function, and so is the result (the wrappers are driven the same way).
    ``names`` and ``own``: what a wrapper raises of its own (not what it passes on) is given
    to ``own(error, names[index])``, as :func:`_fold.fold` does with its ``wrapper_names``.
    """
    ns: dict[str, Any] = {"_inner": inner, "_primed": _primed, "_thrown": _thrown,
                          "_yielded_again": _yielded_again, "_did_not_yield": _did_not_yield,
                          "_own": own, "_names": list(names)}
    owned = own is not None and len(names) == len(wrappers)
    lines = [f"{'async ' if awaits else ''}def run_wrapped(event):",
             f'    """Phase {phase!r} inside {len(wrappers)} wrapper(s), driven (generated)."""',
             "    entered = 0", "    result = error = None", "    try:"]
    for index, wrapper in enumerate(wrappers):
        ns[f"_w{index}"], ns[f"_pool{index}"] = wrapper, []
        lines += [
            f"        # {index}: {_qualname(wrapper)}".replace("\n", " "),
            "        try:",
            f"            p{index} = _pool{index}.pop()",
            "        except IndexError:  # none free: the first call, or calls in flight",
            f"            p{index} = _primed(_w{index})",
            f"        returned = p{index}.send(event)",
            f"        if p{index}.gi_yieldfrom is None:",
            f"            raise _did_not_yield(_w{index}, returned)",
            f"        entered = {index + 1}",
        ]
    lines += [f"        result = {'await ' if awaits else ''}_inner(event)",
              "    except BaseException as exc:",
              "        error = exc"]
    if owned:  # raised while entering a wrapper: that wrapper's own
        lines += [f"        if entered < {len(wrappers)}:",
                  "            _own(exc, _names[entered])"]
    for index in reversed(range(len(wrappers))):
        block = [
            "if error is None:",
            "    try:",
            f"        result = p{index}.send(result)",
            "    except BaseException as exc:",
            "        error = exc",
            "    else:",
            f"        if p{index}.gi_yieldfrom is None:  # it returned: pooled again",
            f"            _pool{index}.append(p{index})",
            "        else:",
            f"            error = _yielded_again(_w{index}, p{index}.gi_yieldfrom)",
            "else:",
            f"    result, error = _thrown(_w{index}, p{index}.gi_yieldfrom, result, error)",
        ]
        if owned:  # what it raises of its own (a stage's error keeps its stage)
            block = ["try:", *(f"    {line}" for line in block),
                     "except BaseException as exc:", f"    _own(exc, _names[{index}])",
                     "    raise", "if error is not None:", f"    _own(error, _names[{index}])"]
        lines += [f"    if entered > {index}:", *(f"        {line}" for line in block)]
    lines += ["    if error is not None:",
              "        try:",
              "            raise error",
              "        finally:  # no frame -> error -> traceback -> frame cycle left for the GC",
              "            error = None",
              "    return result"]
    what = f"phase {phase} wrapped{' (async)' if awaits else ''}"
    return compile_function("run_wrapped", lines, ns, what=what)


def _qualname(function: Any) -> str:
    return str(getattr(function, "__qualname__", function))


# -- rows ----------------------------------------------------------------------------------


def compile_row(names: Sequence[str], json_names: Sequence[str],
                encode: Callable[[Any], str], *, what: str) -> Callable[[Any], tuple[Any, ...]]:
    """``row(event)``: the values of the fields ``names`` of an event's instance dict, in that
    order, those in ``json_names`` as compact JSON text by ``encode`` (None stays None; an
    empty list or mapping is ``[]`` or ``{}`` without the encoder)."""
    lines = ["def row(event):",
             '    """The event as a row of the events table (generated)."""',
             "    data = event.__dict__"]
    items = []
    for index, name in enumerate(names):
        if name in json_names:
            value = f"v{index}"
            lines.append(f"    {value} = data[{name!r}]")
            items.append(f"_encode({value}) if {value} else None if {value} is None else "
                         f"'[]' if {value}.__class__ is list else '{{}}'")
        else:
            items.append(f"data[{name!r}]")
    lines.append("    return (" + "".join(f"\n        {item}," for item in items) + "\n    )")
    return compile_function("row", lines, {"_encode": encode}, what=f"row {what}")


# -- the boundary check -----------------------------------------------------------------------


def compile_boundary(
    cls: type[Any], plans: Sequence[FieldPlan], *, runtime: Mapping[str, Any],
    id_field: str | None, immutable: frozenset[str] = frozenset(),
) -> Callable[[Any, Any], list[FieldError] | None]:
    """``boundary(event, read)``: the problems of an event after its stages, or None.

    The check before any sink sees an event: it is of class ``cls`` itself, its instance dict
    holds exactly the fields, each valid by the same rules ``from_dict`` inlines (so a value
    written through ``__dict__``, ``object.__setattr__`` or a list changed in place is found),
    and ``id_field`` is still what it was in ``read``, a copy of the instance dict taken
    before the stages ran. A field named in ``immutable`` (its values are str, numbers…) is
    checked only when its value is not the very object it was in ``read``. ``plans`` are
    ``cls``'s fields; ``runtime`` holds what :func:`compile_schema` is given, and
    ``_stored_form(errors, field, value, path)`` for the fields that convert their input
    (their value must be in its stored form).
    """
    qualname = f"{cls.__module__}.{cls.__qualname__}"
    ns: dict[str, Any] = {**runtime, "cls": cls, "_FieldError": FieldError}
    lines = [
        "def boundary(event, read):",
        f'    """Check an accepted {cls.__name__} before it is stored (generated)."""',
        "    if event.__class__ is not cls:",
        "        return [_FieldError('$', f'is a {event.__class__.__qualname__}, not the "
        f"pipeline\\'s {cls.__name__}', event)]",
        "    data = event.__dict__",
        "    _errors = None",
        "    _missing_n = 0",
    ]
    for plan in plans:
        required = plan._replace(required=True, converts=False)  # every field is stored
        field_lines = _field_lines(required, ns, mapping=True)
        if plan.name in immutable:  # unchanged since it was validated: nothing to check
            at = field_lines.index("    else:")
            field_lines[at + 1:] = [f"        if v_{plan.name} is not read[{plan.name!r}]:",
                                    *(f"    {line}" for line in field_lines[at + 1:])]
        lines += field_lines
        if plan.converts:
            lines += [f"    if {plan.name!r} in data:",
                      f"        _errors = _stored_form(_errors, _f_{plan.name}, "
                      f"data[{plan.name!r}], {plan.name!r})"]
    lines += [f"    if len(data) + _missing_n != {len(plans)}:",
              "        _errors = _unknown(cls, _errors, data)"]
    if id_field is not None:
        lines += [f"    if data.get({id_field!r}) != read.get({id_field!r}):",
                  "        _errors = (_errors or []) + [_FieldError("
                  f"{id_field!r}, 'was changed from ' + repr(read.get({id_field!r})), "
                  f"data.get({id_field!r}))]"]
    lines.append("    return _errors")
    function = compile_function("boundary", lines, ns, what=f"boundary {qualname}")
    function.__qualname__ = f"{cls.__qualname__}.boundary"
    return function
