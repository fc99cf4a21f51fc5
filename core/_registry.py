"""``Stage``, its registering metaclass, and ``Registry``, the object that records stages.

Defining a ``Stage`` subclass records it in the registry that is current in the defining
context (a :mod:`contextvars` default; ``with Registry().activate():`` gives a test its own).
Nothing is instantiated at definition time: the pipeline builds each stage with its plugin's
settings. Loading an entry point imports its module, which defines its stage classes, which
is how installed packages register themselves.
"""

from __future__ import annotations

import contextvars
from abc import ABCMeta
from collections.abc import Awaitable, Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from . import _schema as schema
from ._state import State
from .errors import RegistryError
from .hookspecs import PHASES

if TYPE_CHECKING:
    from ._schema import Event

__all__ = ["Registry", "Stage", "StageInfo", "StageMeta", "current_registry", "plugin_name"]


class StageInfo:
    """What a stage class declared with its class keywords."""

    __slots__ = ("after", "before", "cls", "flag", "name", "phase", "tryfirst", "trylast")

    def __init__(
        self,
        cls: type[Stage],
        phase: str,
        name: str,
        flag: str | None = None,
        before: tuple[str, ...] = (),
        after: tuple[str, ...] = (),
        tryfirst: bool = False,
        trylast: bool = False,
    ) -> None:
        self.cls = cls
        self.phase = phase
        self.name = name
        self.flag = flag
        self.before = before
        self.after = after
        self.tryfirst = tryfirst
        self.trylast = trylast

    def __repr__(self) -> str:
        return f"<stage {self.name!r} ({self.phase}) {self.where}>"

    @property
    def module(self) -> str:
        return self.cls.__module__

    @property
    def where(self) -> str:
        """``module.Class`` of the stage, for messages."""
        return f"{self.cls.__module__}.{self.cls.__qualname__}"


def _names(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


class Registry:
    """Records stage classes as they are defined. An object, so tests can have their own."""

    def __init__(self) -> None:
        self._stages: dict[tuple[str, str], StageInfo] = {}

    def record(self, info: StageInfo) -> None:
        """Record a stage; two different classes with one name in one package is an error."""
        key = (info.module.partition(".")[0], info.name)
        existing = self._stages.get(key)
        if existing is not None and existing.where != info.where:
            raise RegistryError(
                f"two stages are named {info.name!r} in package {key[0]!r}: "
                f"{existing.where} and {info.where}; give one of them another name="
            )
        self._stages[key] = info  # the same class defined again (a reload) replaces itself

    def stages_in(self, module: str) -> list[StageInfo]:
        """The stages defined in ``module`` or its submodules, sorted by name."""
        found = [
            info
            for info in self._stages.values()
            if info.module == module or info.module.startswith(module + ".")
        ]
        return sorted(found, key=lambda info: info.name)

    def stages_of(self, obj: Any) -> list[StageInfo]:
        """The stages an entry-point object contributes, sorted by name: a ``Stage`` class
        itself, or a module's stages (those recorded here, and those its attributes hold that
        were defined while another registry was current)."""
        if isinstance(obj, StageMeta):  # issubclass(obj, Stage) would scan every stage class
            return [obj.__stage__] if obj.__stage__ is not None else []
        if not isinstance(obj, ModuleType):
            return []
        found = {info.where: info for info in self.stages_in(obj.__name__)}
        for value in vars(obj).values():
            info = getattr(value, "__stage__", None) if isinstance(value, type) else None
            if isinstance(info, StageInfo) and value.__module__.startswith(obj.__name__):
                found.setdefault(info.where, info)
        return sorted(found.values(), key=lambda info: info.name)

    def forget(self, module: str) -> None:
        """Drop every stage defined in ``module`` or below (after a failed plugin import)."""
        for key, info in list(self._stages.items()):
            if info.module == module or info.module.startswith(module + "."):
                del self._stages[key]

    def __iter__(self) -> Iterator[StageInfo]:
        return iter(sorted(self._stages.values(), key=lambda info: (info.module, info.name)))

    def __len__(self) -> int:
        return len(self._stages)

    @contextmanager
    def activate(self) -> Iterator[Registry]:
        """Make this the registry that stage definitions in this context record into."""
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)


_default = Registry()
_current: contextvars.ContextVar[Registry] = contextvars.ContextVar(
    "hookline_registry", default=_default
)


def current_registry() -> Registry:
    """The registry that a stage defined now would be recorded in."""
    return _current.get()


