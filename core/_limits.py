"""Input limits: one JSON line becomes Python data, or an :class:`InputError` with a reason.

Limits protect the engine from hostile or broken input: a line over 1 MiB, nesting deeper
than 64 levels, or a number with more than 100 digits is refused in microseconds, before the
JSON parser can spend seconds or blow the stack on it. What JSON does not allow is refused
too, though Python's parser takes it: ``NaN`` and ``Infinity``, and an object that repeats a
key (Python keeps the last value silently). The common line pays only a length check, a few
``bytes.count`` calls and substring searches, all in C; a line that a cheap test cannot clear
is parsed again the careful way.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import InputError

__all__ = ["KEPT_BYTES", "MAX_DEPTH", "MAX_LINE_BYTES", "MAX_NUMBER_DIGITS", "CutLine",
           "parse_json"]

MAX_LINE_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NUMBER_DIGITS = 100
#: How much of a line over the limit is kept (in its dead letter).
KEPT_BYTES = 1024

# Every digit becomes "0"; a run of 101 zeros is then a plain substring search (both in C,
# ~8x faster than a regular expression scanning for 101 digits on a typical line). Each "{"
# becomes "[", so that one count gives the brackets that nesting needs.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789.eE+-{", b"0" * 14 + b"[")  # a number's bytes
_TOO_MANY_DIGITS = b"0" * (MAX_NUMBER_DIGITS + 1)


class CutLine(bytes):
    """A line the source could not hand over whole (over the size limit, or cut short by a
    corrupt file): its first bytes, and ``reason``, with which :func:`parse_json` refuses it."""

    reason: str

    def __new__(cls, head: bytes, reason: str) -> CutLine:
        line = super().__new__(cls, head)
        line.reason = reason
        return line

    def __reduce__(self) -> Any:
        return (CutLine, (bytes(self), self.reason))


def _not_json(name: str) -> Any:
    raise InputError(f"malformed JSON: {name} is not a JSON value")


def _repeated(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` of the careful parse: an object that repeats a key is refused."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InputError(f"duplicate key {key!r}")
            seen.add(key)
    return value


_decoder = json.JSONDecoder(parse_constant=_not_json)
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


def _keys(value: Any) -> int:
    """How many keys the objects of ``value`` have, all levels together."""
    kind = value.__class__
    if kind is dict:
        return len(value) + sum(_keys(item) for item in value.values())
    if kind is list:
        return sum(_keys(item) for item in value)
    return 0


def _check_keys(value: Any, raw: bytes, text: str, colons: int) -> None:
    """Refuse a document whose objects repeat a key (Python's parser keeps the last value).

    Each key of the text is followed by a colon, so a line with no more ``colons`` than its
    parsed objects have keys repeats none. :func:`parse_json` compares them for the common
    line (the keys of the object and of its ``properties``); this is the rest. Colons inside
    strings (a URL, a time) make the count inconclusive; then, when no quote is followed by
    a blank, every key is counted by ``":`` exactly; failing that the text is parsed again
    with a hook that sees each pair.
    """
    keys = _keys(value)
    if colons == keys or (raw.count(b'":') == keys and not any(
            blank in raw for blank in (b'" ', b'"\t', b'"\n', b'"\r'))):
        return
    _careful.decode(text)  # raises InputError naming the repeated key


_careful = json.JSONDecoder(parse_constant=_not_json, object_pairs_hook=_repeated)
_careful_numbers = json.JSONDecoder(parse_constant=_not_json, object_pairs_hook=_repeated,
                                    parse_int=_checked_number, parse_float=_checked_number)


def parse_json(line: str | bytes) -> Any:
    """Parse one JSON document within the input limits; raise InputError naming the problem."""
    if type(line) is bytes:
        raw = line
    elif isinstance(line, CutLine):
        raise InputError(line.reason)
    elif isinstance(line, str):
        try:
            raw = line.encode()
        except UnicodeEncodeError as exc:
            raise InputError(f"not UTF-8: {exc.reason} at character {exc.start}") from None
    else:
        raw = bytes(line)
    if len(raw) > MAX_LINE_BYTES:
        raise InputError(f"line of {len(raw):,} bytes exceeds the limit of {MAX_LINE_BYTES:,}")
    shape = raw.translate(_DIGITS_TO_ZERO)
    if shape.count(b"[") > MAX_DEPTH and _depth(raw) > MAX_DEPTH:
        raise InputError(f"nesting deeper than {MAX_DEPTH} levels")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        if shape.find(_TOO_MANY_DIGITS) >= 0:  # `in` would first try it as an int: slower
            # Rare: maybe a huge number, maybe a long digit string; parse number by number.
            return _careful_numbers.decode(text)
        value = _parsed(text)
        colons = raw.count(b":")  # one per key, and any inside strings
        if colons:
            keys = -1
            if value.__class__ is dict:  # the common line: its keys and its properties'
                inner = value.get("properties")
                keys = len(value) + (len(inner) if inner.__class__ is dict else 0)
            if colons != keys:
                _check_keys(value, raw, text, colons)
        return value
    except json.JSONDecodeError as exc:
        msg = exc.msg.removesuffix(" at")  # "Unterminated string starting at"
        if text.startswith("\ufeff") and exc.pos == 0:
            msg = "a byte order mark (U+FEFF) before the document"
        raise InputError(f"malformed JSON: {msg} at column {exc.colno}") from None
    except RecursionError:
        raise InputError(f"nesting deeper than {MAX_DEPTH} levels") from None
