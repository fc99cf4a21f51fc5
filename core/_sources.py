"""Input sources: JSONL from files, globs, ``.gz`` files or ``-`` (stdin), read in batches.

Each source reads bytes line by line and knows the byte offset after every batch, so a run
can commit "everything up to here" and a re-run can resume exactly there. A file is
identified by its real path, device and inode: appending to it keeps its identity (a resumed
run reads only the new lines); replacing it makes a new source.
"""

from __future__ import annotations

import glob
import gzip
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["Batch", "Source", "expand_inputs"]


@dataclass
class Batch:
    """Consecutive lines of one source: ``(line number, raw bytes)`` pairs and where it ends."""

    source: Source
    lines: list[tuple[int, bytes]]
    end_offset: int
    end_line: int


class Source:
    """One input: a path (plain or gzip) or stdin."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.is_stdin = name == "-"
        if self.is_stdin:
            self.key = "-"
            self.size: int | None = None
        else:
            st = os.stat(name)
            self.key = f"{os.path.realpath(name)}|{st.st_dev}|{st.st_ino}"
            self.size = st.st_size
        self.resumable = not self.is_stdin

    @classmethod
    def named(cls, name: str) -> Source:
        """A source that is only a name (lines replayed from the database), not resumable."""
        source = cls.__new__(cls)
        source.name, source.key, source.size = name, name, None
        source.is_stdin, source.resumable = False, False
        return source

    def _open(self) -> BinaryIO:
        if self.is_stdin:
            return sys.stdin.buffer
        handle = open(self.name, "rb")  # noqa: SIM115 - closed by batches()
        if handle.peek(2)[:2] == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[return-value]
        return handle

    def batches(self, size: int, *, offset: int = 0, line: int = 0) -> Iterator[Batch]:
        """Batches of up to ``size`` non-blank lines, starting after ``offset``/``line``.

        A last line without a newline is still read (it may be truncated: validation
        decides). Blank lines are skipped but counted in line numbers.
        """
        handle = self._open()
        try:
            if offset:
                _skip(handle, offset)
            position, number = offset, line
            lines: list[tuple[int, bytes]] = []
            for raw in handle:
                position += len(raw)
                number += 1
                if raw.strip():
                    lines.append((number, raw.rstrip(b"\r\n")))
                    if len(lines) >= size:
                        yield Batch(self, lines, position, number)
                        lines = []
            if lines or number > line:
                yield Batch(self, lines, position, number)
        finally:
            if not self.is_stdin:
                handle.close()


def _skip(handle: BinaryIO, offset: int) -> None:
    if handle.seekable() and not isinstance(handle, gzip.GzipFile):
        handle.seek(offset)
        return
    remaining = offset
    while remaining:
        chunk = handle.read(min(remaining, 1 << 20))
        if not chunk:
            break
        remaining -= len(chunk)


def expand_inputs(inputs: Iterable[str]) -> list[Source]:
    """Sources for the given paths, glob patterns and ``-``; a pattern matching nothing or a
    missing file is an error naming it."""
    sources: list[Source] = []
    for item in inputs:
        if item == "-":
            sources.append(Source("-"))
            continue
        matches = sorted(glob.glob(item)) if glob.has_magic(item) else [item]
        if not matches:
            raise FileNotFoundError(f"no input matches {item!r}")
        for path in matches:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"input {path!r} does not exist or is not a file")
            sources.append(Source(path))
    return sources
