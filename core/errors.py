"""Every exception hookline raises, and the two control-flow signals.

hookline's errors derive from :class:`HooklineError`, so one ``except hookline.HooklineError``
catches them all; each also keeps the built-in base a caller may already catch
(``ValidationError`` is a ``ValueError``, ``StageTimeout`` a ``TimeoutError``).

``Reject`` and ``Drop`` are not errors: they derive from :class:`BaseException`, not
:class:`Exception`, so that generic ``except Exception`` code (retry loops, error handlers in
plugins) can never swallow them by accident: they are decisions about an event, not failures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "BehaviorError",
    "ConfigError",
    "Drop",
    "ExecutorError",
    "FieldError",
    "FlagError",
    "FrozenInstanceError",
    "HooklineError",
    "InputError",
    "PluginError",
    "RegistryError",
    "Reject",
    "RemoteError",
    "RunAborted",
    "ScaffoldError",
    "SchemaError",
    "StageFailed",
    "StageTimeout",
    "ValidationError",
]

_VALUE_REPR_LIMIT = 80


def short_repr(value: Any, limit: int = _VALUE_REPR_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters so a huge bad value never floods a log."""
    text = repr(value)
    if len(text) > limit:
        text = f"{text[: limit - 12]}…({len(text)} chars)"
    return text


class HooklineError(Exception):
    """The base of every error hookline raises (not of the signals ``Reject`` and ``Drop``)."""


class FieldError:
    """One bad field: where it is (``tags[2]``, ``address.city``), what is wrong, and the value."""

    __slots__ = ("message", "path", "value")

    def __init__(self, path: str, message: str, value: Any) -> None:
        self.path = path
        self.message = message
        self.value = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldError):
            return NotImplemented
        return (self.path, self.message, self.value) == (other.path, other.message, other.value)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FieldError({self.path!r}, {self.message!r}, {short_repr(self.value)})"

    def __str__(self) -> str:
        return f"{self.path}: {self.message} (got {short_repr(self.value)})"


class ValidationError(HooklineError, ValueError):
    """Data does not fit its schema. Lists every bad field at once.

    ``errors`` holds one :class:`FieldError` per problem; ``line`` and ``source`` are set by
    the runner when the data came from an input file.
    """

    #: Set by the runner (see :meth:`at`) when the data came from an input line.
    line: int | None = None
    source: str | None = None

    # No __init__: ``ValidationError(errors, schema)`` keeps both in ``args`` (C code, no
    # instance dict), and the invalid-event path is measured in the schema benchmark.
    if TYPE_CHECKING:

        def __init__(self, errors: list[FieldError], schema: str | None = None) -> None: ...

    @property
    def errors(self) -> list[FieldError]:
        """One :class:`FieldError` per problem."""
        errors: list[FieldError] = self.args[0] if self.args else []
        return errors

    @property
    def schema(self) -> str | None:
        """The name of the schema the data was checked against."""
        return self.args[1] if len(self.args) > 1 else None

    def at(self, *, line: int | None, source: str | None) -> ValidationError:
        """Return the same error, located at an input line."""
        located = ValidationError(self.errors, self.schema)
        located.line, located.source = line, source
        return located

    @property
    def fields(self) -> list[str]:
        """The paths of the bad fields, in schema order."""
        return [error.path for error in self.errors]

    def __str__(self) -> str:
        where = ""
        if self.line is not None:
            where = f"{self.source or 'input'}, line {self.line}: "
        what = f"invalid {self.schema}" if self.schema else "invalid data"
        count = len(self.errors)
        noun = "field" if count == 1 else "fields"
        details = "; ".join(str(error) for error in self.errors)
        return f"{where}{what}, {count} bad {noun}: {details}"


class SchemaError(HooklineError, TypeError):
    """A schema or field declaration is wrong (a programming error, raised at class creation)."""


class FrozenInstanceError(HooklineError, AttributeError):
    """Assignment to a field of a ``frozen=True`` schema."""


class InputError(HooklineError, ValueError):
    """An input line cannot become an event before validation (bad JSON, over a limit)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class PluginError(HooklineError):
    """A plugin could not be loaded or used; names the plugin, distribution and version."""


class StageFailed(HooklineError):
    """A stage raised an exception while processing an event (the event is dead-lettered).

    ``stage`` is the qualified stage or plugin name, ``error`` the original exception.
    """

    def __init__(self, stage: str, error: BaseException) -> None:
        self.stage = stage
        self.error = error
        super().__init__(f"{stage} raised {type(error).__name__}: {error}")


class RegistryError(HooklineError, TypeError):
    """A stage declaration is wrong or clashes with another (raised at class definition)."""


class ConfigError(HooklineError, ValueError):
    """The configuration file or environment holds something hookline cannot use."""


class FlagError(HooklineError, ValueError):
    """An unknown flag name, or a value that is not on/off/a share between 0 and 1."""


class BehaviorError(HooklineError, ValueError):
    """A behaviour spec or argument is wrong.

    The message names the behaviour, the argument and the value (``retry: attempts=0 is
    invalid (must be an integer >= 1)``); ``behavior`` and ``argument`` hold the first two.
    """

    def __init__(self, message: str, behavior: str | None = None,
                 argument: str | None = None) -> None:
        super().__init__(message)
        self.behavior = behavior
        self.argument = argument

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.behavior, self.argument))


class StageTimeout(HooklineError, TimeoutError):
    """A call wrapped by ``timeout`` ran past its deadline and was abandoned.

    An ``Exception`` (a ``TimeoutError``), so ``retry`` may retry it and the pipeline
    dead-letters it. ``reason`` is the message, ``timeout after 0.05 s``; ``stage`` the name
    of the wrapped stage.
    """

    def __init__(self, seconds: float, stage: str | None = None) -> None:
        self.seconds = seconds
        self.stage = stage
        self.reason = f"timeout after {seconds:g} s"
        super().__init__(self.reason)

    def __str__(self) -> str:
        return self.reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.seconds, self.stage))


class RunAborted(HooklineError):
    """A stage whose error policy is ``fail-run`` raised: the run stops before this batch."""

    def __init__(self, stage: str, error: BaseException, line: int) -> None:
        self.stage, self.error, self.line = stage, error, line
        super().__init__(f"{stage} raised {type(error).__name__}: {error} (line {line}); its "
                         "error policy is fail-run, so the run stopped. Everything before "
                         "this batch is committed: fix the cause and run again to resume.")


class ExecutorError(HooklineError, RuntimeError):
    """Workers could not start or failed outside any stage (named in the message)."""


class RemoteError(HooklineError):
    """An exception raised in a worker, carried back by type name and message."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(kind, message)  # both in args: that is what pickling keeps
        self.kind = kind

    def __str__(self) -> str:
        return str(self.args[1])


class ScaffoldError(HooklineError, ValueError):
    """The plugin name is not usable, or the target folder exists already."""


class Reject(BaseException):
    """Raised by a stage to send the event to the dead letters with ``reason``."""

    #: The stage that raised it, filled in by the pipeline.
    stage: str | None = None

    def __init__(self, reason: str = "rejected") -> None:
        self.reason = reason
        super().__init__(reason)


class Drop(BaseException):
    """Raised by a stage to filter the event out on purpose (counted as dropped, not lost)."""

    #: The stage that raised it, filled in by the pipeline.
    stage: str | None = None

    def __init__(self, reason: str = "dropped") -> None:
        self.reason = reason
        super().__init__(reason)
