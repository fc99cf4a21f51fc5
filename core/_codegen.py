"""The one module that generates code.

Three things are compiled here, once per class, plugin set or wrapped stage, never per event:

* a schema's ``__init__`` and ``from_dict``, with every field check inlined
  (:func:`compile_schema`), and
* a phase's call plan, a flat function calling each implementation in order
  (:func:`compile_phase`), and the same inside the phase's ``wrapper=True`` generators
  (:func:`compile_wrapped`): each rewritten from its source into a plain function where that
  provably behaves the same (:func:`inline_wrapper`), else driven (:func:`compile_driven`),
  and
* a behaviour's wrapper with the wrapped function's own parameter list
  (:func:`compile_wrapper`).

Generated functions get a readable unique filename (``<hookline generated from_dict
app.Purchase>``) registered in :mod:`linecache` before compiling, so tracebacks and pdb show
their source. Only the lines a class needs are emitted.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import linecache
import re
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING, Any

from .errors import FieldError, ValidationError
from .fields import MISSING, Field
from .schema import Schema as _Schema
from .schema import unknown_keys

_INSTANCE_DICT = vars(_Schema)["__dict__"]

if TYPE_CHECKING:
    from .schema import Schema

def compile_function(
    name: str, lines: Sequence[str], namespace: dict[str, Any], *, what: str
) -> Callable[..., Any]:
    """Compile ``lines`` (one ``def``) into a function named ``name`` with readable source.

    ``what`` names the generated function in its filename, e.g. ``from_dict app.Purchase``.
    """
    source = "\n".join(lines) + "\n"
    # Named by what it is and by its source: unique, and the same code has the same name in
    # every process (tracebacks stored in dead letters do not depend on what ran before).
    digest = hashlib.sha1(source.encode()).hexdigest()[:8]
    filename = f"<hookline generated {what} #{digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    code = compile(source, filename, "exec")
    scope: dict[str, Any] = {}
    exec(code, namespace, scope)
    function: Callable[..., Any] = scope[name]
    return function


# -- schemas ---------------------------------------------------------------------------------


def _missing(errors: list[FieldError] | None, path: str) -> list[FieldError]:
    errors = [] if errors is None else errors
    errors.append(FieldError(path, "is required", MISSING))
    return errors


def _invalid(
    errors: list[FieldError] | None, field: Field[Any], value: Any, path: str
) -> list[FieldError]:
    if errors is None:
        return field.problems(value, path)  # a new list: the first problem of the event
    errors.extend(field.problems(value, path))
    return errors


def _failed(
    errors: list[FieldError] | None, field: Field[Any], value: Any, path: str
) -> list[FieldError]:
    """``_invalid`` for a field whose one problem ``check()`` tells (null aside)."""
    if value is None:
        return _invalid(errors, field, value, path)
    error = FieldError(path, field.check(value), value)  # type: ignore[arg-type]
    if errors is None:
        return [error]
    errors.append(error)
    return errors


def _unknown(
    cls: type[Schema], errors: list[FieldError] | None, data: dict[str, Any]
) -> list[FieldError]:
    errors = [] if errors is None else errors
    for key in unknown_keys(cls, data):
        errors.append(FieldError(key, "is not a field of the schema", data[key]))
    return errors


def _keep_extra(cls: type[Schema], data: dict[str, Any], properties: Any) -> Any:
    extra = {key: data[key] for key in unknown_keys(cls, data)}
    if properties is None:
        return extra
    if type(properties) is not dict:
        return properties  # already reported as invalid
    return {**properties, **extra}


def _field_lines(name: str, field: Field[Any], ns: dict[str, Any], *, mapping: bool) -> list[str]:
    """The lines that fetch, default and check one field into the local ``v_<name>``.

    ``mapping``: read from the dict ``data`` (``from_dict``), else from the keyword parameter
    of the same name (``__init__``).
    """
    var = f"v_{name}"
    ns[f"_f_{name}"] = field
    if field.required:
        if_missing = [f"_errors = _missing(_errors, {name!r})"]
    elif field.default is MISSING:
        if_missing = [f"{var} = None"]
    elif callable(field.default):
        ns[f"_default_{name}"] = field.default
        if_missing = [f"{var} = _default_{name}()"]
    else:
        ns[f"_default_{name}"] = field.default
        if_missing = [f"{var} = _default_{name}"]
    lines = [f"    # {name}: {field!r}"]
    if mapping and field.required:
        # The common case, a present key, costs one subscript; try is free until it raises.
        lines += ["    try:", f"        {var} = data[{name!r}]", "    except KeyError:"]
    elif mapping:
        lines += [f"    {var} = data.get({name!r}, _MISSING)", f"    if {var} is _MISSING:"]
    else:
        lines += [f"    {var} = {name}", f"    if {var} is _MISSING:"]
    if field.converts and not field.required:
        if_missing.append(f"if {var} is not None: {var} = _f_{name}.convert({var})")
    lines += ["        _missing_n += 1", *(f"        {line}" for line in if_missing)]
    if type(field).problems is Field.problems:
        # One problem at most, told by check(): build its FieldError without problems().
        fail = f"_errors = _failed(_errors, _f_{name}, {var}, {name!r})"
    else:
        fail = f"_errors = _invalid(_errors, _f_{name}, {var}, {name!r})"
    checks = field.check_lines(var, ns, fail) if field.inlinable() else None
    if checks is not None:
        if field.optional:
            checks = [f"if {var} is not None:", *(f"    {line}" for line in checks)]
        lines.append("    else:")
        lines.extend(f"        {line}" for line in checks)
        return lines
    # Not inlinable (validators, conversion, nested schemas): ask the field itself.
    lines.append("    else:")
    lines.append(f"        _problems = _f_{name}.problems({var}, {name!r})")
    lines.append("        if _problems:")
    lines.append("            _errors = _problems if _errors is None else _errors + _problems")
    if field.converts:
        lines.append(f"        elif {var} is not None:")
        lines.append(f"            {var} = _f_{name}.convert({var})")
    return lines


def compile_accepts(field: Field[Any]) -> Callable[[Any], bool]:
    """``accepts(value)``: the field's inlined check, for validated assignment (``__set__``).

    True means "valid and stored as is"; False sends the value down the slow path, which
    accepts None for optional fields and explains every other refusal.
    """
    ns: dict[str, Any] = {}
    checks = field.check_lines("v", ns, "return False")
    assert checks is not None, "compile_accepts needs an inlinable field"
    lines = ["def accepts(v):", *(f"    {line}" for line in checks), "    return True"]
    owner = getattr(field.owner, "__qualname__", "?")
    return compile_function("accepts", lines, ns, what=f"accepts {owner}.{field.name}")


def compile_schema(cls: type[Schema]) -> None:
    """Give ``cls`` a generated ``__init__`` (keywords) and ``from_dict`` (a dict)."""
    fields = cls.__fields__
    qualname = f"{cls.__module__}.{cls.__qualname__}"
    ns: dict[str, Any] = {
        "_MISSING": MISSING,
        "_missing": _missing,
        "_invalid": _invalid,
        "_failed": _failed,
        "_unknown": _unknown,
        "_keep_extra": _keep_extra,
        "_ValidationError": ValidationError,
        "_FieldError": FieldError,
        "_new": object.__new__,
        # The instance-dict descriptor's own setter: one bound C call, cheaper than
        # object.__setattr__(self, "__dict__", ...) (Schema.__setattr__ guards fields).
        "_set_dict": _INSTANCE_DICT.__set__,
        "_schema_name": cls.__name__,
        "cls": cls,
    }
    stored = ", ".join(f"{name!r}: v_{name}" for name in fields)

    # from_dict(cls, data)
    lines = [
        "def from_dict(data):",
        f'    """Build a {cls.__name__} from a dict, checking every field (generated)."""',
        "    if data.__class__ is not dict:",
        "        raise _ValidationError([_FieldError('$', 'must be an object', data)],"
        " _schema_name)",
        "    _errors = None",
        "    _missing_n = 0",
    ]
    for name, field in fields.items():
        lines += _field_lines(name, field, ns, mapping=True)
    lines.append(f"    if len(data) + _missing_n != {len(fields)}:")
    if cls.__extra__ == "properties" and "properties" in fields:
        lines.append("        v_properties = _keep_extra(cls, data, v_properties)")
    else:
        lines.append("        _errors = _unknown(cls, _errors, data)")
    lines += [
        "    if _errors is not None:",
        "        raise _ValidationError(_errors, _schema_name)",
        "    self = _new(cls)",
    ]
    if any(field.converts for field in fields.values()):
        lines.append(f"    _set_dict(self, {{{stored}}})")
    else:
        # Every key present, known and valid, nothing converted: the values are data's own,
        # and copying the dict in C is cheaper than rebuilding it from the locals.
        copied = f"data.copy() if not _missing_n and len(data) == {len(fields)} else {{{stored}}}"
        lines.append(f"    _set_dict(self, {copied})")
    lines.append("    return self")
    from_dict = compile_function("from_dict", lines, ns, what=f"from_dict {qualname}")

    # __init__(self, *, field=MISSING, ...)
    params = ", ".join(f"{name}=_MISSING" for name in fields)
    lines = [
        f"def __init__(_self{', *, ' + params if params else ''}):",
        f'    """Build a {cls.__name__} from keywords, checking every field (generated)."""',
        "    _errors = None",
        "    _missing_n = 0",
    ]
    for name, field in fields.items():
        lines += _field_lines(name, field, ns, mapping=False)
    lines += [
        "    if _errors is not None:",
        "        raise _ValidationError(_errors, _schema_name)",
        f"    _set_dict(_self, {{{stored}}})",
    ]
    init = compile_function("__init__", lines, ns, what=f"__init__ {qualname}")

    for function, name in ((from_dict, "from_dict"), (init, "__init__")):
        function.__qualname__ = f"{cls.__qualname__}.{name}"
        function.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[method-assign]
    # A staticmethod with the class bound in its globals: no method object per call.
    cls.from_dict = staticmethod(from_dict)  # type: ignore[method-assign]


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
    without it (the ``skip-plugin`` policy) instead of propagating.
    """

    __slots__ = ("function", "gate", "is_async", "name", "skip_errors", "where")

    def __init__(
        self,
        name: str,
        function: Callable[..., Any],
        *,
        is_async: bool = False,
        gate: Callable[[Any], bool] | None = None,
        skip_errors: bool = False,
        where: str = "",
    ) -> None:
        self.name = name
        self.function = function
        self.is_async = is_async
        self.gate = gate
        self.skip_errors = skip_errors
        self.where = where


