"""A source plugin: CSV files with a header row, one event per row, resumable."""

import csv
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

import hookline
from hookline.sources import LineSource, Source, file_key

#: Columns that are numbers in the event schema. A cell that is not a number stays text,
#: so validation dead-letters its row, naming the field and the value.
NUMBERS = {"ts": int, "amount": float}


class CsvSource(LineSource):
    """A CSV file; a position is the byte offset just after a row."""

    def __init__(self, path: str) -> None:
        super().__init__(path, key=file_key(path), size=os.path.getsize(path))

    def lines(self, offset: int, line: int) -> Iterator[tuple[int, bytes, int]]:
        with open(self.name, "rb") as handle:
            header = handle.readline()  # line 1: the column names
            columns = next(csv.reader([header.decode("utf-8-sig")]))
            if offset == 0:
                offset, line = len(header), 1
            handle.seek(offset)
            read = [offset]  # bytes read so far, as the csv module pulls lines
            rows = csv.reader(_counted(handle, read))
            for cells in rows:
                if cells:  # a blank line is no row
                    event = _event(columns, cells)
                    yield line + rows.line_num, json.dumps(event).encode(), read[0]


def _counted(handle: Iterable[bytes], read: list[int]) -> Iterator[str]:
    """The lines of ``handle`` as text, adding each one's length in bytes to ``read[0]``:
    after a row, ``read[0]`` is the position just after it (a quoted cell may hold line
    breaks, so a row may take several lines)."""
    for raw in handle:
        read[0] += len(raw)
        yield raw.decode("utf-8")


def _event(columns: list[str], cells: list[str]) -> dict[str, Any]:
    """One row as an event: empty cells left out (the field's default applies), extra
    cells kept as "column N" (not a field: validation names them)."""
    names = columns + [f"column {n}" for n in range(len(columns) + 1, len(cells) + 1)]
    event: dict[str, Any] = {}
    for name, cell in zip(names, cells):
        if cell == "":
            continue
        try:
            event[name] = NUMBERS[name](cell) if name in NUMBERS else cell
        except ValueError:
            event[name] = cell
    return event


@hookline.hookimpl
def hookline_sources() -> dict[str, type[Source]]:
    return {".csv": CsvSource}
