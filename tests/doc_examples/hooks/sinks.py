"""Offer an output sink by name (reserved: hookline does not call this hook yet)."""

from typing import Any

import hookline


class ListSink:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []


@hookline.hookimpl
def hookline_sinks() -> dict[str, Any]:
    return {"list": ListSink}
