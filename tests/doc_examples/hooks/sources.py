"""Offer an input source by URL scheme (reserved: hookline does not call this hook yet)."""

from collections.abc import Iterator
from typing import Any

import hookline


def read_memory(url: str) -> Iterator[bytes]:
    yield b'{"event_id": "m1", "user_id": "u1", "kind": "view", "ts": 1767225600000}'


@hookline.hookimpl
def hookline_sources() -> dict[str, Any]:
    return {"memory": read_memory}