class StageMeta(ABCMeta):
    """Records every concrete ``Stage`` subclass, with its class keywords, as it is defined.

    An ``ABCMeta``, so a stage base class may also derive from ``abc.ABC``: a class that
    still has abstract methods is a base class, like one declared ``abstract=True``, and is
    not recorded (instantiating it raises ``TypeError``, as for any ABC).
    """

    #: What the class declared; None for a base class.
    __stage__: StageInfo | None

    def __new__(
        mcls,
        clsname: str,
        bases: tuple[type, ...],
        namespace: dict[str, Any],
        *,
        phase: str | None = None,
        name: str | None = None,
        abstract: bool = False,
        flag: str | None = None,
        before: str | tuple[str, ...] | list[str] | None = None,
        after: str | tuple[str, ...] | list[str] | None = None,
        tryfirst: bool = False,
        trylast: bool = False,
        **kwargs: Any,
    ) -> StageMeta:
        cls = super().__new__(mcls, clsname, bases, namespace, **kwargs)
        if abstract or cls.__abstractmethods__:
            cls.__stage__ = None
            return cls
        where = f"{cls.__module__}.{cls.__qualname__}"
        inherited: StageInfo | None = next(
            (getattr(base, "__stage__", None) for base in cls.__mro__[1:]
             if getattr(base, "__stage__", None) is not None),
            None,
        )
        phase = phase or (inherited.phase if inherited else None)
        if phase not in PHASES:
            raise RegistryError(
                f"{where}: phase={phase!r} is not a phase; use one of {', '.join(PHASES)}"
                + ("" if phase else " (or abstract=True for a base class)")
            )
        if tryfirst and trylast:
            raise RegistryError(f"{where}: tryfirst and trylast exclude each other")
        stage_name = name or clsname.lower()
        if not stage_name.replace("_", "").replace("-", "").isalnum():
            raise RegistryError(f"{where}: name={stage_name!r} must be letters, digits, _ or -")
        settings = namespace.get("Settings")
        if settings is not None and not (
            isinstance(settings, type) and issubclass(settings, schema.Settings)
        ):
            raise RegistryError(f"{where}: Settings must subclass hookline.Settings")
        info = StageInfo(
            cls=cls,  # type: ignore[arg-type]
            phase=phase,
            name=stage_name,
            flag=flag,
            before=_names(before),
            after=_names(after),
            tryfirst=tryfirst,
            trylast=trylast,
        )
        cls.__stage__ = info
        current_registry().record(info)
        return cls


class Stage(metaclass=StageMeta, abstract=True):
    """Base class of pipeline stages. Declare the phase as a class keyword::

        class Velocity(hookline.Stage, phase="validate", name="velocity"):
            def process(self, event): ...

    ``process`` may assign fields (validated), return None or a replacement event, raise
    ``hookline.Reject(reason)`` or ``hookline.Drop()``. A nested ``Settings`` class (a
    ``hookline.Settings``) validates the plugin's ``[settings.<name>]`` configuration.
    """

    __stage__: ClassVar[StageInfo | None]
    Settings: ClassVar[type[schema.Settings] | None] = None

    def __init__(self, settings: Mapping[str, Any] | schema.Settings | None = None) -> None:
        declared = type(self).Settings
        if isinstance(settings, schema.Settings):
            settings = settings.to_dict()
        values = dict(settings or {})
        self.settings: Any = values if declared is None else declared.from_dict(values)
        #: str keys to JSON values, kept between events and committed with each batch by the
        #: runner (changes in place included); private to this stage once a run starts:
        #: another stage's writes are refused (see :mod:`hookline._state`).
        self.state = State()

    def process(self, event: Event) -> Event | Awaitable[Event | None] | None:
        """Handle one event (see the class docstring); the default does nothing. An
        ``async def process`` is awaited (hence the ``Awaitable`` a type checker accepts)."""
        return None


def plugin_name(obj: Any) -> str:
    """The name a plugin object gets when none is given: a module's last part without the
    ``hookline_`` prefix (``hookline_fraud`` → ``fraud``), a stage class's top-level package
    likewise, another object's class name in lower case."""
    if isinstance(obj, ModuleType):
        return obj.__name__.rpartition(".")[2].removeprefix("hookline_")
    if isinstance(obj, StageMeta):
        return obj.__module__.partition(".")[0].removeprefix("hookline_")
    return type(obj).__name__.lower()
