"""Inputs (issue 14, cases 1-5): no input line can stall a run, store an invalid value, or be
lost; every line ends exactly once, as an accepted event or a dead letter with its reason."""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hookline
from hookline import _sources, fields
from hookline._limits import KEPT_BYTES, MAX_LINE_BYTES, CutLine, parse_json
from hookline._sinks.sqlite import SQLiteSink
from hookline.config import Config
from hookline.errors import InputError, ValidationError
from hookline.sinks import Checkpoint, DeadLetter, SinkBatch

CORPUS = Path(__file__).parent / "corpus"
HOOKLINE = [sys.executable, "-m", "hookline.cli"]


def event(number: int, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"e{number}", "user_id": "u1", "kind": "click", "ts": 1, **fields}


def line(number: int, **fields: Any) -> bytes:
    return json.dumps(event(number, **fields)).encode()


def run(tmp_path: Path, *inputs: Path, batch_size: int = 100) -> hookline.Report:
    return hookline.run([str(path) for path in inputs], db=str(tmp_path / "out.db"),
                        pipeline=hookline.Pipeline.from_plugins([]),
                        config=Config(batch_size=batch_size), progress=False)


def rows(tmp_path: Path, query: str) -> list[Any]:
    connection = sqlite3.connect(tmp_path / "out.db")
    try:
        return connection.execute(query).fetchall()
    finally:
        connection.close()


def dead(tmp_path: Path) -> list[tuple[int, str, str, str]]:
    """``(line, stage, reason, payload)`` of every dead letter, by line."""
    return rows(tmp_path, "SELECT line, stage, reason, payload FROM dead_letters ORDER BY line")


def assert_everything_stored_is_valid(tmp_path: Path) -> int:
    """Every stored row is a valid event again and its JSON columns are valid JSON that
    SQLite's own functions read; returns how many rows there are."""
    stored = rows(tmp_path, "SELECT event_id, user_id, kind, ts, amount, currency, tags, "
                            "properties, json_valid(tags), json_valid(properties), "
                            "json_extract(properties, '$') FROM events")
    for *values, tags_ok, properties_ok, _ in stored:
        assert tags_ok == 1 and properties_ok == 1, values
        names = ("event_id", "user_id", "kind", "ts", "amount", "currency", "tags", "properties")
        data = dict(zip(names, values))
        data["tags"], data["properties"] = json.loads(data["tags"]), json.loads(data["properties"])
        hookline.DefaultEvent.from_dict(data)
    return len(stored)


# -- 1. values SQLite cannot store are refused at validation --------------------------------------

POISON = [
    (rb'{"event_id":"p1","user_id":"u","kind":"k","ts":1,"properties":{"\uDFAA":0}}',
     "properties: key contains a lone surrogate"),
    (rb'{"event_id":"p2","user_id":"u\ud800","kind":"k","ts":1}',
     "user_id: contains a lone surrogate"),
    (rb'{"event_id":"p3","user_id":"u","kind":"k","ts":9223372036854775808}',
     "ts: must fit in 64 bits"),
    (rb'{"event_id":"p4","user_id":"u","kind":"k","ts":1,"amount":9223372036854775808}',
     "amount: must fit in 64 bits"),
    (rb'{"event_id":"p5","user_id":"u","kind":"k","ts":1,"tags":["a\udc00"]}',
     "tags[0]: contains a lone surrogate"),
    (rb'{"event_id":"p6","user_id":"u","kind":"k","ts":1,"properties":{"a":[{"b":"\ud83d"}]}}',
     "properties.a: [0]: ['b']: contains a lone surrogate"),
    (rb'{"event_id":"p7","user_id":"u","kind":"k","ts":1,"properties":{"n":-9223372036854775809}}',
     "properties.n: must fit in 64 bits"),
    (rb'{"event_id":"p8","user_id":"u","kind":"k","ts":1,"properties":{"x":1e400}}',
     "properties.x: must be a finite number"),
    (rb'{"event_id":"p9","user_id":"u","kind":"k","ts":1,"amount":1e400}',
     "amount: must be a finite number"),
]


