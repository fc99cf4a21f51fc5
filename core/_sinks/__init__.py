"""Where accepted events, dead letters and aggregates are written."""

from __future__ import annotations

from .jsonl import JSONLSink
from .sqlite import DeadLetter, SQLiteSink

__all__ = ["DeadLetter", "JSONLSink", "SQLiteSink"]
