"""Where log records go when hookline runs as a command: stderr, as text or JSON lines.

Importing hookline configures nothing (a library leaves logging to its application); the
``hookline`` command is an application, so it sends records to stderr (the report goes to
stdout) at the level ``-v``/``-q``/``--log-level`` choose: INFO by default, so that what a
configuration asks for at INFO (``logged(level='INFO')``, ``--trace-hooks``) prints. The
``hookline.*`` loggers get that level; other libraries' loggers WARNING, or the level when it
is higher. Worker processes are configured the same way (:func:`current`).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

__all__ = ["FORMATS", "LEVELS", "configure", "current", "level_of"]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
_TEXT = "%(levelname)s %(name)s: %(message)s"

#: The attributes every record has: the others are a record's ``extra`` fields.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}

_settings: tuple[int, str] | None = None


def level_of(verbose: int = 0, quiet: int = 0, level: str | None = None) -> int:
    """The level ``-v`` (each one step down from INFO), ``-q`` (each one up) or an explicit
    ``--log-level`` (which wins) ask for."""
    if level is not None:
        return int(logging.getLevelName(level.upper()))
    return max(logging.DEBUG, min(logging.CRITICAL, logging.INFO + 10 * (quiet - verbose)))


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes, not what it was when the
    handler was made (a test's captured stream, a redirected one)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, process id, and the record's
    extra fields (``run_id``, ``stage``, ``duration_ms``…) as keys of their own."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # which worker process, under --executor process
        }
        data.update((key, value) for key, value in vars(record).items()
                    if key not in _STANDARD and not key.startswith("_"))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def configure(level: int, fmt: str = "text") -> Callable[[], None]:
    """Send records to stderr at ``level`` in ``fmt`` (``text`` or ``json``); returns the
    function that puts logging back as it was (the command calls it when it ends, so that a
    test calling ``main()`` leaves nothing behind). Calling it again replaces, never adds."""
    global _settings
    root, ours = logging.getLogger(), logging.getLogger("hookline")
    trace = logging.getLogger("hookline.trace")  # (a tracer may raise its level: see _trace)
    saved = (list(root.handlers), root.level, ours.level, trace.level, _settings)
    for handler in [h for h in root.handlers if isinstance(h, _Stderr)]:
        root.removeHandler(handler)  # a forked worker's copy of its parent's
    handler = _Stderr()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT))
    root.addHandler(handler)
    root.setLevel(max(level, logging.WARNING))
    ours.setLevel(level)
    _settings = (level, fmt)

    def restore() -> None:
        global _settings
        handlers, root_level, our_level, trace_level, _settings = saved
        root.removeHandler(handler)
        for kept in handlers:
            if kept not in root.handlers:
                root.addHandler(kept)
        root.setLevel(root_level)
        ours.setLevel(our_level)
        trace.setLevel(trace_level)

    return restore


def current() -> tuple[int, str] | None:
    """The level and format :func:`configure` set in this process (None: it was not called),
    for a worker process to configure itself the same way."""
    return _settings
