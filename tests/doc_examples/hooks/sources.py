"""Offer a source for a URL scheme: ``memory://NAME`` reads the events put in ``EVENTS[NAME]``."""

import json
from collections.abc import Iterator
from typing import Any

import hookline
from hookline.sources import LineSource, Source

EVENTS: dict[str, list[dict[str, Any]]] = {}


class MemorySource(LineSource):
    """A list of events; a position is the index of the next one."""

    def __init__(self, url: str) -> None:
        self.events = EVENTS[url[len("memory://"):]]
        super().__init__(url, size=len(self.events))

    def lines(self, offset: int, line: int) -> Iterator[tuple[int, bytes, int]]:
        for index in range(offset, len(self.events)):
            yield index + 1, json.dumps(self.events[index]).encode(), index + 1


@hookline.hookimpl
def hookline_sources() -> dict[str, type[Source]]:
    return {"memory": MemorySource}
