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
    "AlertFailed",
    "BehaviorError",
    "BrokenPlugins",
    "ConfigError",
    "DatabaseError",
    "Drop",
    "EventTampered",
    "ExecutorError",
    "FieldError",
    "FlagError",
    "FrozenInstanceError",
    "HooklineError",
    "InputError",
    "Interrupted",
    "PluginError",
    "RegistryError",
    "Reject",
    "RemoteError",
    "RunAborted",
    "ScaffoldError",
    "SchemaError",
    "SourceError",
    "StageFailed",
    "StageTimeout",
    "StateError",
    "UsageError",
    "ValidationError",
    "WorkerDied",
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


class BrokenPlugins(PluginError):
    """Selected plugins failed to load, so the run refuses to start (hookline fails closed).

    ``failed`` holds ``(label, error)`` for each: ``("fraud (hookline-fraud 1.0)",
    "ImportError: … (at …/fraud.py:3)")``. ``--allow-broken-plugins`` runs without them.
    """

    def __init__(self, failed: list[tuple[str, str]]) -> None:
        self.failed = failed
        listed = "\n".join(f"  {label}: " + error.replace("\n", "\n    ")
                           for label, error in failed)
        super().__init__(
            f"{len(failed)} selected plugin(s) failed to load, so nothing was run:\n{listed}\n"
            "Fix or reinstall the plugin, deselect it (HOOKLINE_DISABLE_PLUGINS=NAME), or run "
            "without it with --allow-broken-plugins")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.failed,))


class DatabaseError(HooklineError):
    """The database cannot be used (read-only, corrupt, not a database, no folder, refused
    connection): names the database (its URL with any password masked), what the database
    said, and what to do."""

    def __init__(self, path: str, problem: str, advice: str) -> None:
        self.path = path
        self.problem = problem
        self.advice = advice
        super().__init__(f"cannot use the database {path}: {problem}; {advice}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.problem, self.advice))


class UsageError(HooklineError, ValueError):
    """What the command line asks for cannot be had: a ``--db`` URL whose scheme no installed
    sink handles, or a sink whose driver is not installed, or an input URL whose scheme no
    installed source reads (the CLI exits 2, naming the fix)."""


class SourceError(HooklineError):
    """A plugin's input source failed: it could not be opened (``line`` is None), or it
    raised while reading, after line ``line``. Names the input, the plugin (distribution and
    version) and the error; what the run committed before stays committed."""

    def __init__(self, source: str, plugin: str, error: str, line: int | None) -> None:
        self.source = source
        self.plugin = plugin
        self.error = error
        self.line = line
        if line is None:
            where, then = "could not be opened", "nothing of it was read"
        else:
            where = f"failed after line {line:,}" if line else "failed before its first line"
            then = "what was read before is committed: fix the cause and run again to resume"
        super().__init__(f"input {source!r}: the source of plugin {plugin} {where}: {error}; "
                         f"{then}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.source, self.plugin, self.error, self.line))


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


class EventTampered(HooklineError, ValueError):
    """A stage left the event invalid behind the fields' backs (through ``__dict__``,
    ``object.__setattr__``, a list changed in place, an event of another class, or a changed
    ``event_id``): found by the boundary check before any sink sees the event."""

    def __init__(self, problem: str) -> None:
        self.reason = problem
        super().__init__(problem)


class Interrupted(KeyboardInterrupt):
    """A real SIGINT (Ctrl-C) to the process while stages ran: it stops the run.

    A ``KeyboardInterrupt`` that a stage raises itself is that stage's failure for its
    event; this one, raised by hookline's own SIGINT handler, is not, and goes on out.
    """


class _Overran(BaseException):
    """Raised in the running stage by the run's watchdog when a call passes the stage time
    limit: a ``BaseException`` so that a stage's ``except Exception`` does not swallow it.
    Private: the event's dead letter carries a :class:`StageTimeout`."""


class _Broken(BaseException):
    """Raised, while an event that failed the boundary check runs again to find its culprit,
    by the check after the stage that broke it. Private control flow of the pipeline."""

    def __init__(self, stage: str, problems: list[FieldError]) -> None:
        super().__init__(stage, problems)
        self.stage, self.problems = stage, problems


class RunAborted(HooklineError):
    """A stage whose error policy is ``fail-run`` raised: the run stops before this batch."""

    def __init__(self, stage: str, error: BaseException, line: int) -> None:
        self.stage, self.error, self.line = stage, error, line
        super().__init__(f"{stage} raised {type(error).__name__}: {error} (line {line}); its "
                         "error policy is fail-run, so the run stopped. Everything before "
                         "this batch is committed: fix the cause and run again to resume.")


class AlertFailed(HooklineError):
    """An alert fired in a run told to stop on alerts (hookline-monitoring's
    ``fail_on_alert``): the batch it fired on is committed, and a re-run resumes after it."""

    def __init__(self, alert: str, batch: int) -> None:
        self.alert, self.batch = alert, batch
        super().__init__(f"alert: {alert}; the run stopped after committing batch {batch} "
                         "(fail_on_alert): fix the cause, then run the same command again "
                         "to resume")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.alert, self.batch))


class ExecutorError(HooklineError, RuntimeError):
    """Workers could not start or failed outside any stage (named in the message)."""


class StateError(HooklineError, RuntimeError):
    """A stage wrote into a state that is not its own (a stage's state is private to it), or
    a state key or value that cannot be stored (keys are str, values JSON)."""


class RemoteError(HooklineError):
    """An exception raised in a worker, carried back by type name and message."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(kind, message)  # both in args: that is what pickling keeps
        self.kind = kind

    def __str__(self) -> str:
        return str(self.args[1])


class WorkerDied(HooklineError):
    """A process executor's worker died (``os._exit``, a signal, a crash) while a stage
    processed an event, twice: that event's failure, carried back as a :class:`RemoteError`
    and dead-lettered as a poison event (reason ``worker died``)."""


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
