"""Where accepted events, dead letters and aggregates are written."""

from __future__ import annotations

from .sqlite import DeadLetter, SQLiteSink

__all__ = ["DeadLetter", "SQLiteSink"]