def _step_lines(index: int, step: PlanStep, probe: bool) -> list[str]:
    """The statements of one step, indented for the body of the phase's ``try``."""
    call = f"_call_{index}(event)"
    if step.is_async:
        call = f"_await({call})"
    body = [f"r = {call}"]
    if probe:
        body = ["t = _clock()", *body, f"_probe({index}, _clock() - t)"]
    if step.skip_errors:
        body = ["try:", *(f"    {line}" for line in body), "except _signals:", "    raise",
                "except Exception as exc:", f"    _on_skip(_names[{index}], exc, event)",
                "    r = None"]
    body += ["if r is not None:", f"    event = _returned({step.name!r}, r)"]
    if step.gate is not None:  # a flagged stage: record that it ran, for variant analysis
        ran = f"    event.__dict__['variants'].append({step.name!r})"
        body = [f"if _gate_{index}(event):", ran, *(f"    {line}" for line in body)]
    lines = [f"        # {index}: {step.name}  {step.where}".rstrip()]
    if index:
        lines.append(f"        at = {index}")
    return lines + [f"        {line}" for line in body]


def compile_phase(
    phase: str,
    steps: Sequence[PlanStep],
    *,
    signals: tuple[type[BaseException], ...],
    blame: Callable[[Exception, str], None],
    returned: Callable[[str, Any], Any],
    run_async: Callable[[Any], Any],
    on_skip: Callable[[str, Exception, Any], None] | None = None,
    probe: Callable[[int, int], None] | None = None,
    clock: Callable[[], int] | None = None,
) -> Callable[[Any], Any]:
    """A flat function calling each step in order, as pluggy's caller would.

    A step's non-None return replaces the event for the next step (``returned`` checks it).
    ``signals`` (Reject, Drop) get the step's name in ``.stage``; any other Exception is
    passed to ``blame(exc, step_name)`` (which notes the culprit on it). Both propagate
    unchanged, so wrappers see exactly what pluggy's caller would show them.
    With ``probe``, each call is timed: ``probe(step_index, clock() - start)``.
    """
    ns: dict[str, Any] = {
        "_signals": signals,
        "_blame": blame,
        "_returned": returned,
        "_await": run_async,
        "_on_skip": on_skip,
        "_probe": probe,
        "_clock": clock,
        "_names": [step.name for step in steps],
    }
    variant = " (probed)" if probe else ""
    lines = [
        "def run_phase(event):",
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
        lines += _step_lines(index, step, probe is not None)
    lines += [
        "    except _signals as signal:",
        "        if signal.stage is None:",
        "            signal.stage = _names[at]",
        "        raise",
        "    except Exception as exc:",
        "        _blame(exc, _names[at])",
        "        raise",
        "    return event",
    ]
    return compile_function("run_phase", lines, ns, what=f"phase {phase}{variant}")


# -- phase wrappers ---------------------------------------------------------------------------


def _pump(wrapper: Callable[[Any], Any]) -> Any:
    """A long-lived generator that drives one ``wrapper=True`` implementation per event.

    ``send(event)`` starts ``wrapper(event)`` and runs it to its ``yield``; ``send(result)``
    or ``throw(error)`` goes on into it (``yield from`` forwards both). When the wrapper
    returns, ``yield from`` hands over its value without raising StopIteration, which is
    most of what driving a generator per call costs, and the pump waits for the next event.
    The driver tells the two kinds of suspension apart by ``gi_yieldfrom``: inside the
    wrapper it is the wrapper's generator, at the pump's own ``yield`` it is None.
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


def _qualname(function: Any) -> str:
    return str(getattr(function, "__qualname__", function))


def _misbehaved(wrapper: Callable[..., Any], pump: Any, what: str) -> RuntimeError:
    pump.close()  # the wrapper's finally blocks run now, not whenever the pump is collected
    return RuntimeError(f"phase wrapper {_qualname(wrapper)} {what}: a "
                        "wrapper=True implementation must yield exactly once")


def compile_wrapped(phase: str, inner: Callable[[Any], Any],
                    wrappers: Sequence[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """``inner`` (a compiled phase) inside pluggy-style ``wrapper=True`` generators, the first
    outermost, exactly as pluggy's caller runs them: each wrapper runs to its ``yield``, then
    the phase; the result (or the exception, thrown in) goes back out through the wrappers,
    innermost first, and what each returns (or raises) is what the next one out sees.

    A wrapper that :func:`inline_wrapper` can rewrite becomes a plain function calling the
    next one in (no generator per event); the others are driven as generators by
    :func:`compile_driven`. Both behave the same; the first costs one Python call.
    """
    run = inner
    for wrapper in reversed(wrappers):  # innermost first: each wraps what is built so far
        try:
            run = inline_wrapper(wrapper, run)
        except NotInlined as reason:
            import logging  # only here: importing hookline does not load logging

            logging.getLogger("hookline.pipeline").debug(
                "phase %s: wrapper %s is driven as a generator: %s",
                phase, _qualname(wrapper), reason)
            run = compile_driven(phase, run, [wrapper])
    return run


def compile_driven(phase: str, inner: Callable[[Any], Any],
                   wrappers: Sequence[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """``inner`` inside ``wrappers`` driven as generators, as :func:`compile_wrapped` says.

    Every wrapper is driven by a :func:`_pump` from a pool of its own (a pump in use by one
    call, thread or nested call is not in the pool), one statement per wrapper unrolled.
    """
    ns: dict[str, Any] = {"_inner": inner, "_primed": _primed, "_misbehaved": _misbehaved}
    lines = ["def run_wrapped(event):",
             f'    """Phase {phase!r} inside {len(wrappers)} wrapper(s) (generated)."""',
             "    entered = 0", "    result = error = None", "    try:"]
    for index, wrapper in enumerate(wrappers):
        ns[f"_w{index}"], ns[f"_pool{index}"] = wrapper, []
        lines += [
            "        try:",
            f"            p{index} = _pool{index}.pop()",
            "        except IndexError:  # none free: the first call, or calls in flight",
            f"            p{index} = _primed(_w{index})",
            f"        p{index}.send(event)",
            f"        if p{index}.gi_yieldfrom is None:",
            f"            raise _misbehaved(_w{index}, p{index}, 'returned without yielding')",
            f"        entered = {index + 1}",
        ]
    lines += ["        result = _inner(event)",
              "    except BaseException as exc:",
              "        error = exc"]
    for index in reversed(range(len(wrappers))):
        lines += [
            f"    if entered > {index}:",
            "        try:",
            f"            result = p{index}.send(result) if error is None else "
            f"p{index}.throw(error)",
            "        except BaseException as exc:",
            "            if not (exc.__cause__ is error and isinstance(error, StopIteration)):",
            "                result, error = None, exc  # (else PEP 479 wrapped what was thrown "
            "in: passed on, as pluggy does)",
            "        else:",
            f"            if p{index}.gi_yieldfrom is None:",
            "                error = None",
            f"                _pool{index}.append(p{index})",
            "            else:",
            f"                result, error = None, _misbehaved(_w{index}, p{index}, "
            "'yielded twice')",
        ]
    lines += ["    if error is not None:", "        raise error", "    return result"]
    return compile_function("run_wrapped", lines, ns, what=f"phase {phase} wrapped")


# -- phase wrappers inlined -------------------------------------------------------------------

#: The rewritten wrapper's keyword-only parameters (their defaults are what it needs): the
#: next function in, called where it yielded, and the test of where a StopIteration came from.
_NEXT, _PASSED = "_hookline_next_", "_hookline_passed_"
_STOP = "_hookline_stop_"


class NotInlined(Exception):
    """Why :func:`inline_wrapper` left a wrapper to be driven as a generator."""


def inline_wrapper(wrapper: Callable[[Any], Any],
                   inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``wrapper`` (a ``wrapper=True`` generator function or method) rewritten from its own
    source as a plain function that calls ``inner(event)`` where it yields.

    Driving a generator per event costs several times a small phase; the rewrite costs one
    call. It is made only where it provably behaves like the generator driven by pluggy
    (:func:`_check_the_yield`): one bare ``yield`` that runs unless an exception is raised
    before it, the event parameter never rebound, and the module's source compiling to the
    very code the function runs (an edited file or a decorator's function is left alone).
    The rewrite is compiled in its module's source, so names resolve as in the original
    (closures, a class's private names, imports), and keeps its globals, closure, defaults,
    file and line numbers: tracebacks point into the plugin's source. A StopIteration of its
    own becomes RuntimeError, as PEP 479 does in a generator; one from the phase inside passes
    through, as pluggy lets it. Raises :class:`NotInlined` with the reason otherwise.
    """
    function = getattr(wrapper, "__func__", wrapper)
    if not isinstance(function, types.FunctionType) or not inspect.isgeneratorfunction(function):
        raise NotInlined("not a generator function")
    code = function.__code__
    bound = isinstance(wrapper, types.MethodType)  # then the event is the second parameter
    key = (code.co_filename, code, bound)  # code objects compare by content, not by file
    rewritten = _REWRITTEN.get(key)
    if rewritten is None:
        try:
            rewritten = _rewritten(function, bound)
        except NotInlined as reason:
            rewritten = str(reason)
        _REWRITTEN[key] = rewritten
    if isinstance(rewritten, str):
        raise NotInlined(rewritten)
    cells = dict(zip(code.co_freevars, function.__closure__ or ()))
    inlined = types.FunctionType(rewritten, function.__globals__, function.__name__,
                                 function.__defaults__,
                                 tuple(cells[name] for name in rewritten.co_freevars))
    inlined.__kwdefaults__ = {**(function.__kwdefaults__ or {}),
                              _NEXT: inner, _PASSED: _passed_through}
    inlined.__qualname__, inlined.__module__ = function.__qualname__, function.__module__
    inlined.__doc__ = function.__doc__
    if bound:
        return types.MethodType(inlined, wrapper.__self__)  # type: ignore[attr-defined]
    return inlined


#: The rewritten code of each wrapper's code seen so far, or why it was not rewritten: the
#: pipelines of one process (rebuilt after a quarantine, a worker's) rewrite a wrapper once.
_REWRITTEN: dict[tuple[str, types.CodeType, bool], types.CodeType | str] = {}


def _rewritten(function: types.FunctionType, bound: bool) -> types.CodeType:
    """The code of :func:`inline_wrapper`'s rewrite of ``function`` (called as a method when
    ``bound``), or :class:`NotInlined`."""
    code = function.__code__
    module, definition = _definition(function)
    positional = [*definition.args.posonlyargs, *definition.args.args]
    if len(positional) <= bound:
        raise NotInlined("it takes no event parameter")
    event = positional[bound].arg
    _check_the_yield(definition)
    if _rebinds(definition, event):
        raise NotInlined(f"it may rebind its parameter {event!r}")
    if {_STOP, _NEXT, _PASSED} & {*code.co_varnames, *code.co_names, *code.co_freevars}:
        raise NotInlined("it uses a name the rewrite needs")
    if not _same_code(_compiled(module, code), code):
        raise NotInlined("its source does not compile to the code it runs")

    for node in ast.walk(definition):  # its one bare yield becomes the call of the next one in
        for name, value in ast.iter_fields(node):
            if isinstance(value, ast.Yield):
                call = ast.Call(ast.Name(_NEXT, ast.Load()), [ast.Name(event, ast.Load())], [])
                setattr(node, name, ast.copy_location(call, value))
    stop = ast.parse(f"try:\n    pass\nexcept StopIteration as {_STOP}:\n"
                     f"    if {_PASSED}({_STOP}, {_NEXT}):\n        raise\n"
                     f"    raise RuntimeError('generator raised StopIteration') from {_STOP}\n"
                     ).body[0]
    assert isinstance(stop, ast.Try)
    for node in ast.walk(stop):  # the added lines are shown as the def line
        if isinstance(node, (ast.stmt, ast.expr, ast.excepthandler)):
            node.lineno = node.end_lineno = definition.lineno
    stop.body, definition.body = definition.body, [stop]
    for name in (_NEXT, _PASSED):
        definition.args.kwonlyargs.append(ast.arg(name))
        definition.args.kw_defaults.append(ast.Constant(None))
    ast.fix_missing_locations(definition)
    return _compiled(module, code)


def _passed_through(stop: StopIteration, inner: Any) -> bool:
    """Whether ``stop`` came out of ``inner`` (its frame is in the traceback). A generator
    wrapper turns a StopIteration leaving it into RuntimeError (PEP 479); pluggy passes one
    that was thrown into it on unchanged, so only the wrapper's own becomes RuntimeError."""
    code = getattr(inner, "__func__", inner).__code__
    trace = stop.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code is code:
            return True
        trace = trace.tb_next
    return False


def _definition(function: types.FunctionType) -> tuple[ast.Module, ast.FunctionDef]:
    """The source of ``function``'s module, parsed, and the ``def`` statement in it whose
    code ``function`` runs (found by name and first line)."""
    code = function.__code__
    lines = linecache.getlines(code.co_filename, function.__globals__)
    try:
        module = ast.parse("".join(lines), code.co_filename)
    except (SyntaxError, ValueError) as exc:
        raise NotInlined(f"no source to parse: {exc}") from None
    for node in ast.walk(module):
        if isinstance(node, ast.FunctionDef) and node.name == code.co_name and min(
                (node.lineno, *(d.lineno for d in node.decorator_list))) == code.co_firstlineno:
            return module, node
    raise NotInlined(f"no source: no def {code.co_name} at line {code.co_firstlineno} of "
                     f"{code.co_filename}")


def _contains(statement: ast.AST, node: ast.AST) -> bool:
    return any(inside is node for inside in ast.walk(statement))


def _check_the_yield(definition: ast.FunctionDef) -> None:
    """That ``definition`` has one bare ``yield`` which runs unless an exception is raised
    before it: the value of an expression statement, a ``return`` or an assignment to a name,
    reached through ``try`` bodies and at most one single-item ``with`` at the top, first in
    each (a statement before it there could raise an exception that is swallowed), with no
    ``return`` before it. :class:`NotInlined` says which line breaks the rule."""
    suspends = [node for node in ast.walk(definition)
                if isinstance(node, (ast.Yield, ast.YieldFrom, ast.Await))]
    if len(suspends) != 1 or not isinstance(suspends[0], ast.Yield):
        raise NotInlined(f"it has {len(suspends)} yield or await expressions, not one yield")
    the_yield = suspends[0]
    if the_yield.value is not None:
        raise NotInlined(f"line {the_yield.lineno}: it yields a value")
    statements, top = definition.body, True
    while True:
        position = next((index for index, statement in enumerate(statements)
                         if _contains(statement, the_yield)), None)
        if position is None:
            raise NotInlined(f"line {the_yield.lineno}: the yield is not in a statement body")
        for before in statements[:position]:
            if top and any(isinstance(node, ast.Return) for node in ast.walk(before)):
                raise NotInlined(f"line {before.lineno}: it may return before the yield")
            if not top:
                raise NotInlined(f"line {before.lineno}: a statement before the yield in a try "
                                 "or with body (its exception may be swallowed, the yield "
                                 "skipped)")
        statement = statements[position]
        if isinstance(statement, (ast.Expr, ast.Return, ast.Assign, ast.AnnAssign)):
            targets = getattr(statement, "targets", None) or [getattr(statement, "target", None)]
            if statement.value is not the_yield or not all(
                    target is None or isinstance(target, ast.Name) for target in targets):
                raise NotInlined(f"line {statement.lineno}: the yield is inside an expression")
            return
        if not (isinstance(statement, ast.Try) or (
                isinstance(statement, ast.With) and top and len(statement.items) == 1)) or not any(
                _contains(inside, the_yield) for inside in statement.body):
            raise NotInlined(f"line {statement.lineno}: the yield is inside a "
                             f"{type(statement).__name__} statement where it may be skipped")
        statements, top = statement.body, False


def _rebinds(definition: ast.FunctionDef, name: str) -> bool:
    """Whether anything in ``definition`` may bind ``name`` again or delete it (a nested
    scope's own ``name`` counts too: telling scopes apart is not worth it here)."""
    parameters = {id(arg) for arg in (*definition.args.posonlyargs, *definition.args.args)}
    for node in ast.walk(definition):
        if isinstance(node, ast.Name):
            bound = node.id if not isinstance(node.ctx, ast.Load) else None
        elif isinstance(node, ast.arg):
            bound = node.arg if id(node) not in parameters else None
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound = name if name in node.names else None
        elif isinstance(node, ast.alias):
            bound = (node.asname or node.name).partition(".")[0]
        elif node is not definition:  # def, class, except ... as, match captures
            bound = getattr(node, "name", None) or getattr(node, "rest", None)
        else:
            bound = None
        if bound == name:
            return True
    return False


def _compiled(module: ast.Module, code: types.CodeType) -> types.CodeType:
    """The code object of the function like ``code`` (by name and first line) that ``module``
    compiles to."""
    found = [compile(module, code.co_filename, "exec", dont_inherit=True)]
    for constant in found:  # breadth first through every nested function and class body
        if (constant.co_name, constant.co_firstlineno) == (code.co_name, code.co_firstlineno) \
                and constant is not found[0]:
            return constant
        found += [const for const in constant.co_consts if isinstance(const, types.CodeType)]
    raise NotInlined("its def statement did not compile")  # pragma: no cover - found above


def _same_code(ours: types.CodeType, theirs: types.CodeType) -> bool:
    """Whether two code objects do the same: bytecode, names, constants (nested code alike),
    arguments and flags; line numbers may differ."""
    for attribute in ("co_code", "co_flags", "co_names", "co_varnames", "co_freevars",
                      "co_cellvars", "co_argcount", "co_posonlyargcount", "co_kwonlyargcount",
                      "co_exceptiontable"):
        if getattr(ours, attribute, None) != getattr(theirs, attribute, None):
            return False
    mine, yours = ours.co_consts, theirs.co_consts
    return len(mine) == len(yours) and all(
        _same_code(a, b) if isinstance(a, types.CodeType) and isinstance(b, types.CodeType)
        else type(a) is type(b) and a == b for a, b in zip(mine, yours))
