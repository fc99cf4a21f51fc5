"""Stage contracts: what every plugin must satisfy, checked when it loads, not at its first event.

pluggy checks that an implementation's parameter names exist in its hookspec, and a
``runtime_checkable`` protocol checks that members exist. Neither notices a ``process`` that
returns ``int`` or takes a second required argument, a misspelt ``hookline_validte``, a wrapper
that never yields, or a stage gated by a flag that nobody declares. :func:`verify` finds every
one of these and says, for each, what to fix and where: the file and line of the definition.

The loader refuses a plugin that :func:`verify` finds fault with (it receives no events and
``hookline plugins`` lists it as failed with every violation); ``hookline check`` prints the
violations of all installed plugins and exits 1 when there is any. Statically,
``hookline.Stage.process`` is typed ``(self, event: Event) -> Event | None``, so ``mypy
--strict`` reports an override with a wrong signature or return type; :class:`StageContract`
states the same shape for objects that are not ``Stage`` subclasses.

Every check reads definitions only: nothing is instantiated and no hook is called (except
``hookline_flags``, by :func:`flags_declared_by`, to learn which flags exist).
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
import typing
from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import asdict, dataclass
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from . import hookspecs
from ._registry import Stage, StageInfo, StageMeta, current_registry, plugin_name
from ._suggest import did_you_mean as _close

if TYPE_CHECKING:
    import pluggy

    from ._registry import Registry
    from ._schema import Event

__all__ = [
    "CODES",
    "StageContract",
    "Violation",
    "flags_declared_by",
    "format_violations",
    "verify",
    "verify_plugins",
]

#: Every violation code and what it means. Codes are stable: tools and tests may match them.
CODES: Mapping[str, str] = MappingProxyType({
    "missing-process": "a stage defines no process(self, event) method",
    "process-not-callable": "a stage's process attribute is not a method",
    "wrong-parameters": "an implementation's parameters do not fit its hookspec",
    "annotation-mismatch": "an annotation contradicts the hookspec's",
    "unknown-hook": "a @hookimpl names no hookspec",
    "unmarked-hook": "a function named like a hook lacks @hookimpl, so it is never called",
    "unexpected-generator": "a phase implementation yields, but is not a wrapper",
    "wrapper-not-generator": "a wrapper=True or hookwrapper=True implementation does not yield",
    "hookwrapper-on-phase": "an old-style hookwrapper=True implementation of a phase hook",
    "unknown-phase": "a stage declares a phase that does not exist",
    "unknown-flag": "a stage is gated by a flag that no plugin declares",
    "unknown-plugin": "before= or after= names no plugin or stage",
})


@runtime_checkable
class StageContract(Protocol):
    """The shape of a stage: one ``process(event)`` returning None or a replacement event.

    ``hookline.Stage`` subclasses satisfy it by inheritance (and ``mypy --strict`` checks their
    overrides); ``isinstance(obj, StageContract)`` checks only that ``process`` exists, which is
    why :func:`verify` exists.
    """

    def process(self, event: Event) -> Event | Awaitable[Event | None] | None:
        """Handle one event: assign fields, return a replacement, or raise Reject/Drop
        (``async def`` too: it is awaited)."""
        ...


@dataclass(frozen=True)
class Violation:
    """One way a plugin breaks the contract, and where: the file and line to fix."""

    #: The plugin's name (``fraud``).
    plugin: str
    #: A stable short id, one of :data:`CODES`.
    code: str
    #: What is wrong and what to do about it.
    message: str
    #: The file and line of the offending definition (a function, or a class statement).
    filename: str | None = None
    lineno: int | None = None
    #: The stage's name when a stage class is at fault (``velocity``).
    stage: str | None = None

    @property
    def subject(self) -> str:
        """``fraud.velocity`` for a stage, ``fraud`` for the plugin's other definitions."""
        return f"{self.plugin}.{self.stage}" if self.stage else self.plugin

    @property
    def location(self) -> str:
        """``path/to/module.py:12``, as editors and terminals link it."""
        if self.filename is None:
            return "<unknown file>"
        return f"{self.filename}:{self.lineno}" if self.lineno else self.filename

    def format(self, origin: str | None = None) -> str:
        """``file:line: fraud.velocity (hookline-fraud 1.0): message [code]``."""
        who = f"{self.subject} ({origin})" if origin else self.subject
        return f"{self.location}: {who}: {self.message} [{self.code}]"

    def __str__(self) -> str:
        return self.format()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def format_violations(violations: Iterable[Violation], *, origin: str | None = None) -> str:
    """The violations as a message: a count, then one indented line each."""
    lines = [violation.format(origin) for violation in violations]
    plural = "" if len(lines) == 1 else "s"
    return "\n".join([f"breaks the stage contract ({len(lines)} violation{plural}):",
                      *(f"  {line}" for line in lines)])


