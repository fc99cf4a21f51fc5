"""hookline: an extensible analytics event engine.

Public names are re-exported here; implementation modules are private unless documented
(``fields``, ``hookspecs``, ``flags``…). ``import hookline`` loads no plugin and reads no
package metadata: discovery happens only when a pipeline is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import fields
from ._registry import Registry, Stage
from ._schema import DefaultEvent, Event, Settings
from ._version import API_VERSION, __version__
from .errors import Drop, FieldError, HooklineError, Reject, StageFailed, ValidationError
from .hookspecs import hookimpl, hookspec

if TYPE_CHECKING:
    from . import flags
    from ._pipeline import Pipeline
    from ._report import Report

__all__ = [
    "API_VERSION",
    "DefaultEvent",
    "Drop",
    "Event",
    "FieldError",
    "HooklineError",
    "Pipeline",
    "Registry",
    "Reject",
    "Report",
    "Settings",
    "Stage",
    "StageFailed",
    "ValidationError",
    "__version__",
    "fields",
    "flags",
    "hookimpl",
    "hookspec",
    "run",
]


def run(inputs: Any, **options: Any) -> Report:
    """Run JSONL ``inputs`` into a database; see :func:`hookline._runner.run`."""
    from ._runner import run as _run

    return _run(inputs, **options)


_LAZY = {"Pipeline": "_pipeline", "Report": "_report"}
_LAZY_MODULES = ("behaviors", "contracts", "flags", "metrics", "sources")


def __getattr__(name: str) -> Any:
    # The runner's modules (sqlite3, the sinks) load on first use, keeping `import hookline` cheap.
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'hookline' has no attribute {name!r}")
