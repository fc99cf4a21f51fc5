"""The JSONL sink: accepted events as JSON lines, a second output beside SQLite.

Exactly once, like the SQLite sink: each batch is appended and flushed *before* the SQLite
transaction that commits it, and that transaction records the file's committed length.
When a run starts, the file is cut back to that length, so a batch written by a run that
died before its commit is removed and written again by the resumed run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

__all__ = ["JSONLSink"]


class JSONLSink:
    """Appends accepted events to ``path``, one compact JSON object per line."""

    def __init__(self, path: str, committed: int) -> None:
        self.path = path
        self.key = self.key_of(path)
        self.handle = open(path, "ab")  # noqa: SIM115 - closed by close()
        self.handle.truncate(committed)
        self.handle.seek(committed)

    @staticmethod
    def key_of(path: str) -> str:
        """The checkpoint key under which the committed length of ``path`` is kept."""
        return f"jsonl:{os.path.realpath(path)}"

    def write(self, lines: Iterable[str]) -> int:
        """Append ``lines`` (one JSON object each, as ``Rows.json_line`` makes them) and
        flush; return the file length to commit."""
        data = "".join(line + "\n" for line in lines).encode()
        if data:
            self.handle.write(data)
            self.handle.flush()
        return self.handle.tell()

    def close(self) -> None:
        self.handle.close()
