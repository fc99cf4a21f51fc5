"""The source interface: what an input must do to be read by a run, and resumed.

A run reads each input through one source. Paths, glob patterns, ``.gz`` files and ``-``
(stdin) are hookline's own source of JSON lines; a plugin adds others through the
``hookline_sources`` hook, keyed by URL scheme (``{"kafka": KafkaSource}`` reads
``kafka://…``) or by file suffix (``{".csv": CsvSource}`` reads ``*.csv`` files).

What a source hands over is **lines of JSON text** (``bytes``, one event each), whatever it
reads: a CSV source turns each row into one JSON object. Parsing, validation, dead letters
(with their ``parse`` and ``schema`` reasons and line numbers), duplicate refusal and the
stages are then the same for every input.

A source reads from a **position**, an ``int`` that only the source interprets (a byte
offset in a file, an offset in a partition of a log), and says, for every line, the position
just after it. The run commits each batch of lines together with the position after the
batch (the checkpoint, stored under the source's :attr:`~Source.key`); the next run of the
same input asks the source for the lines after that position. So a source that reads the
same lines again from the same position gets exactly-once delivery from hookline: a run
killed at any moment resumes after its last commit, and nothing is inserted twice.

Subclass :class:`LineSource` and write :meth:`LineSource.lines` (one line at a time, hookline
makes the batches), or :class:`Source` and write :meth:`Source.batches` (whole batches, for a
source that reads in bulk). Either way a source is constructed with the input as given,
``CsvSource("events.csv")``, once per input of a run (and once in each worker process of
``--executor process``, which reads the input itself).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Batch", "LineSource", "Source", "file_key"]


@dataclass
class Batch:
    """Consecutive lines of one source, and where they end.

    ``lines`` holds ``(line number, JSON text)`` pairs in input order; ``end_offset`` is the
    position just after the last of them (the checkpoint a commit of this batch stores) and
    ``end_line`` its line number. A batch may hold no lines and still move the position on
    (lines that were all blank, say).
    """

    source: Source
    lines: list[tuple[int, bytes]]
    end_offset: int
    end_line: int


class Source(ABC):
    """One input of a run.

    ``name`` is the input as given (the path or URL): the report lists it, each dead letter
    records it, and a worker process opens the same source from it. Put credentials in the
    environment, not in the URL: the name is stored.

    ``key`` identifies the input in the checkpoints: the same key in a later run means "the
    same input, resume where the last commit ended". Make it stable across runs, and
    different for a different input (:func:`file_key` for a file: appending to a file keeps
    its key, replacing it makes a new one). It defaults to ``name``.

    ``size`` is the input's size in the unit of the positions, when known: the progress
    display shows ``position / size``. ``None`` when unknown.
    """

    #: Whether the run keeps a checkpoint for this input. A source that cannot read from a
    #: position again (stdin) is not resumable: it is read from its start, no checkpoint
    #: stored, and ``--executor process`` refuses it (each worker reads the input itself).
    resumable: bool = True

    def __init__(self, name: str, *, key: str | None = None, size: int | None = None) -> None:
        self.name = name
        self.key = name if key is None else key
        self.size = size

    @abstractmethod
    def batches(self, batch_size: int, *, offset: int = 0, line: int = 0) -> Iterator[Batch]:
        """The batches after position ``offset``, whose line numbers continue after ``line``.

        ``(0, 0)`` is the start of the input; any other ``(offset, line)`` is the
        ``end_offset``/``end_line`` of a batch this source yielded before, in this run or an
        earlier one. A batch holds at most ``batch_size`` lines. The iterator ends when the
        input does (a file) or when there is nothing more to read for now (a log).

        An exception raised here stops the run, reported with the plugin's name; the batches
        yielded before it are committed, and the next run resumes after them.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class LineSource(Source):
    """A source written one line at a time: write :meth:`lines`, hookline makes batches."""

    @abstractmethod
    def lines(self, offset: int, line: int) -> Iterator[tuple[int, bytes, int]]:
        """``(line number, JSON text, position after it)`` for each line after ``offset``.

        ``offset`` and ``line`` are as in :meth:`Source.batches`. Number the lines from
        ``line + 1`` on, in increasing order; skipped numbers are fine (a CSV header is line 1
        and its first row line 2). The text is ``bytes``: one JSON object, UTF-8, no line
        ending. The position is what :meth:`lines` must accept as ``offset`` to go on with
        the next line.
        """

    def batches(self, batch_size: int, *, offset: int = 0, line: int = 0) -> Iterator[Batch]:
        """:meth:`lines` in batches of ``batch_size``. When :meth:`lines` raises, the lines
        it gave before are yielded as one last batch first, so they are committed."""
        lines: list[tuple[int, bytes]] = []
        end_offset, end_line = offset, line
        try:
            for number, text, end in self.lines(offset, line):
                if type(text) is not bytes:
                    raise TypeError(f"{type(self).__name__}.lines() gave "
                                    f"{type(text).__name__} for line {number}: each line is "
                                    "bytes, UTF-8 JSON text (text.encode())")
                lines.append((number, text))
                end_offset, end_line = end, number
                if len(lines) >= batch_size:
                    yield Batch(self, lines, end_offset, end_line)
                    lines = []
        except Exception:
            if lines:
                yield Batch(self, lines, end_offset, end_line)
            raise
        if lines:
            yield Batch(self, lines, end_offset, end_line)


def file_key(path: str | os.PathLike[str]) -> str:
    """The checkpoint key of a file: its real path, device and inode. Appending to the file
    keeps the key (a resumed run reads only what was added); replacing it (a new file under
    the same name) makes a new key, read from its start."""
    status = os.stat(path)
    return f"{os.path.realpath(path)}|{status.st_dev}|{status.st_ino}"
