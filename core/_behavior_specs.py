"""Behaviour specs: how configuration names a behaviour and the stages that get it.

A spec is a call written as text, ``"retry(attempts=3)"`` (Python call syntax, literal
arguments only, read with :mod:`ast` and never evaluated), a bare name, ``"timed"``, or a
one-key table, ``{"retry": {"attempts": 3}}``. :func:`build` turns one into a call of a factory
from a table of factories (the behaviours', :data:`hookline.behaviors.FACTORIES`), with errors
that name the spec, the behaviour, the argument and the value. A ``[behaviors]`` table maps
stage patterns (:func:`match`) to lists of specs; :func:`parse_table` checks it into
:class:`Rule`\\ s, and :func:`matching` picks the rules of one stage.

This module knows the grammar, not the behaviours: :mod:`hookline.behaviors` passes its
factories in and offers the public ``parse``, ``parse_table``, ``Rule``, ``match`` and
``matching``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ._suggest import did_you_mean
from .errors import BehaviorError, short_repr

if TYPE_CHECKING:
    from .behaviors import Behavior

__all__ = ["Rule", "build", "match", "matching", "parse_table"]

T = TypeVar("T")


def _factory(name: str, where: str, factories: Mapping[str, Callable[..., T]]) -> Callable[..., T]:
    factory = factories.get(name)
    if factory is None:
        raise BehaviorError(f"unknown behaviour {name!r}{where}{did_you_mean(name, factories)} "
                            f"(known: {', '.join(sorted(factories))})", name)
    return factory


def _call(name: str, args: Sequence[Any], kwargs: Mapping[str, Any], where: str,
          factories: Mapping[str, Callable[..., T]]) -> T:
    """``factories[name](*args, **kwargs)``, its arguments checked against its signature."""
    factory = _factory(name, where, factories)
    parameters = inspect.signature(factory).parameters
    takes = ", ".join(parameters) or "no arguments"
    if len(args) > len(parameters):
        raise BehaviorError(f"{name}: too many positional arguments {list(args)!r}{where}; "
                            f"{name} takes {takes}", name)
    for argument in kwargs:
        if argument not in parameters:
            raise BehaviorError(
                f"{name}: unknown argument {argument}={short_repr(kwargs[argument])}{where}"
                f"{did_you_mean(argument, parameters)} ({name} takes {takes})", name, argument)
    try:
        bound = inspect.signature(factory).bind(*args, **kwargs)
    except TypeError as error:
        raise BehaviorError(f"{name}: {error}{where} ({name} takes {takes})", name) from None
    try:
        return factory(*bound.args, **bound.kwargs)
    except BehaviorError as error:
        if not where:
            raise
        raise BehaviorError(f"{error}{where}", error.behavior, error.argument) from None


def _literal(name: str, argument: str, node: Any, text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        source = ast.get_source_segment(text, node) or ast.dump(node)
        raise BehaviorError(
            f"{name}: {argument}={source} in {text!r} is not a literal; a spec takes numbers, "
            "strings, True/False/None, lists, tuples and dicts", name, argument) from None


def _read_text(text: str, factories: Mapping[str, Callable[..., Any]],
               ) -> tuple[str, list[Any], dict[str, Any]]:
    """The name and the literal arguments of a spec written as a call."""
    import ast

    where = f" in {text!r}"
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as error:
        raise BehaviorError(f"cannot parse behaviour spec {text!r}: {error.msg}") from None
    if isinstance(node, ast.Name):
        _factory(node.id, where, factories)
        return node.id, [], {}
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise BehaviorError(f"behaviour spec {text!r} is not a call like 'retry(attempts=3)'")
    name = node.func.id
    _factory(name, where, factories)  # an unknown name first, before its arguments
    args, kwargs = [], {}
    for position, value in enumerate(node.args):
        if isinstance(value, ast.Starred):
            raise BehaviorError(f"{name}: *arguments are not allowed{where}", name)
        args.append(_literal(name, f"argument {position + 1}", value, text.strip()))
    for keyword in node.keywords:
        if keyword.arg is None:
            raise BehaviorError(f"{name}: **arguments are not allowed{where}", name)
        if keyword.arg in kwargs:
            raise BehaviorError(f"{name}: argument {keyword.arg} given twice{where}", name,
                                keyword.arg)
        kwargs[keyword.arg] = _literal(name, keyword.arg, keyword.value, text.strip())
    return name, args, kwargs


def build(spec: Any, factories: Mapping[str, Callable[..., T]]) -> T:
    """What the factory a spec names returns for the spec's arguments.

    ``spec``: a string (a call with literal arguments, or a bare name), or a one-key table
    (arguments by name; a list gives them by position, a scalar is the one positional
    argument). Raises :class:`BehaviorError` for an unknown name (suggesting the closest),
    a bad argument (naming the behaviour, the argument and the value), or another type.
    """
    if isinstance(spec, str):
        name, args, kwargs = _read_text(spec, factories)
        return _call(name, args, kwargs, f" in {spec!r}", factories)
    if isinstance(spec, Mapping):
        if len(spec) != 1:
            raise BehaviorError(f"a behaviour table names exactly one behaviour, not "
                                f"{sorted(map(str, spec)) or 'none'}")
        ((name, value),) = spec.items()
        if not isinstance(name, str):
            raise BehaviorError(f"a behaviour name is a string, not {short_repr(name)}")
        where = f" in {{{name!r}: {short_repr(value)}}}"
        if isinstance(value, Mapping):
            return _call(name, [], {str(k): v for k, v in value.items()}, where, factories)
        if isinstance(value, (list, tuple)):
            return _call(name, list(value), {}, where, factories)
        return _call(name, [] if value is None else [value], {}, where, factories)
    raise BehaviorError(
        f"a behaviour spec is a string like 'retry(attempts=3)' or a table like "
        f"{{retry = {{attempts = 3}}}}, not {short_repr(spec)}")


def match(pattern: str, stage_name: str) -> bool:
    """Whether ``pattern`` selects the qualified stage name ``stage_name``.

    Shell-style, case-sensitive (``fraud.*``, ``*.velocity``, ``*``); a pattern without
    wildcards also selects the stages under it, as ``before=``/``after=`` do: ``fraud``
    selects ``fraud.velocity``.
    """
    from fnmatch import fnmatchcase

    return (stage_name == pattern or stage_name.startswith(pattern + ".")
            or fnmatchcase(stage_name, pattern))


@dataclass(frozen=True)
class Rule:
    """One entry of a ``[behaviors]`` table: the stages ``pattern`` selects get
    ``behaviors`` (first outermost); ``source`` says where the rule came from."""

    pattern: str
    behaviors: tuple[Behavior, ...]
    source: str = "code"

    def matches(self, stage_name: str) -> bool:
        return match(self.pattern, stage_name)


def parse_table(table: Mapping[str, Any], *, source: str,
                parse: Callable[[Any], Behavior]) -> tuple[Rule, ...]:
    """Check a ``[behaviors]`` table, each spec read by ``parse``, into rules, in order.

    Each value is a list of specs (or one spec). Errors name ``source``, the pattern and the
    position: ``hookline.toml [behaviors] 'fraud.*' #2: unknown behaviour 'retyr'...``.
    """
    if not isinstance(table, Mapping):
        raise BehaviorError(f"{source} must be a table of stage patterns to lists of "
                            f"behaviours, not {short_repr(table)}")
    rules = []
    for pattern, specs in table.items():
        if not isinstance(pattern, str) or not pattern:
            raise BehaviorError(f"{source}: {short_repr(pattern)} is not a stage pattern")
        items = [specs] if isinstance(specs, (str, Mapping)) else specs
        if not isinstance(items, (list, tuple)):
            raise BehaviorError(f"{source} {pattern!r}: expected a list of behaviours, "
                                f"not {short_repr(specs)}")
        behaviors = []
        for position, spec in enumerate(items, 1):
            try:
                behaviors.append(parse(spec))
            except BehaviorError as error:
                raise BehaviorError(f"{source} {pattern!r} #{position}: {error}",
                                    error.behavior, error.argument) from None
        rules.append(Rule(pattern, tuple(behaviors), source))
    return tuple(rules)


def matching(rules: Iterable[Rule], stage_name: str) -> list[Rule]:
    """The rules that select ``stage_name``, in order; their behaviours, concatenated, are
    what to inject (``[b for r in matching(rules, name) for b in r.behaviors]``)."""
    return [rule for rule in rules if rule.matches(stage_name)]