# -- the hookspecs, as verify needs them --------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    name: str
    argnames: tuple[str, ...]
    hints: Mapping[str, Any]

    @property
    def phase(self) -> bool:
        return self.name in _PHASE_HOOKS

    @property
    def call(self) -> str:
        return f"{self.name}({', '.join(self.argnames)})"

    @property
    def returns(self) -> Any:
        return self.hints.get("return", Any)


_PHASE_HOOKS = frozenset(hookspecs.phase_hook(phase) for phase in hookspecs.PHASES)


@functools.cache
def _specs() -> Mapping[str, _Spec]:
    """Every hookspec by name, with its parameter names and resolved annotations."""
    from ._schema import Event
    from .fields import Field
    from .sinks import Sink
    from .sources import Source

    namespace = {**vars(hookspecs), "Event": Event, "Field": Field, "Sink": Sink,
                 "Source": Source}
    marker = f"{hookspecs.PROJECT}_spec"
    specs = {}
    for name, value in vars(hookspecs).items():
        if inspect.isfunction(value) and getattr(value, marker, None) is not None:
            specs[name] = _Spec(name, tuple(inspect.signature(value).parameters),
                                typing.get_type_hints(value, globalns=namespace))
    return MappingProxyType(specs)


@functools.cache
def _marker_reader() -> pluggy.PluginManager:
    """A manager used only to read ``@hookimpl`` options exactly as the loader's does."""
    import pluggy

    return pluggy.PluginManager(hookspecs.PROJECT)


# -- types --------------------------------------------------------------------------------------

_UNION_TYPES: tuple[Any, ...] = (typing.Union, types.UnionType)


