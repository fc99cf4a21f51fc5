"""Input limits: a hostile or broken line becomes an InputError with a reason, quickly."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from hookline._limits import MAX_DEPTH, MAX_LINE_BYTES, MAX_NUMBER_DIGITS, parse_json
from hookline.errors import InputError


def refused(line: str | bytes) -> str:
    with pytest.raises(InputError) as caught:
        parse_json(line)
    assert str(caught.value) == caught.value.reason
    return caught.value.reason


def padded(size: int) -> bytes:
    """A valid JSON object of exactly ``size`` bytes."""
    frame = b'{"pad":""}'
    return frame[:-2] + b"x" * (size - len(frame)) + frame[-2:]


def test_the_limits_are_the_documented_ones() -> None:
    assert (MAX_LINE_BYTES, MAX_DEPTH, MAX_NUMBER_DIGITS) == (1 << 20, 64, 100)


def test_a_line_of_exactly_one_mebibyte_is_accepted() -> None:
    line = padded(MAX_LINE_BYTES)
    assert len(line) == MAX_LINE_BYTES
    assert len(parse_json(line)["pad"]) == MAX_LINE_BYTES - 10


def test_a_line_one_byte_over_is_refused_with_its_size() -> None:
    reason = refused(padded(MAX_LINE_BYTES + 1))
    assert reason == "line of 1,048,577 bytes exceeds the limit of 1,048,576"


def test_the_line_limit_counts_utf8_bytes_not_characters() -> None:
    text = '{"pad":"' + "€" * (MAX_LINE_BYTES // 3) + '"}'  # fewer chars than bytes
    assert len(text) < MAX_LINE_BYTES < len(text.encode())
    assert "exceeds the limit" in refused(text)


@pytest.mark.parametrize(("opening", "closing"), [("[", "]"), ('{"a":', "}")])
def test_nesting_of_64_is_accepted_and_65_refused(opening: str, closing: str) -> None:
    def nested(depth: int) -> str:
        return opening * depth + "1" + closing * depth

    assert parse_json(nested(MAX_DEPTH)) is not None
    assert refused(nested(MAX_DEPTH + 1)) == "nesting deeper than 64 levels"


def test_deep_nesting_far_over_the_limit_is_refused_without_recursion_error() -> None:
    assert refused("[" * 100_000 + "]" * 100_000) == "nesting deeper than 64 levels"
    assert refused("[" * 500_000) == "nesting deeper than 64 levels"


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    value = "[{" * 200 + '"[[[' + "]" * 10  # an escaped quote must not end the string
    line = json.dumps({"text": value})
    assert '\\"[[[' in line
    assert parse_json(line) == {"text": value}


def test_a_100_digit_integer_is_accepted_and_101_refused() -> None:
    assert parse_json("9" * MAX_NUMBER_DIGITS) == int("9" * MAX_NUMBER_DIGITS)
    assert parse_json('{"n": -' + "1" * MAX_NUMBER_DIGITS + "}") == {
        "n": -int("1" * MAX_NUMBER_DIGITS)
    }
    assert refused("9" * (MAX_NUMBER_DIGITS + 1)) == "number with 101 digits (limit 100)"
    assert refused('{"n": [1, ' + "1" * 5000 + "]}") == "number with 5000 digits (limit 100)"


def test_a_long_digit_string_inside_quotes_is_accepted() -> None:
    digits = "1" * (MAX_NUMBER_DIGITS + 1)
    assert parse_json(f'{{"id": "{digits}", "n": 1.5}}') == {"id": digits, "n": 1.5}
    assert parse_json(f'"{"7" * 10_000}"') == "7" * 10_000


@pytest.mark.parametrize(
    "number",
    [
        "1." + "0" * MAX_NUMBER_DIGITS,  # 101 digits, none 101 in a row
        "0." + "5" * 60 + "e" + "1" * 2,
        "1" * 60 + "." + "1" * 60,
    ],
)
def test_a_number_is_judged_the_same_whatever_else_is_on_the_line(number: str) -> None:
    # The same number must not be accepted on one line and refused on another just because
    # a long digit string appears elsewhere in it.
    def outcome(line: str) -> Any:
        try:
            return ("value", parse_json(line)["n"])
        except InputError as exc:
            return ("refused", exc.reason)

    digit_string = "2" * (MAX_NUMBER_DIGITS + 1)
    alone = outcome(f'{{"n": {number}}}')
    beside_a_digit_string = outcome(f'{{"n": {number}, "id": "{digit_string}"}}')
    assert alone == beside_a_digit_string


@pytest.mark.parametrize(
    ("line", "problem", "column"),
    [
        # 3.13's parser words this one "Illegal trailing comma before end of object" (col 8)
        ('{"a": 1,}', ("Expecting property name enclosed in double quotes", 9)
         if sys.version_info < (3, 13) else ("Illegal trailing comma", 8), None),
        ('{"a": tru}', "Expecting value", 7),
        ('{"a": 1} x', "Extra data", 10),
        ("", "Expecting value", 1),
        ('{"a": "' + "1" * 200 + "}", "Unterminated string starting", 7),
        ('{"a": "\\q"}', "Invalid \\escape", 8),
    ],
)
def test_malformed_json_names_the_problem_and_column(
    line: str, problem: str | tuple[str, int], column: int | None
) -> None:
    if isinstance(problem, tuple):
        problem, column = problem
    reason = refused(line)
    assert reason.startswith(f"malformed JSON: {problem}")
    assert reason.endswith(f" column {column}")
    assert " at at " not in reason


def test_non_utf8_bytes_name_the_byte() -> None:
    assert refused(b'{"a": "\xff"}') == "not UTF-8: invalid start byte at byte 7"
    assert refused(b'{"a": "caf\xc3"}') == "not UTF-8: invalid continuation byte at byte 10"
    assert refused(b'"caf\xc3') == "not UTF-8: unexpected end of data at byte 4"


def test_ordinary_lines_parse_from_str_and_bytes() -> None:
    value = {"event_id": "e1", "ts": 1, "amount": 2.5, "tags": ["ü"], "p": {"a": [None, True]}}
    line = json.dumps(value, ensure_ascii=False)
    assert parse_json(line) == value
    assert parse_json(line.encode()) == value
