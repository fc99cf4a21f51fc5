"""Schemas: ``Event`` (what flows through the pipeline) and ``Settings`` (a plugin's options).

A schema is a class whose attributes are :mod:`hookline.fields` descriptors. Its first
instance compiles a ``__init__`` and ``from_dict`` with every field's rules inlined
(``_codegen``); :meth:`Schema.find_problems` is the plain reference they are tested against,
and both report errors through the same helpers (``_missing``, ``_unknown``…). The
descriptors live in ``__fields__``; assignments go through them (validated), while reads
are plain instance-dict reads: CPython only specializes attribute reads that no data
descriptor on the class shadows, and reads are the hot path of every stage.
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .errors import FieldError, SchemaError, ValidationError
from .fields import MISSING, Field, List, Number, String, Timestamp
from .fields import Mapping as MappingField

__all__ = ["DefaultEvent", "Event", "Schema", "Settings", "compose"]

S = TypeVar("S", bound="Schema")

_EXTRA_MODES = ("forbid", "properties")


class Schema:
    """Base of classes made of fields. Subclass :class:`Event` or :class:`Settings`."""

    __fields__: ClassVar[dict[str, Field[Any]]] = {}
    __frozen__: ClassVar[bool] = False
    __extra__: ClassVar[str] = "forbid"

    def __init_subclass__(
        cls, *, frozen: bool | None = None, extra: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if frozen is not None:
            cls.__frozen__ = frozen
        if extra is not None:
            if extra not in _EXTRA_MODES:
                raise SchemaError(f"{cls.__qualname__}: extra must be one of {_EXTRA_MODES}")
            cls.__extra__ = extra
        fields: dict[str, Field[Any]] = {}
        for base in reversed(cls.__mro__[1:]):
            fields.update(getattr(base, "__fields__", {}))
        for name, value in list(vars(cls).items()):
            if isinstance(value, Field):
                if (name.startswith("_") or hasattr(Schema, name) or not name.isidentifier()
                        or keyword.iskeyword(name)):
                    raise SchemaError(f"{cls.__qualname__}: {name!r} cannot be a field name")
                fields[name] = value
                delattr(cls, name)  # reads go to the instance dict; see the module docstring
        cls.__fields__ = fields
        _compile_on_first_use(cls)

    if TYPE_CHECKING:  # the real one is generated per class by _codegen

        def __init__(self, **values: Any) -> None: ...

    @classmethod
    def from_dict(cls: type[S], data: Mapping[str, Any]) -> S:
        """Build an instance from a dict, checking every field; raises ValidationError."""
        raise NotImplementedError  # replaced per class by the generated version

    @classmethod
    def from_json(cls: type[S], text: str | bytes) -> S:
        """Parse one JSON object (with hookline's input limits) and build an instance."""
        from ._limits import parse_json

        return cls.from_dict(parse_json(text))

    @classmethod
    def find_problems(cls, data: Any) -> list[FieldError]:
        """Every problem with ``data`` for this schema, field by field (the reference path).

        This is the plain, uncompiled definition of validity; the generated ``from_dict``
        must accept and reject exactly the same data with exactly these errors.
        """
        if type(data) is not dict:
            return [FieldError("$", "must be an object", data)]
        errors: list[FieldError] = []
        for name, field in cls.__fields__.items():
            if name in data:
                errors.extend(field.problems(data[name], name))
            elif field.required:
                _missing(errors, name)
        if not _keeps_extra(cls):
            _unknown(cls, errors, data)
        return errors

    @classmethod
    def from_dict_by_descriptors(cls: type[S], data: Any) -> S:
        """Build an instance the slow way: one descriptor assignment per field.

        Behaves exactly like the generated ``from_dict``; it exists as the reference that
        the fast path is tested against, and for debugging a schema.
        """
        _check_defaults(cls)
        errors = cls.find_problems(data)
        if errors:
            raise ValidationError(errors, cls.__name__)
        self = object.__new__(cls)
        for name, field in cls.__fields__.items():
            value = data[name] if name in data else field.make_default()
            if name == "properties" and _keeps_extra(cls):
                value, _ = _keep_extra(cls, data, value)
            self.__dict__[name] = field.validate(value, name)
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        field = self.__fields__.get(name)
        if field is None:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        accepts = field._accepts  # Field.__set__'s common case, one call fewer (stages set
        if accepts is not None and not self.__frozen__ and accepts(value):  # fields per event)
            self.__dict__[name] = value
        else:
            field.__set__(self, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__}: fields cannot be deleted ({name!r})")

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON-ready data (nested schemas become dicts; lists are copied)."""
        values = self.__dict__
        return {name: _plain(values[name]) for name in self.__fields__}

    def to_json(self) -> str:
        """The fields as one compact JSON object."""
        import json

        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        values = self.__dict__
        shown = ", ".join(f"{name}={values[name]!r}" for name in self.__fields__)
        return f"{type(self).__name__}({shown})"

    def __copy__(self: S) -> S:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self).from_dict, (self.to_dict(),))


# -- what the generated code and the reference path share -----------------------------------
# Each error helper takes the list of errors so far (None in generated code until the first
# error) and returns it with its errors added.


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


def _fail(
    errors: list[FieldError] | None, field: Field[Any], value: Any, path: str, message: str
) -> list[FieldError]:
    """The error ``message`` of the rule ``value`` broke (for None, the field's own)."""
    if value is None:
        return _invalid(errors, field, value, path)
    error = FieldError(path, message, value)
    if errors is None:
        return [error]
    errors.append(error)
    return errors


def _unknown(
    cls: type[Schema], errors: list[FieldError] | None, data: Mapping[str, Any]
) -> list[FieldError]:
    """One error for each key of ``data`` that is not a field of ``cls``, in input order."""
    errors = [] if errors is None else errors
    fields = cls.__fields__
    errors.extend(FieldError(key, "is not a field of the schema", data[key])
                  for key in data if key not in fields)
    return errors


def _keeps_extra(cls: type[Schema]) -> bool:
    """Unknown keys go into the ``properties`` field (``extra="properties"``)."""
    return cls.__extra__ == "properties" and "properties" in cls.__fields__


def _keep_extra(
    cls: type[Schema], data: Mapping[str, Any], properties: Any,
    errors: list[FieldError] | None = None,
) -> tuple[Any, list[FieldError] | None]:
    """``properties`` with the unknown keys of ``data`` added, and ``errors`` with the
    problems of that merged value when there were none before (the reference path validates
    the merged value once the fields' own checks have passed): an unknown key's value must
    be one ``properties`` accepts (JSON data that can be stored)."""
    fields = cls.__fields__
    extra = {key: data[key] for key in data if key not in fields}
    if not extra:
        return properties, errors
    if properties is None:
        merged = extra
    elif type(properties) is not dict:
        return properties, errors  # already reported as invalid
    else:
        merged = {**properties, **extra}
    if errors is None:
        errors = fields["properties"].problems(merged, "properties") or None
    return merged, errors


_RUNTIME = {
    "_MISSING": MISSING,
    "_missing": _missing,
    "_invalid": _invalid,
    "_fail": _fail,
    "_unknown": _unknown,
    "_keep_extra": _keep_extra,
    # The instance-dict descriptor's own setter: one bound C call, cheaper than
    # object.__setattr__(self, "__dict__", ...) (Schema.__setattr__ guards fields).
    "_set_dict": vars(Schema)["__dict__"].__set__,
}


def _check_defaults(cls: type[Schema]) -> None:
    """Refuse a default that its field's check refuses (a factory is called once to see).

    Done when the class compiles, before its first instance, rather than when a field is
    declared: the check is compiled code, and declaring a schema compiles nothing.
    """
    for name, field in cls.__fields__.items():
        if field.default is not MISSING:
            problems = field.problems(field.make_default(), f"{cls.__qualname__}.{name}")
            if problems:
                raise SchemaError(f"{field!r}: its default is invalid: {problems[0]}")


def compiled(cls: type[S]) -> type[S]:
    """``cls`` with its ``__init__``/``from_dict`` generated now if not yet: for code that
    keeps a reference to ``cls.from_dict`` (a pipeline does), which must not be a stand-in
    checking on every call whether it still has to compile."""
    stand_in = getattr(vars(cls).get("from_dict"), "__func__", None)
    if stand_in in _STAND_INS:
        from . import _codegen  # late: `import hookline` compiles nothing

        _check_defaults(cls)
        from_dict, init = _codegen.compile_schema(
            cls, _plans(cls), keep_extra=_keeps_extra(cls), runtime=_RUNTIME
        )
        cls.__init__ = init  # type: ignore[method-assign]
        # A staticmethod with the class bound in its globals: no method object per call.
        cls.from_dict = staticmethod(from_dict)  # type: ignore[method-assign]
        _STAND_INS.discard(stand_in)
    return cls


def _plans(cls: type[Schema]) -> list[Any]:
    """The ``_codegen.FieldPlan`` of each field of ``cls``."""
    from . import _codegen

    plans = []
    for name, field in cls.__fields__.items():
        default = None if field.default is MISSING else field.default
        plans.append(_codegen.FieldPlan(
            name, field, field.required, default, callable(default), field.optional,
            field.converts, field.rules if field.inlinable() else None,
        ))
    return plans


def boundary(cls: type[Event]) -> Any:
    """``check(event, read)``: the problems of a ``cls`` event a stage may have tampered
    with, or None (see ``_codegen.compile_boundary``); ``read`` is a copy of its instance
    dict taken before the stages ran."""
    from . import _codegen
    from .fields import Boolean, Choice, Integer

    id_field = "event_id" if "event_id" in cls.__fields__ else None
    scalar = (String, Number, Integer, Timestamp, Boolean, Choice)
    immutable = frozenset(name for name, field in cls.__fields__.items()
                          if isinstance(field, scalar) and not field.converts)
    return _codegen.compile_boundary(cls, _plans(compiled(cls)), id_field=id_field,
                                     immutable=immutable,
                                     runtime={**_RUNTIME, "_stored_form": _stored_form})


def _stored_form(errors: list[FieldError] | None, field: Field[Any], value: Any,
                 path: str) -> list[FieldError] | None:
    """A converting field's value must be what conversion stores (a nested schema's
    instance is checked whole)."""
    if value is None or field.problems(value, path):
        return errors  # None is checked, and problems reported, by the field's own lines
    nested = getattr(field, "schema", None)
    if isinstance(value, Schema) and nested is not None:
        found = [FieldError(f"{path}.{e.path}", e.message, e.value)
                 for e in ([FieldError("$", f"is not a {nested.__name__}", value)]
                           if type(value) is not nested else nested.find_problems(value.__dict__))]
    else:
        try:
            stored = field.convert(value)
        except Exception:
            stored = None
        found = [] if stored is value or stored == value else [
            FieldError(path, "is not in its stored form", value)]
    return errors if not found else (errors or []) + found


#: The ``from_dict`` stand-ins installed by :func:`_compile_on_first_use`, not yet replaced.
_STAND_INS: set[Any] = set()


def _compile_on_first_use(cls: type[Schema]) -> None:
    """Install stand-ins that compile the class's ``__init__``/``from_dict`` when first called.

    Importing does nothing: a module declaring schemas (a plugin's, hookline's own) pays
    for code generation only if it builds an instance.
    """

    def compile_now() -> None:
        compiled(cls)

    def stand_in_from_dict(data: Any) -> Any:
        compile_now()
        return cls.from_dict(data)

    def stand_in_init(self: Any, /, **values: Any) -> None:
        compile_now()
        cls.__init__(self, **values)

    _STAND_INS.add(stand_in_from_dict)
    stand_in_init.__qualname__ = f"{cls.__qualname__}.__init__"
    stand_in_from_dict.__qualname__ = f"{cls.__qualname__}.from_dict"
    cls.__init__ = stand_in_init  # type: ignore[method-assign,assignment]
    cls.from_dict = staticmethod(stand_in_from_dict)  # type: ignore[method-assign]


def _plain(value: Any) -> Any:
    if isinstance(value, Schema):
        return value.to_dict()
    if type(value) is list:
        return [_plain(item) for item in value]
    if type(value) is dict:
        return {key: _plain(item) for key, item in value.items()}
    return value


class Event(Schema):
    """Base class of event schemas. Class keywords: ``frozen=True``, ``extra="properties"``."""

    if TYPE_CHECKING:
        # A stage receives the pipeline's event class, composed at run time from the plugins'
        # fields; to a type checker any field of it reads as Any. Nothing exists at run time.
        def __getattr__(self, name: str) -> Any: ...


class Settings(Schema):
    """Base class of a plugin's settings; validated from the ``[settings.<name>]`` config table."""


class DefaultEvent(Event):
    """The default event schema every pipeline starts from; plugins add fields to it."""

    event_id = String(min_length=1, max_length=256, description="Unique id of the event.")
    user_id = String(min_length=1, max_length=256, description="Who did it.")
    kind = String(min_length=1, max_length=64, description="What happened: purchase, click…")
    ts = Timestamp(description="When, in epoch milliseconds.")
    amount = Number(minimum=0, default=0, description="Money involved, ≥ 0.")
    currency = String(pattern="[A-Z]{3}", default="USD", description="ISO-4217 code.")
    tags = List(String(), default=list, description="Free-form labels.")
    properties = MappingField(default=dict, description="Any other JSON data.")


def compose(
    base: type[Event],
    contributions: Mapping[str, Mapping[str, Field[Any]]],
    *,
    name: str = "PipelineEvent",
) -> type[Event]:
    """The pipeline's event class: ``base`` plus the fields each plugin contributes.

    ``contributions`` maps a plugin name to the fields it returned from
    ``hookline_event_fields()``. A field declared differently by two plugins, or redeclaring
    a base field differently, is a :class:`SchemaError` naming both sides.
    """
    owners: dict[str, str] = {}
    added: dict[str, Field[Any]] = {}
    for plugin in sorted(contributions):
        for field_name, field in contributions[plugin].items():
            if not isinstance(field, Field):
                raise SchemaError(
                    f"plugin {plugin!r} declares field {field_name!r} as {field!r}, "
                    "which is not a hookline.fields field"
                )
            if field_name in base.__fields__ and not base.__fields__[field_name].same_as(field):
                raise SchemaError(
                    f"plugin {plugin!r} redeclares base field {field_name!r} as {field!r}; "
                    f"{base.__name__} declares it as {base.__fields__[field_name]!r}"
                )
            if field_name in added and not added[field_name].same_as(field):
                raise SchemaError(
                    f"field {field_name!r} is declared differently by plugin "
                    f"{owners[field_name]!r} ({added[field_name]!r}) and plugin {plugin!r} "
                    f"({field!r})"
                )
            owners.setdefault(field_name, plugin)
            added.setdefault(field_name, field)
    if not added:
        return base
    namespace: dict[str, Any] = {"__module__": base.__module__, **_copies(added)}
    namespace["__qualname__"] = name
    return type(name, (base,), namespace)


def _copies(fields: Mapping[str, Field[Any]]) -> dict[str, Field[Any]]:
    # A plugin may return the same Field object from several calls; each class binds its own.
    import copy

    return {name: copy.copy(field) for name, field in fields.items()}