def _members(annotation: Any) -> list[Any]:
    """The alternatives of a union (``None`` as ``NoneType``), or the annotation alone."""
    if annotation is None:
        return [type(None)]
    if typing.get_origin(annotation) in _UNION_TYPES:
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _runtime_class(annotation: Any) -> type | None:
    """The class an annotation stands for, or None when it could stand for anything."""
    if annotation is Any:
        return None
    supertype = getattr(annotation, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        return _runtime_class(supertype)
    origin = typing.get_origin(annotation) or annotation
    return origin if isinstance(origin, type) else None


def _overlap(one: Any, other: Any) -> bool:
    """Whether a value could be of both types (unknown forms, TypeVars, Any: assume so)."""
    first, second = _runtime_class(one), _runtime_class(other)
    if first is None or second is None:
        return True
    try:
        return issubclass(first, second) or issubclass(second, first)
    except TypeError:  # a protocol that cannot be checked at run time
        return True


def _returns_fit(actual: Any, expected: Any) -> bool:
    """Whether every value an implementation declares it returns may be what the spec returns."""
    wanted = _members(expected)
    return all(any(_overlap(one, want) for want in wanted) for one in _members(actual))


def _accepts(actual: Any, expected: Any) -> bool:
    """Whether a parameter annotated ``actual`` can receive what the spec passes."""
    return any(_overlap(one, want) for one in _members(actual) for want in _members(expected))


def _show(annotation: Any) -> str:
    """An annotation as a person writes it: ``int``, ``dict[str, Any]``, ``Event | None``."""
    if isinstance(annotation, str):
        return annotation
    members = _members(annotation)
    if len(members) > 1:
        return " | ".join(_show(member) for member in members)
    if annotation is type(None) or annotation is None:
        return "None"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__qualname__
    return repr(annotation).replace("typing.", "").replace("collections.abc.", "")


def _hints(function: Any) -> dict[str, Any]:
    """A function's annotations, resolved; those that cannot be resolved are left out."""
    raw = getattr(function, "__annotations__", None)
    if not raw:
        return {}
    try:
        return typing.get_type_hints(function)
    except Exception:  # a name imported only under TYPE_CHECKING, say: resolve one by one
        namespace = getattr(function, "__globals__", {})
        resolved: dict[str, Any] = {}
        for name, annotation in raw.items():
            if isinstance(annotation, str):
                try:
                    annotation = eval(annotation, namespace)  # what get_type_hints does
                except Exception:
                    continue
            resolved[name] = type(None) if annotation is None else annotation
        return resolved


def _written(function: Any, name: str, resolved: Any) -> str:
    """An annotation as written in the source, when it was a string."""
    raw = getattr(function, "__annotations__", {}).get(name)
    return raw if isinstance(raw, str) else _show(resolved)


# -- where definitions live ---------------------------------------------------------------------


def _innermost(function: Any) -> Any:
    """The function as written: through bound methods, static/class methods, ``__wrapped__``."""
    seen: set[int] = set()
    while id(function) not in seen:
        seen.add(id(function))
        if isinstance(function, (staticmethod, classmethod, types.MethodType)):
            function = function.__func__
        elif isinstance(function, functools.partial):
            function = function.func
        elif getattr(function, "__wrapped__", None) is not None:
            function = function.__wrapped__
    return function


def _function_location(function: Any) -> tuple[str | None, int | None]:
    definition = _innermost(function)
    code = getattr(definition, "__code__", None)
    if code is None:  # a callable object: point at its class
        return _class_location(type(definition))
    try:
        filename = inspect.getsourcefile(definition) or code.co_filename
    except TypeError:
        filename = code.co_filename
    return filename, code.co_firstlineno


def _class_location(cls: type) -> tuple[str | None, int | None]:
    lineno = getattr(cls, "__firstlineno__", None)  # Python 3.13+
    try:
        filename = inspect.getsourcefile(cls)
    except TypeError:
        filename = None
    if filename is None:
        module = sys.modules.get(cls.__module__)
        filename = getattr(module, "__file__", None)
    if lineno is None and filename is not None:
        try:
            lineno = inspect.getsourcelines(cls)[1]
        except (OSError, TypeError, IndexError):  # a class made by type(): no statement
            lineno = None
    return filename, lineno


def _qualname(cls: type) -> str:
    """``Outer.Velocity``: a class's name as its module shows it (no ``<locals>``)."""
    return cls.__qualname__.rpartition("<locals>.")[2]


def _call_text(name: str, function: Any) -> str:
    """``Velocity.process(self, evt, *, extra=1)``: a signature as written, unannotated."""
    bare = [p.replace(annotation=p.empty) for p in _parameters(function) or []]
    return f"{name}{inspect.Signature(bare)}"


# -- the checks ---------------------------------------------------------------------------------

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_EMPTY = inspect.Parameter.empty
_PHASE_RESULT = ("return None after assigning fields, or return a replacement event "
                 "(or raise hookline.Reject / hookline.Drop)")
_EVENT_ADVICE = ("annotate it hookline.Event (the pipeline's event class; fields are "
                 "attributes: event.amount) or Any")
_WRAPPER_SHAPE = "result = yield; return result (see 'Phase wrappers' in the hook reference)"


#: Finds the file and line of a definition, when a violation is reported.
_Where = Callable[[], tuple[str | None, int | None]]


class _Checker:
    """Collects the violations of one plugin."""

    def __init__(self, plugin: str, declared_flags: Collection[str] | None,
                 known_plugins: Collection[str] | None) -> None:
        self.plugin = plugin
        self.declared_flags = declared_flags
        self.known_plugins = known_plugins
        self.found: list[Violation] = []

    def add(self, code: str, message: str, where: _Where, stage: str | None = None) -> None:
        """Record a violation; ``where()`` finds its file and line (only now: it reads files)."""
        filename, lineno = where()
        self.found.append(Violation(self.plugin, code, message, filename, lineno, stage))

    # -- stages ----------------------------------------------------------------------------------
    def stage(self, cls: type) -> None:
        info = getattr(cls, "__stage__", None)
        if not isinstance(info, StageInfo):  # an abstract base: nothing runs it
            return
        where = functools.partial(_class_location, cls)
        name = _qualname(cls)
        if info.phase not in hookspecs.PHASES:
            self.add("unknown-phase",
                     f"{name} declares phase={info.phase!r}, which is not a phase"
                     f"{_close(str(info.phase), hookspecs.PHASES)} (phases, in order: "
                     f"{', '.join(hookspecs.PHASES)})", where, info.name)
        static = inspect.getattr_static(cls, "process", None)
        if static is None or static is Stage.__dict__["process"]:
            candidates = [n for n in dir(cls) if not n.startswith("__") and n != "process"]
            inherited = " (it inherits Stage.process, which does nothing)" if static else ""
            misspelt = _close("process", candidates).partition("did you mean ")[2]
            hint = f" ({misspelt.rstrip('?')} looks like a misspelling)" if misspelt else ""
            self.add("missing-process",
                     f"{name} defines no process(self, event) method{inherited}: define "
                     f"process(self, event) -> Event | None{hint}", where, info.name)
        elif not callable(getattr(cls, "process", None)):
            self.add("process-not-callable",
                     f"{name}.process is {type(static).__name__} {static!r}, not a method; "
                     "define process(self, event) -> Event | None", where, info.name)
        elif info.phase in hookspecs.PHASES:
            function, parameters = _method_parameters(static)
            shown = functools.partial(_call_text, f"{name}.process", function)
            if parameters is _NO_SELF:
                self.add("wrong-parameters",
                         f"{shown()} takes no self: define it as process(self, event)",
                         functools.partial(_function_location, function), info.name)
            elif parameters is not None:
                self.implementation(_specs()[hookspecs.phase_hook(info.phase)],
                                    f"{name}.process", shown, function, parameters, {},
                                    info.name)
        self.references(cls, info)

    def references(self, cls: type, info: StageInfo) -> None:
        """A stage's ``flag=``, ``before=`` and ``after=`` against what exists."""
        where = functools.partial(_class_location, cls)
        name = _qualname(cls)
        flags = self.declared_flags
        if info.flag and flags is not None and info.flag not in flags:
            declared = ", ".join(sorted(flags)) or "none"
            self.add("unknown-flag",
                     f"{name} is gated by flag={info.flag!r}, which no plugin declares"
                     f"{_close(info.flag, flags)} (declared: {declared}); declare it in a "
                     "hookline_flags() hook or fix the name", where, info.name)
        if self.known_plugins is None:
            return
        for keyword, targets in (("before", info.before), ("after", info.after)):
            for target in targets:
                if not _known(target, self.known_plugins):
                    self.add("unknown-plugin",
                             f"{name} declares {keyword}={target!r}, which names no installed "
                             f"plugin or stage{_close(target, self.known_plugins)}",
                             where, info.name)

    # -- hook implementations --------------------------------------------------------------------
    def hooks(self, obj: Any) -> None:
        """The ``@hookimpl`` functions or methods of a module or namespace object."""
        specs = _specs()
        for attr, hook, function, opts in _hookimpls(obj):
            spec = specs.get(hook)
            display = attr if hook == attr else f"{attr} (specname={hook!r})"
            if spec is None:
                if not opts.get("optionalhook"):
                    self.add("unknown-hook",
                             f"{display} is marked @hookimpl, but hookline has no hook "
                             f"{hook!r}{_close(hook, specs)}",
                             functools.partial(_function_location, function))
                continue
            parameters = _parameters(function)
            if parameters is None:
                continue
            self.implementation(spec, display, functools.partial(_call_text, attr, function),
                                function, parameters, opts, None)
        for attr, function in _unmarked(obj, specs):
            self.add("unmarked-hook",
                     f"{attr} is named like the hook {attr} but is not marked "
                     "@hookline.hookimpl, so hookline never calls it: decorate it with "
                     "@hookline.hookimpl", functools.partial(_function_location, function))

    def implementation(self, spec: _Spec, display: str, shown: Callable[[], str], called: Any,
                       parameters: list[inspect.Parameter], opts: Mapping[str, Any],
                       stage: str | None) -> None:
        """One implementation (a stage's process, or a @hookimpl) against its spec.

        ``display`` names it (``Velocity.process``), ``shown`` is its signature as written,
        ``called`` what hookline calls, ``parameters`` those hookline passes arguments to.
        """
        where = functools.partial(_function_location, called)
        definition = _innermost(called)
        wrapper = bool(opts.get("wrapper") or opts.get("hookwrapper"))
        if opts.get("hookwrapper") and spec.phase:
            self.add("hookwrapper-on-phase",
                     f"{display} uses old-style @hookimpl(hookwrapper=True), which hookline's "
                     f"phases do not support; use @hookimpl(wrapper=True): {_WRAPPER_SHAPE}",
                     where, stage)
        if wrapper and not inspect.isgeneratorfunction(called):
            hidden = (" (its decorator hides the yield: a wrapper's decorator must itself be "
                      "a generator function)" if inspect.isgeneratorfunction(definition) else "")
            self.add("wrapper-not-generator",
                     f"{display} is declared @hookimpl(wrapper=True) but is not a generator "
                     f"function{hidden}; it must yield exactly once: {_WRAPPER_SHAPE}",
                     where, stage)
        if not wrapper and spec.phase and (inspect.isgeneratorfunction(definition)
                                           or inspect.isasyncgenfunction(definition)):
            self.add("unexpected-generator",
                     f"{display} is a generator function (it contains yield), but only "
                     f"@hookimpl(wrapper=True) implementations yield: {_PHASE_RESULT}",
                     where, stage)
        problems = (_phase_parameter_problems if spec.phase else _parameter_problems)(
            shown, parameters, spec)
        for problem in problems:
            self.add("wrong-parameters", problem, where, stage)
        self.annotations(spec, display, definition, parameters, wrapper, where, stage)

    def annotations(self, spec: _Spec, display: str, definition: Any,
                    parameters: list[inspect.Parameter], wrapper: bool,
                    where: _Where, stage: str | None) -> None:
        hints = _hints(definition)
        if not hints:
            return
        names = {p.name for p in parameters}
        for name in spec.argnames:
            if name not in hints or name not in names or name not in spec.hints:
                continue
            if not _accepts(hints[name], spec.hints[name]):
                advice = _EVENT_ADVICE if name == "event" and spec.phase else (
                    f"annotate it {_show(spec.hints[name])} or Any")
                self.add("annotation-mismatch",
                         f"{display} annotates {name}: {_written(definition, name, hints[name])}"
                         f", but {spec.call} passes {_show(spec.hints[name])}: {advice}",
                         where, stage)
        if "return" not in hints:
            return
        if wrapper:
            if not _returns_fit(hints["return"], Generator):
                self.add("annotation-mismatch",
                         f"{display} is annotated -> "
                         f"{_written(definition, 'return', hints['return'])}, but a wrapper is "
                         "a generator: annotate it -> Generator[None, Any, Any]", where, stage)
        elif not _returns_fit(hints["return"], spec.returns):
            advice = _PHASE_RESULT if spec.phase else f"return {_show(spec.returns)}"
            self.add("annotation-mismatch",
                     f"{display} is annotated -> {_written(definition, 'return', hints['return'])}"
                     f", but {spec.name} returns {_show(spec.returns)}: {advice}", where, stage)


#: What ``_method_parameters`` returns for a method with no parameter to take ``self``.
_NO_SELF: list[inspect.Parameter] = []


def _method_parameters(static: Any) -> tuple[Any, list[inspect.Parameter] | None]:
    """A stage's ``process`` as found on the class, and the parameters an event is passed to.

    The parameters are None when there is no signature to check (some builtins), and
    ``_NO_SELF`` when a plain method has no parameter to bind ``self`` to.
    """
    if isinstance(static, staticmethod):
        return static.__func__, _parameters(static.__func__)
    if not (isinstance(static, classmethod) or inspect.isfunction(static)):
        return static, _parameters(static)  # a callable object: called as it is
    function = static.__func__ if isinstance(static, classmethod) else static
    parameters = _parameters(function)
    if parameters is None:
        return function, None
    if parameters and parameters[0].kind in _POSITIONAL:
        return function, parameters[1:]
    if parameters and parameters[0].kind is inspect.Parameter.VAR_POSITIONAL:
        return function, parameters  # *args takes self as well
    return function, _NO_SELF


def _parameters(function: Any) -> list[inspect.Parameter] | None:
    """The parameters of what hookline calls (bound methods without self), if it has any."""
    try:
        return list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # some builtins have no signature: nothing to check
        return None


def _phase_parameter_problems(call: Callable[[], str], parameters: list[inspect.Parameter],
                              spec: _Spec) -> list[str]:
    """A phase implementation is called ``impl(event)``: exactly one argument, named event."""
    positional = [p for p in parameters if p.kind in _POSITIONAL]
    keyword_only = [p for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
    problems = []
    if not positional:
        if any(p.name == "event" for p in keyword_only):
            problems.append(f"{call()}: event is keyword-only, but hookline passes the event "
                            f"positionally, as {spec.call}: remove the *")
        elif any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
            problems.append(f"{call()} takes only *args/**kwargs; pluggy passes hook arguments "
                            f"by name, so declare the parameter event: {spec.call}")
        else:
            problems.append(f"{call()} takes no event parameter; hookline calls it with the "
                            f"event, as {spec.call}")
    else:
        first = positional[0]
        if first.name != "event":
            problems.append(f"{call()}: the parameter is named {first.name!r}; name it 'event' "
                            f"(pluggy passes hook arguments by name: {spec.call})")
        elif first.default is not _EMPTY:
            problems.append(f"{call()}: event has a default, so pluggy would not pass it; "
                            "remove the default")
    extra = [p.name for p in positional[1:] + keyword_only if p.default is _EMPTY]
    if positional and extra:
        listed = ", ".join(repr(name) for name in extra)
        many = len(extra) > 1
        problems.append(f"{call()}: parameter{'s' if many else ''} {listed} "
                        f"{'are' if many else 'is'} required, but {spec.call} passes only the "
                        f"event: give {'them defaults' if many else 'it a default'}, or read "
                        f"{'them' if many else 'it'} from the plugin's settings")
    return problems


def _parameter_problems(call: Callable[[], str], parameters: list[inspect.Parameter],
                        spec: _Spec) -> list[str]:
    """Other hooks are called by name: every required parameter must be one the spec passes."""
    problems = []
    for p in parameters:
        required = p.default is _EMPTY and p.kind in (*_POSITIONAL,
                                                      inspect.Parameter.KEYWORD_ONLY)
        if not required:
            continue
        if p.name not in spec.argnames:
            problems.append(f"{call()}: {p.name!r} is not an argument "
                            f"of {spec.call}{_close(p.name, spec.argnames)}")
        elif p.kind is inspect.Parameter.KEYWORD_ONLY:
            problems.append(f"{call()}: {p.name!r} is keyword-only, "
                            "but pluggy passes hook arguments positionally: remove the *")
    return problems


def _known(target: str, known: Collection[str]) -> bool:
    """Whether ``before=``/``after=`` target names a known plugin or one of its stages."""
    if target in known or any(name.startswith(target + ".") for name in known):
        return True
    plugin, dot, _ = target.partition(".")
    # plugin.stage of a known plugin whose stages are not listed: cannot tell, accept
    return bool(dot) and plugin in known and not any(n.startswith(plugin + ".") for n in known)


def _attributes(obj: Any) -> dict[str, Any]:
    """The attributes of a module, class or object as stored (no descriptor is run)."""
    if isinstance(obj, ModuleType):
        return vars(obj)
    owner = obj if isinstance(obj, type) else type(obj)
    found: dict[str, Any] = {}
    for cls in reversed(owner.__mro__[:-1]):  # not object's
        found.update(vars(cls))
    if not isinstance(obj, type):
        found.update(getattr(obj, "__dict__", {}))
    return found


_MARKER = f"{hookspecs.PROJECT}_impl"


def _marked(value: Any) -> bool:
    marker = _MARKER
    try:
        return (getattr(value, marker, None) is not None
                or getattr(getattr(value, "__func__", None), marker, None) is not None)
    except Exception:  # an object whose attributes cannot be read carries no marker
        return False


def _hookimpls(obj: Any) -> Iterator[tuple[str, str, Any, Mapping[str, Any]]]:
    """``(attribute, hook name, callable, options)`` of each @hookimpl, found as pluggy does.

    Only attributes carrying the marker are handed to pluggy's own parser, which decides.
    """
    reader = _marker_reader()
    for attr, value in sorted(_attributes(obj).items()):
        if not _marked(value):
            continue
        opts = reader.parse_hookimpl_opts(obj, attr)
        if opts is not None:
            yield attr, opts.get("specname") or attr, getattr(obj, attr), opts


def _unmarked(obj: Any, specs: Mapping[str, _Spec]) -> Iterator[tuple[str, Any]]:
    """Functions of the plugin named exactly like a hook but not marked @hookimpl."""
    home = obj.__name__ if isinstance(obj, ModuleType) else None
    attributes = _attributes(obj)
    for attr in specs:
        function = attributes.get(attr)
        if function is None or _marked(function) or not callable(function) or isinstance(
                function, type):
            continue
        definition = _innermost(function)
        if getattr(definition, f"{hookspecs.PROJECT}_spec", None) is not None:
            continue  # the spec itself, imported
        module = getattr(definition, "__module__", None) or ""
        if home is not None and not (module == home or module.startswith(home + ".")):
            continue  # imported from elsewhere
        yield attr, function


# -- the public functions -----------------------------------------------------------------------


def verify(
    obj: Any,
    *,
    declared_flags: Collection[str] | None = None,
    known_plugins: Collection[str] | None = None,
    plugin: str | None = None,
    registry: Registry | None = None,
) -> list[Violation]:
    """Every way ``obj`` breaks the stage contract; an empty list when it satisfies it.

    ``obj`` is what an entry point names: a ``Stage`` subclass, a module (its stage classes,
    found as the loader finds them, and its ``@hookimpl`` functions), or a hook namespace
    object (its ``@hookimpl`` methods). ``declared_flags``: the flag names that exist; when
    given, a stage gated by another flag is a violation. ``known_plugins``: the plugin (or
    ``plugin.stage``) names that exist; when given, ``before=``/``after=`` naming another is a
    violation. ``plugin`` names the plugin in the violations (default: as the loader names
    it, ``hookline_fraud`` → ``fraud``); ``registry`` is where stage classes were recorded.
    """
    registry = registry or current_registry()
    if isinstance(obj, ModuleType) and _nothing_to_check(obj, registry):
        return []
    checker = _Checker(plugin or plugin_name(obj), declared_flags, known_plugins)
    if isinstance(obj, StageMeta) or (isinstance(obj, type) and hasattr(obj, "__stage__")):
        checker.stage(obj)
        return checker.found
    if isinstance(obj, ModuleType):
        for info in registry.stages_of(obj):
            checker.stage(info.cls)
    checker.hooks(obj)
    return checker.found


def _nothing_to_check(module: ModuleType, registry: Registry) -> bool:
    """A module with no stage, no @hookimpl and no hook-named attribute: the checks below
    would find nothing (a quick pass, since installs can hold hundreds of plugins)."""
    if registry.stages_in(module.__name__):
        return False
    for name, value in vars(module).items():
        if name[:2] == "__":
            continue  # __builtins__, __spec__…: the module's own machinery
        if name.startswith("hookline_") or _marked(value):
            return False
        if isinstance(value, type) and getattr(value, "__stage__", None) is not None:
            return False
    return True


def verify_plugins(
    plugins: Mapping[str, Iterable[Any]],
    *,
    known_plugins: Collection[str] | None = None,
    flags: Iterable[str] = (),
    registry: Registry | None = None,
) -> dict[str, list[Violation]]:
    """Verify plugins together, as the loader does: each name with the objects it contributes.

    The objects are entry-point objects or the stage classes a plugin contributed (a module's
    stages are verified with the module). The declared flags are ``flags`` plus those any of
    the plugins declares in ``hookline_flags()``: a stage may be gated by another plugin's flag.
    Returns every name, with its violations (an empty list when it satisfies the contract).
    """
    groups = {name: list(objects) for name, objects in plugins.items()}
    declared = set(flags) | flags_declared_by(obj for group in groups.values() for obj in group)
    found: dict[str, list[Violation]] = {}
    for name, group in groups.items():
        modules = [obj.__name__ for obj in group if isinstance(obj, ModuleType)]
        found[name] = [
            violation
            for obj in group
            if not (isinstance(obj, type) and _defined_in(obj, modules))
            for violation in verify(obj, declared_flags=declared, known_plugins=known_plugins,
                                    plugin=name, registry=registry)
        ]
    return found


def _defined_in(cls: type, modules: Iterable[str]) -> bool:
    return any(cls.__module__ == m or cls.__module__.startswith(m + ".") for m in modules)


def flags_declared_by(objects: Iterable[Any]) -> set[str]:
    """The names of the flags that the ``hookline_flags()`` hooks of ``objects`` declare.

    A hook that raises declares nothing here; the pipeline reports its error when it calls it.
    """
    names: set[str] = set()
    for obj in objects:
        if isinstance(obj, StageMeta):
            continue
        if isinstance(obj, ModuleType) and _nothing_to_check(obj, current_registry()):
            continue
        for _attr, hook, function, opts in _hookimpls(obj):
            if hook != "hookline_flags" or opts.get("wrapper") or opts.get("hookwrapper"):
                continue
            try:
                declarations = function() or ()
                names.update(str(d["name"]) for d in declarations
                             if isinstance(d, Mapping) and "name" in d)
            except Exception:
                continue
    return names
