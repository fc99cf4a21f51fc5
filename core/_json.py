"""JSON text as hookline writes it, each form made by one C encoder kept for the process.

``json.dumps(value)`` builds the C encoder again on every call, which costs more than
encoding a short list: the rows' lists and mappings and the stage state's values are written
once per event or per key, so they go through :func:`encoder`'s functions instead. The text
is the same as ``json.dumps`` gives with the same options.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["encoder"]


def encoder(*, separators: tuple[str, str] = (", ", ": "), ensure_ascii: bool = True,
            default: Callable[[Any], Any] | None = None) -> Callable[[Any], str]:
    """A function giving what ``json.dumps(value, separators=…, ensure_ascii=…,
    default=…)`` gives, and raising what it raises (a circular reference too)."""
    reference = json.JSONEncoder(separators=separators, ensure_ascii=ensure_ascii,
                                 default=default)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator (another Python implementation)
        return reference.encode
    markers: dict[int, Any] = {}  # the containers being encoded: a cycle is refused
    encode = make(markers, reference.default,
                  json.encoder.encode_basestring_ascii if ensure_ascii
                  else json.encoder.encode_basestring,
                  None, separators[1], separators[0], False, False, True)
    join = "".join

    def dumps(value: Any) -> str:
        if value.__class__ is not list and value.__class__ is not dict:
            return reference.encode(value)  # a scalar: the one-shot path
        try:
            return join(encode(value, 0))
        except BaseException:
            markers.clear()  # what the failed call left: it would refuse those ids again
            raise

    return dumps