def test_a_poison_line_is_dead_lettered_and_the_batch_around_it_is_stored(tmp_path: Path
                                                                         ) -> None:
    # Before: each of these passed validation, failed the SQLite write and rolled back its
    # whole batch, on every run. Now each is refused at validation, naming the field.
    source = tmp_path / "events.jsonl"
    lines = [line(0)]
    for number, (poison, _) in enumerate(POISON, 1):
        lines += [poison, line(number)]
    source.write_bytes(b"\n".join(lines) + b"\n")
    report = run(tmp_path, source)
    assert (report.read, report.accepted, report.dead_lettered) == (
        len(lines), len(POISON) + 1, len(POISON))
    letters = dead(tmp_path)
    for (number, stage, reason, _), (_, expected) in zip(letters, POISON):
        assert stage == "schema" and expected in reason, (number, reason)
    assert [number for number, *_ in letters] == list(range(2, 2 * len(POISON) + 1, 2))
    assert assert_everything_stored_is_valid(tmp_path) == len(POISON) + 1
    again = run(tmp_path, source)  # the re-run resumes after it: nothing stalls
    assert again.read == 0


@pytest.mark.parametrize(("name", "value", "problem"), [
    ("user_id", "u\ud800", "contains a lone surrogate ('\\ud800' at index 1)"),
    ("tags", ["ok", "\udfff"], "contains a lone surrogate"),
    ("properties", {"\udfaa": 0}, "key contains a lone surrogate"),
    ("properties", {"x": float("nan")}, "must be a finite number"),
    ("properties", {"x": [1, float("inf")]}, "[1]: must be a finite number"),
    ("properties", {"x": 2**63}, "must fit in 64 bits"),
    ("properties", {"x": {1, 2}}, "must be JSON data"),
    ("ts", 2**64, "must fit in 64 bits"),
    ("amount", 2**63, "must fit in 64 bits"),
])
def test_a_stage_cannot_assign_a_value_that_cannot_be_stored(name: str, value: Any,
                                                              problem: str) -> None:
    item = hookline.DefaultEvent.from_dict(event(1))
    with pytest.raises(ValidationError) as refused:
        setattr(item, name, value)
    assert problem in str(refused.value)


def test_an_unknown_key_kept_in_properties_is_checked_too() -> None:
    class Open(hookline.Event, extra="properties"):
        kind = fields.String()
        properties = fields.Mapping(default=dict)

    for bad in (2**64, float("nan"), "\udfaa", {"x": [float("inf")]}):
        with pytest.raises(ValidationError, match="properties"):
            Open.from_dict({"kind": "k", "n": bad})
        with pytest.raises(ValidationError, match="properties"):
            Open.from_dict_by_descriptors({"kind": "k", "n": bad})
    assert Open.from_dict({"kind": "k", "n": 1}).properties == {"n": 1}


def test_values_that_can_be_stored_are_still_accepted() -> None:
    item = hookline.DefaultEvent.from_dict(event(1, amount=1e300, ts=2**63 - 1, properties={
        "emoji": "\U0001f600", "pair": "\ud83d\ude00".encode("utf-16", "surrogatepass")
        .decode("utf-16"), "n": -2**63, "f": -0.0, "deep": [[{"a": None}]]}))
    item.user_id = "Zoë 🙂"
    item.tags = ["ü", "\u2028"]
    assert item.properties["pair"] == "\U0001f600"


def test_a_row_the_database_refuses_is_dead_lettered_alone(tmp_path: Path) -> None:
    # The last defence, should an unstorable value get past validation: the other rows and
    # the checkpoint are committed, the row is a dead letter naming the error.
    sink = SQLiteSink(str(tmp_path / "out.db"), hookline.DefaultEvent, run_id="r")
    good = sink.rows(hookline.DefaultEvent.from_dict(event(1)))
    bad = (*good[:1], "u\ud800", *good[2:])
    bad = ("e2", *bad[1:])
    big = ("e3", *good[1:3], 2**70, *good[4:])
    batch, letters = [good, bad, big], [DeadLetter("x", "reason \ud800", "team.stage")]
    sink.commit(SinkBatch(batch, letters, Checkpoint("src", 10, 3)))
    assert batch == [good]
    assert [(d.stage, d.event_id) for d in letters[1:]] == [("sink", "e2"), ("sink", "e3")]
    assert "cannot be stored: UnicodeEncodeError" in letters[1].reason
    assert "cannot be stored: OverflowError" in letters[2].reason
    sink.close()
    assert rows(tmp_path, "SELECT event_id FROM events") == [("e1",)]
    assert rows(tmp_path, "SELECT offset FROM checkpoints") == [(10,)]
    assert [r[0] for r in rows(tmp_path, "SELECT reason FROM dead_letters ORDER BY id")] == [
        "reason \\ud800", letters[1].reason, letters[2].reason]


