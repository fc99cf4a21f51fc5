"""Input limits: one JSON line becomes Python data, or an :class:`InputError` with a reason.

Limits protect the engine from hostile or broken input: a line over 1 MiB, nesting deeper
than 64 levels, or a number with more than 100 digits is refused in microseconds, before the
JSON parser can spend seconds or blow the stack on it. The common line pays only a length
check, two ``bytes.count`` calls and one regular-expression scan, all in C.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import InputError

__all__ = ["MAX_DEPTH", "MAX_LINE_BYTES", "MAX_NUMBER_DIGITS", "parse_json"]

MAX_LINE_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NUMBER_DIGITS = 100

# Every digit becomes "0"; a run of 101 zeros is then a plain substring search (both in C,
# ~8x faster than a regular expression scanning for 101 digits on a typical line).
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789.eE+-", b"0" * 14)  # a number's bytes
_TOO_MANY_DIGITS = b"0" * (MAX_NUMBER_DIGITS + 1)
_decoder = json.JSONDecoder()
_decode, _scan = _decoder.decode, _decoder.scan_once  # type: ignore[attr-defined]


def _depth(line: bytes) -> int:
    """Deepest nesting of arrays/objects, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in line:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _checked_number(text: str) -> Any:
    digits = sum(ch.isdigit() for ch in text)
    if digits > MAX_NUMBER_DIGITS:
        raise InputError(f"number with {digits} digits (limit {MAX_NUMBER_DIGITS})")
    return float(text) if any(ch in text for ch in ".eE") else int(text)


def _parsed(text: str) -> Any:
    """``json.loads(text)``, by the C scanner straight away when the text is one document
    with nothing around it (the common line); otherwise by the decoder, which allows
    surrounding whitespace and words any error."""
    try:
        value, end = _scan(text, 0)
    except (StopIteration, json.JSONDecodeError):
        end = -1
    return value if end == len(text) else _decode(text)


def parse_json(line: str | bytes) -> Any:
    """Parse one JSON document within the input limits; raise InputError naming the problem."""
    raw = line.encode() if isinstance(line, str) else line
    if len(raw) > MAX_LINE_BYTES:
        raise InputError(f"line of {len(raw):,} bytes exceeds the limit of {MAX_LINE_BYTES:,}")
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _depth(raw) > MAX_DEPTH:
        raise InputError(f"nesting deeper than {MAX_DEPTH} levels")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        if _TOO_MANY_DIGITS in raw.translate(_DIGITS_TO_ZERO):
            # Rare: maybe a huge number, maybe a long digit string; parse number by number.
            return json.loads(text, parse_int=_checked_number, parse_float=_checked_number)
        return _parsed(text)
    except json.JSONDecodeError as exc:
        msg = exc.msg.removesuffix(" at")  # "Unterminated string starting at"
        raise InputError(f"malformed JSON: {msg} at column {exc.colno}") from None
    except RecursionError:
        raise InputError(f"nesting deeper than {MAX_DEPTH} levels") from None