# -- 2. corrupt and truncated gzip ---------------------------------------------------------------

def gzipped(count: int) -> bytes:
    return gzip.compress(b"".join(line(number) + b"\n" for number in range(count)))


def test_a_truncated_gzip_commits_its_complete_lines_and_the_run_goes_on(tmp_path: Path
                                                                         ) -> None:
    whole = gzipped(2000)
    broken = tmp_path / "a.jsonl.gz"
    broken.write_bytes(whole[: len(whole) // 2])
    after = tmp_path / "b.jsonl"
    after.write_bytes(line(5000) + b"\n")
    report = run(tmp_path, broken, after)
    letters = dead(tmp_path)
    assert len(letters) == 1
    number, stage, reason, payload = letters[0]
    assert stage == "parse" and reason.startswith("truncated gzip file: it ends after ")
    assert len(payload) < 200  # the partial line it was reading
    assert report.accepted - 1 == number - 1 > 900  # every complete line before it, and b
    assert rows(tmp_path, "SELECT count(*) FROM events WHERE event_id = 'e5000'") == [(1,)]
    assert run(tmp_path, broken, after).read == 0  # resumed: the letter is not written twice


def test_corrupt_gzip_data_commits_the_lines_before_the_damage(tmp_path: Path) -> None:
    whole = bytearray(gzipped(3000))
    whole[len(whole) // 2: len(whole) // 2 + 40] = b"\x00" * 40
    broken = tmp_path / "a.gz"
    broken.write_bytes(bytes(whole))
    report = run(tmp_path, broken)
    letters = [row for row in dead(tmp_path) if row[2].startswith("corrupt gzip file")]
    assert len(letters) == 1 and letters[0][1] == "parse"
    assert "the rest of the file cannot be read" in letters[0][2]
    assert report.accepted > 1000
    assert report.accepted + report.dead_lettered + report.duplicates == report.read
    assert assert_everything_stored_is_valid(tmp_path) == report.accepted


def test_a_gz_file_that_is_not_gzip_is_one_dead_letter(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gz"
    fake.write_bytes(line(1) + b"\n")
    report = run(tmp_path, fake)
    assert (report.read, report.dead_lettered) == (1, 1)
    assert "corrupt gzip file" in dead(tmp_path)[0][2]


def test_a_plain_file_starting_with_the_gzip_magic_bytes_is_read_as_plain(tmp_path: Path
                                                                           ) -> None:
    plain = tmp_path / "events.jsonl"
    plain.write_bytes(b"\x1f\x8b not gzip\n" + line(1) + b"\n" + line(2) + b"\n")
    report = run(tmp_path, plain)
    assert (report.read, report.accepted, report.dead_lettered) == (3, 2, 1)
    assert dead(tmp_path)[0][:2] == (1, "parse")


def test_a_gzip_file_without_the_suffix_is_still_read_as_gzip(tmp_path: Path) -> None:
    packed = tmp_path / "events.jsonl"
    packed.write_bytes(gzipped(10) + gzipped(5))  # two members, as `cat a.gz b.gz` makes
    report = run(tmp_path, packed)
    assert (report.accepted, report.duplicates) == (10, 5)  # e0..e9, then e0..e4 again
    assert len(dead(tmp_path)) == 0  # duplicates are counted, not stored


# -- 3. what JSON does not allow -----------------------------------------------------------------

@pytest.mark.parametrize(("text", "reason"), [
    ('{"a":NaN}', "malformed JSON: NaN is not a JSON value"),
    ('{"a":[Infinity]}', "malformed JSON: Infinity is not a JSON value"),
    ('{"a":-Infinity}', "malformed JSON: -Infinity is not a JSON value"),
    ('{"amount":-1,"kind":"k","amount":5}', "duplicate key 'amount'"),
    ('{"p":{"x":1,"y":{"x":2},"x":3}}', "duplicate key 'x'"),
    ('{"a": 1, "b":"10:30", "a" : 2}', "duplicate key 'a'"),
    ('[{"k":1,"k":1}]', "duplicate key 'k'"),
    ('[{"a":1,"a":2},5]', "duplicate key 'a'"),  # as many colons as items
    ('{"properties":{"a":1,"a":2},"b":3}', "duplicate key 'a'"),
    ('{"n":' + "1" * 101 + ',"n":1}', "number with 101 digits (limit 100)"),
    ('{"n":1,"s":"' + "1" * 101 + '","n":2}', "duplicate key 'n'"),
])
def test_what_json_does_not_allow_is_refused(text: str, reason: str) -> None:
    with pytest.raises(InputError) as refused:
        parse_json(text.encode())
    assert refused.value.reason == reason


@pytest.mark.parametrize("text", [
    '{"a":1,"p":{"a":1}}',  # one key at two levels
    '{"url":"http://x:80/a:b","t":"10:30:00","a":{"b":{"c":1}}}',  # colons in strings
    '{"a" : "x" , "b" : {"a" : 1}}',
    '{"q":"\\":","r":1}',
    '[1, {"a": 2}, {"a": 3}]',
    '"a:b"',
])
def test_repeated_names_that_are_not_duplicates_are_accepted(text: str) -> None:
    assert parse_json(text.encode()) == json.loads(text)


def test_nan_and_duplicate_keys_are_dead_lettered_in_a_run(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_bytes(
        line(1) + b"\n"
        + b'{"event_id":"e2","user_id":"u","kind":"k","ts":1,"properties":{"x":NaN}}\n'
        + b'{"event_id":"e3","amount":-1,"user_id":"u","kind":"k","ts":1,"amount":5}\n')
    report = run(tmp_path, source)
    assert (report.accepted, report.dead_lettered) == (1, 2)
    assert [(n, stage, reason) for n, stage, reason, _ in dead(tmp_path)] == [
        (2, "parse", "malformed JSON: NaN is not a JSON value"),
        (3, "parse", "duplicate key 'amount'")]


# -- 4. over-long lines --------------------------------------------------------------------------

def test_an_over_long_line_is_dead_lettered_cut_and_offsets_stay_exact(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    long_line = b'{"pad":"' + b"x" * (3 * MAX_LINE_BYTES) + b'"}'
    source.write_bytes(line(1) + b"\n" + long_line + b"\r\n" + line(3) + b"\n")
    report = run(tmp_path, source)
    assert (report.read, report.accepted, report.dead_lettered) == (3, 2, 1)
    number, stage, reason, payload = dead(tmp_path)[0]
    start = len(line(1)) + 1
    assert (number, stage) == (2, "parse")
    assert reason == (f"line of {len(long_line):,} bytes exceeds the limit of "
                      f"{MAX_LINE_BYTES:,} (at byte {start:,}; kept: its first 1,024 bytes)")
    assert payload.encode() == long_line[:KEPT_BYTES]
    with source.open("ab") as more:
        more.write(line(4) + b"\n")
    again = run(tmp_path, source)
    assert (again.read, again.accepted) == (1, 1)  # the checkpoint was exact


def _peak_rss_of(command: list[str], stdin: Any) -> tuple[int, str, int]:
    script = ("import resource, subprocess, sys\n"
              "done = subprocess.run(sys.argv[1:], stdin=sys.stdin, capture_output=True, "
              "text=True)\n"
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
              "print(done.returncode)\nprint(done.stdout + done.stderr)\n")
    env = {**os.environ, "HOOKLINE_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run([sys.executable, "-c", script, *command], stdin=stdin, env=env,
                          capture_output=True, text=True, timeout=120)
    peak, code, output = done.stdout.split("\n", 2)
    return int(peak), output, int(code)


@pytest.mark.skipif(sys.platform == "win32", reason="resource is POSIX")
def test_a_300_mb_line_in_a_small_gzip_takes_bounded_memory(tmp_path: Path) -> None:
    packed = tmp_path / "one.jsonl.gz"
    with gzip.open(packed, "wb", compresslevel=1) as out:
        out.write(b'{"pad":"')
        block = b"y" * (1 << 20)
        for _ in range(300):
            out.write(block)
        out.write(b'"}\n' + line(1) + b"\n")
    assert packed.stat().st_size < 2_000_000
    db = tmp_path / "out.db"
    peak_kib, output, code = _peak_rss_of(
        [*HOOKLINE, "run", str(packed), "--db", str(db)], None)
    assert code == 0, output
    assert peak_kib < 150_000, peak_kib  # was 1.35 GB
    assert db.stat().st_size < 5_000_000  # was 315 MB
    letters = rows(tmp_path, "SELECT length(payload), reason FROM dead_letters")
    assert letters == [(1024, f"line of {300 * (1 << 20) + 10:,} bytes exceeds the limit of "
                              f"{MAX_LINE_BYTES:,} (at byte 0; kept: its first 1,024 bytes)")]


@pytest.mark.skipif(sys.platform == "win32", reason="resource is POSIX")
def test_stdin_of_nul_bytes_without_a_newline_ends_normally(tmp_path: Path) -> None:
    zeros = tmp_path / "zeros"
    with zeros.open("wb") as out:
        out.truncate(100 << 20)  # 100 MiB of NUL bytes, no newline
    db = tmp_path / "out.db"
    with zeros.open("rb") as stdin:
        peak_kib, output, code = _peak_rss_of(
            [*HOOKLINE, "run", "-", "--db", str(db)], stdin)
    assert code == 0, output
    assert peak_kib < 150_000, peak_kib
    query = "SELECT line, stage, length(CAST(payload AS BLOB)) FROM dead_letters"
    assert rows(tmp_path, query) == [(1, "parse", 1024)]  # NUL characters: length() stops
    empty = subprocess.run([*HOOKLINE, "run", "-", "--db", str(db)], input=b"",
                           capture_output=True, timeout=60,
                           env={**os.environ, "HOOKLINE_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert empty.returncode == 0, empty.stderr


def test_an_endless_line_still_ends_batches_before_it(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # So that a stop request (Ctrl-C) is heard during `hookline run - < /dev/zero`.
    monkeypatch.setattr(_sources, "CHUNK_BYTES", 8)
    monkeypatch.setattr(_sources, "MAX_LINE_BYTES", 16)
    monkeypatch.setattr(_sources, "_BEAT_BYTES", 64)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"first\n" + b"x" * 1000 + b"\nlast\n")
    batches = list(_sources.FileSource(str(path)).batches(100))
    assert batches[0].lines == [(1, b"first")]
    assert all((b.lines, b.end_offset, b.end_line) == ([], 6, 1) for b in batches[1:-1])
    assert len(batches) > 10
    assert [n for n, _ in batches[-1].lines] == [2, 3] and batches[-1].end_offset == 1012


# -- 5. byte order mark and line endings ---------------------------------------------------------

@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_a_bom_and_any_line_ending_give_the_same_events(tmp_path: Path, ending: bytes) -> None:
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + ending.join(line(n) for n in range(5)) + ending)
    report = run(tmp_path, source, batch_size=2)
    assert (report.read, report.accepted) == (5, 5)
    with source.open("ab") as more:  # resuming finds the exact offset
        more.write(line(5) + ending + b"\n" + line(6))
    again = run(tmp_path, source)
    assert (again.read, again.accepted) == (2, 2)
    assert rows(tmp_path, "SELECT count(*) FROM events") == [(7,)]


def test_a_bom_elsewhere_is_named_in_the_reason() -> None:
    with pytest.raises(InputError, match="byte order mark"):
        parse_json(b"\xef\xbb\xbf" + line(1))


def reference_lines(data: bytes, limit: int, kept: int
                    ) -> list[tuple[int, bytes, int, bool]]:
    """``(line number, line, end offset, cut)`` of the non-blank lines, the plain way."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    found, offset = [], start
    parts = re.split(rb"(\r\n|\r|\n)", data[start:])
    for number, (piece, ending) in enumerate(zip(parts[0::2], [*parts[1::2], b""]), 1):
        offset += len(piece) + len(ending)
        if not piece and not ending:
            break
        if len(piece) > limit:
            found.append((number, piece[:kept], offset, True))
        elif piece.strip():
            found.append((number, piece, offset, False))
    return found


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(st.sampled_from([b"a", b"bb", b" ", b"\r", b"\n", b"\r\n", b"\xef\xbb\xbf",
                                        b"{}", b"x" * 9]), max_size=40),
       chunk=st.integers(1, 8), bom=st.booleans(), size=st.integers(1, 4))
def test_the_chunked_reader_splits_lines_exactly_like_the_plain_way(
        tmp_path_factory: pytest.TempPathFactory, pieces: list[bytes], chunk: int, bom: bool,
        size: int) -> None:
    data = (b"\xef\xbb\xbf" if bom else b"") + b"".join(pieces)
    path = tmp_path_factory.mktemp("lines") / "input.jsonl"
    path.write_bytes(data)
    limit, kept = 12, 4
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_sources, "CHUNK_BYTES", chunk)
        patch.setattr(_sources, "MAX_LINE_BYTES", limit)
        patch.setattr(_sources, "KEPT_BYTES", kept)
        source = _sources.FileSource(str(path))
        batches = list(source.batches(size))
        got = [(n, bytes(raw)) for batch in batches for n, raw in batch.lines]
        expected = reference_lines(data, limit, kept)
        assert got == [(n, raw) for n, raw, *_ in expected]
        assert {n for batch in batches for n, raw in batch.lines if isinstance(raw, CutLine)
                } == {n for n, *_, cut in expected if cut}
        ends = {n: end for n, _, end, _ in expected}
        for batch in batches:  # a resumed read from any batch's end gives the rest
            if batch.lines:
                assert batch.end_offset == ends[batch.lines[-1][0]] or batch is batches[-1]
            rest = [(n, bytes(raw)) for b in source.batches(size, offset=batch.end_offset,
                                                            line=batch.end_line)
                    for n, raw in b.lines]
            assert rest == [(n, raw) for n, raw, *_ in expected if n > batch.end_line]
        if batches:
            assert batches[-1].end_offset == len(data)
        else:
            assert not expected


# -- acceptance: the fuzz test -------------------------------------------------------------------

_TOKENS = [b'"\\ud800"', b'"\\udfaa"', b'"\\ud83d\\ude00"', b"NaN", b"Infinity", b"1e400",
           b"9223372036854775808", b"-0", b"0.0e-999", b"\xef\xbb\xbf", b"\x00", b"\xff",
           b"\xc0\xaf", b'"a":1,"a":2', b",", b"{", b"}", b"[", b"]", b'"', b"\\", b"\\u",
           b"true", b"null", b'"amount":-1', b'"ts":0', b" ", b"\t", b"\x0c", b"\xc2\xa0"]


def _mutate(seed: bytes, rng: random.Random) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, 3)):
        at = rng.randint(0, len(data))
        choice = rng.random()
        if choice < 0.4:
            data[at:at] = rng.choice(_TOKENS)
        elif choice < 0.7 and data:
            del data[at:at + rng.randint(1, 4)]
        elif data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
    return bytes(data)


_json_scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                 | st.floats() | st.text(max_size=8))
_json_values = st.recursive(_json_scalars, lambda inner: st.lists(inner, max_size=3)
                            | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                            max_leaves=6)
_edge = st.sampled_from([0, -1, 2**63 - 1, 2**63, -(2**63) - 1, 1.5, -0.0, 1e308, "1", None,
                         True, [], {}])
# Mostly valid events, whose values are drawn from every kind of JSON (so that some fields
# hold edge values: huge ints, NaN, odd text), with an id the test makes unique per line.
_events = st.fixed_dictionaries(
    {"event_id": st.just("@ID@"), "user_id": st.text(min_size=1, max_size=6),
     "kind": st.text(min_size=1, max_size=6), "ts": st.integers(1, 2**53) | _edge},
    optional={"amount": st.integers(0, 10**9) | st.floats(0, 1e9) | _edge,
              "currency": st.sampled_from(["USD", "EUR", "usd", ""]),
              "tags": st.lists(st.text(max_size=4), max_size=3) | st.lists(_json_scalars,
                                                                         max_size=2),
              "properties": st.dictionaries(st.text(max_size=4), _json_values, max_size=4)})


def _as_line(value: Any, rng: random.Random) -> bytes:
    return json.dumps(value, ensure_ascii=rng.random() < 0.5, allow_nan=True).encode(
        "utf-8", "surrogatepass")


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(seeds=st.lists(_events.map(lambda e: ("json", e)), min_size=20, max_size=40),
       noise=st.lists(st.binary(max_size=80) | st.text(max_size=60).map(
           lambda t: t.encode("utf-8", "surrogatepass")), min_size=1, max_size=5),
       salt=st.integers(0, 2**32))
def test_fuzz_every_line_has_one_outcome_and_nothing_invalid_is_stored(
        tmp_path_factory: pytest.TempPathFactory, seeds: list[tuple[str, Any]],
        noise: list[bytes], salt: int) -> None:
    rng = random.Random(salt)
    originals = [_as_line(value, rng) for _, value in seeds]
    originals += [json.dumps({**event(0), "event_id": "@ID@", "properties": {"k": k}}).encode()
                  for k in ("v", 1, 2.5, None, ["a", {"b": True}])]  # valid: some get through
    lines: list[bytes] = []
    filled = 0
    while filled < 10_000:  # non-blank lines, each of which must have one outcome
        chance = rng.random()
        if chance < 0.05:
            made = rng.choice(noise)
        else:
            made = rng.choice(originals)
            if chance > 0.5:
                made = _mutate(made, rng)
        made = made.replace(b"@ID@", b"f%d" % len(lines))
        lines.append(made.replace(b"\n", b" ").replace(b"\r", b" "))
        filled += bool(lines[-1].strip())
    folder = tmp_path_factory.mktemp("fuzz")
    source = folder / "fuzz.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    report = run(folder, source, batch_size=1000)
    counted = [number for number, made in enumerate(lines, 1)
               if made and not made.isspace()]
    assert report.read == len(counted) >= 10_000
    assert (report.accepted + report.dropped + report.dead_lettered + report.duplicates
            == report.read)  # a duplicate is an outcome too: counted, its event stored
    assert report.accepted > 500  # the valid lines get through
    letters = [number for number, *_ in dead(folder)]
    assert len(set(letters)) == len(letters) == report.dead_lettered  # each line once
    assert set(letters) <= set(counted)
    assert assert_everything_stored_is_valid(folder) == report.accepted


# -- acceptance: the JSON corpus -----------------------------------------------------------------

def corpus() -> list[Path]:
    return sorted(CORPUS.glob("*.json"))


def test_the_corpus_covers_every_class_of_trap() -> None:
    names = " ".join(path.stem for path in corpus())
    for trap in ("escape", "surrogate", "number", "nesting", "whitespace", "utf16", "latin1",
                 "overlong", "bom", "trailing_comma", "comment", "single_quote", "control"):
        assert trap in names, trap


def test_every_corpus_document_ends_as_expected(tmp_path: Path) -> None:
    documents = corpus()
    assert len(documents) >= 60
    source = tmp_path / "corpus.jsonl"
    contents = [path.read_bytes() for path in documents]
    for path, content in zip(documents, contents):
        assert b"\n" not in content and b"\r" not in content, path.name
    source.write_bytes(b"\n".join(contents) + b"\n")
    report = run(tmp_path, source)
    letters = {number: (stage, reason) for number, stage, reason, _ in dead(tmp_path)}
    stored = {event_id for (event_id,) in rows(tmp_path, "SELECT event_id FROM events")}
    assert report.read == len(documents)
    for number, path in enumerate(documents, 1):
        expected = path.stem.split("_", 2)[:2]
        outcome = letters.get(number, ("accepted", ""))
        if expected[0] == "n":  # not JSON (or over hookline's limits)
            assert outcome[0] == "parse", (path.name, outcome)
        elif expected[1] == "schema":  # JSON, but not a valid event
            assert outcome[0] == "schema" and outcome[1], (path.name, outcome)
        else:
            assert outcome[0] == "accepted", (path.name, outcome)
            assert json.loads(path.read_bytes())["event_id"] in stored
    assert assert_everything_stored_is_valid(tmp_path) == report.accepted


def test_every_corpus_document_parses_or_is_refused_with_a_reason() -> None:
    for path in corpus():
        try:
            parse_json(path.read_bytes())
        except InputError as exc:
            assert exc.reason and path.stem.startswith("n_"), path.name
        else:
            assert path.stem.startswith("y_"), path.name


def test_the_reader_handles_a_utf16_file_without_crashing(tmp_path: Path) -> None:
    source = tmp_path / "utf16.jsonl"
    source.write_bytes("\n".join(json.dumps(event(n)) for n in range(3)).encode("utf-16"))
    report = run(tmp_path, source)
    assert report.read == report.dead_lettered >= 1
    assert {stage for _, stage, *_ in dead(tmp_path)} == {"parse"}
    assert os.path.exists(tmp_path / "out.db")
