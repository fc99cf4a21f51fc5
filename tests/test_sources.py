"""Sources as plugins: inputs resolved by URL scheme and file suffix to the sources installed
plugins offer, read, checkpointed and resumed like hookline's own; their mistakes and
failures reported with the plugin named."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hookline
from hookline import cli
from hookline._sources import FileSource, expand_inputs
from hookline.config import Config
from hookline.errors import PluginError, SourceError, UsageError
from hookline.sources import Batch, LineSource, Source
from hookline.testing import database_content, write_installed

EXAMPLES = Path(__file__).parent / "doc_examples"
CSV_SOURCE = (EXAMPLES / "csv_source.py").read_text(encoding="utf-8")

#: ``memory://N`` gives N events; ``memory://N?fail=K`` raises after event K (as a network
#: source whose connection drops); ``memory://N?text`` yields str instead of bytes.
MEMORY = '''
from urllib.parse import urlsplit

import hookline
from hookline.sources import LineSource


class Memory(LineSource):
    def __init__(self, url):
        parts = urlsplit(url)
        self.count = int(parts.netloc)
        self.fail = int(parts.query[5:]) if parts.query.startswith("fail=") else None
        self.text = parts.query == "text"
        super().__init__(url, size=self.count)

    def lines(self, offset, line):
        for n in range(offset, self.count):
            if n == self.fail:
                raise ConnectionError(f"broker went away at event {n}")
            data = (f'{{"event_id": "m{n}", "user_id": "u{n % 3}", "kind": "view", '
                    f'"ts": {1767225600000 + n}}}')
            yield n + 1, data if self.text else data.encode(), n + 1


@hookline.hookimpl
def hookline_sources():
    return {"memory": Memory}
'''


def _rows(db: Path, query: str) -> list[Any]:
    with sqlite3.connect(db) as connection:
        return connection.execute(query).fetchall()


Install = Callable[..., Path]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """``install(name, source, version)``: a plugin distribution on sys.path, found through
    its entry point, and selected (with the others installed this way)."""
    site = tmp_path / "site"
    names: list[str] = []
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("HOOKLINE_CACHE_DIR", str(tmp_path / "cache"))

    def add(name: str, source: str, version: str = "1.0") -> Path:
        write_installed(site, name, textwrap.dedent(source), version=version)
        monkeypatch.delitem(sys.modules, f"{name}_plugin", raising=False)
        names.append(name)
        monkeypatch.setenv("HOOKLINE_PLUGINS", ",".join(names))
        return site

    yield add
    for name in names:
        sys.modules.pop(f"{name}_plugin", None)


def _run(inputs: list[str], db: Path, **options: Any) -> hookline.Report:
    config = Config(plugins=tuple(os.environ["HOOKLINE_PLUGINS"].split(",")),
                    batch_size=options.pop("batch_size", 2))
    return hookline.run(inputs, db=str(db), config=config,
                        pipeline=hookline.Pipeline.from_entry_points(config), **options)


def _write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("event_id,user_id,kind,ts,amount,currency\n" + "".join(
        row + "\n" for row in rows), encoding="utf-8")
    return path


ROWS = [f"c{n},u{n % 2},purchase,{1767225600000 + n},{n}.5,EUR" for n in range(5)]


# -- resolution -------------------------------------------------------------------------------


def test_a_suffix_picks_the_plugins_source_and_other_files_stay_json_lines(
    install: Install, tmp_path: Path
) -> None:
    install("csv", CSV_SOURCE)
    rows = [*ROWS[:2], "c9,u1,purchase,yesterday,1,EUR", *ROWS[2:]]
    table = _write_csv(tmp_path / "Orders.CSV", rows)  # the suffix matches in any case
    lines = tmp_path / "more.jsonl"
    lines.write_text(json.dumps({"event_id": "j1", "user_id": "u1", "kind": "view",
                                 "ts": 1767225600000}) + "\n", encoding="utf-8")
    report = _run([str(tmp_path / "*.CSV"), str(lines)], tmp_path / "out.db")
    assert (report.read, report.accepted, report.dead_lettered) == (7, 6, 1)
    assert _rows(tmp_path / "out.db", "SELECT event_id, amount FROM events ORDER BY event_id"
                 ) == [*[(f"c{n}", n + 0.5) for n in range(5)], ("j1", 0)]
    [(line, stage, reason, source)] = _rows(
        tmp_path / "out.db", "SELECT line, stage, reason, source FROM dead_letters")
    assert (line, stage, source) == (4, "schema", str(table))  # the header is line 1
    assert "ts: must be epoch ms" in reason and "'yesterday'" in reason


def test_a_url_scheme_picks_the_plugins_source_and_its_checkpoint_resumes(
    install: Install, tmp_path: Path
) -> None:
    install("memory", MEMORY)
    db = tmp_path / "out.db"
    assert _run(["memory://5"], db).accepted == 5
    again = _run(["memory://5"], db)
    assert (again.read, again.accepted) == (0, 0)  # resumed after the last commit: nothing
    more = _run(["memory://8"], db)  # another input: another key, read from its start
    assert (more.read, more.accepted, more.duplicates) == (8, 3, 5)  # m0-m4 stored
    assert _rows(db, "SELECT count(*) FROM events") == [(8,)]


def test_the_longest_suffix_wins(install: Install, tmp_path: Path) -> None:
    install("csv", CSV_SOURCE + textwrap.dedent('''
        class Unread(CsvSource):
            def lines(self, offset, line):
                raise RuntimeError("the .tab.csv source was chosen")

        @hookline.hookimpl
        def hookline_sources():
            return {".csv": CsvSource, ".tab.csv": Unread}
        '''))
    table = _write_csv(tmp_path / "x.tab.csv", ROWS)
    with pytest.raises(SourceError, match=r"the \.tab\.csv source was chosen"):
        _run([str(table)], tmp_path / "out.db")
    assert _run([str(_write_csv(tmp_path / "x.csv", ROWS))], tmp_path / "out.db").accepted == 5


def test_an_unknown_scheme_exits_2_naming_the_installed_schemes(
    install: Install, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install("memory", MEMORY)
    code = cli.main(["run", "memroy://3", "--db", str(tmp_path / "out.db")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert ("input 'memroy://3': no installed source reads memroy:// URLs; did you mean "
            "'memory'?; installed: memory:// (memory (memory-plugin 1.0))") in err
    assert not (tmp_path / "out.db").exists()  # refused before anything was opened


def test_without_plugins_an_unknown_scheme_says_none_is_installed() -> None:
    with pytest.raises(UsageError, match=r"no installed source reads s3:// URLs; installed: "
                                         r"none\. A plugin adds a scheme through the "
                                         r"hookline_sources hook"):
        expand_inputs(["s3://bucket/events.jsonl"])


def test_built_in_inputs_resolve_as_before(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("{}\n", encoding="utf-8")
    [stdin, plain] = expand_inputs(["-", str(path)])
    assert type(stdin) is FileSource and not stdin.resumable and stdin.key == "-"
    assert type(plain) is FileSource and plain.resumable and plain.size == 3
    with pytest.raises(FileNotFoundError, match="no input matches"):
        expand_inputs([str(tmp_path / "*.csv")])


# -- what a plugin may offer ------------------------------------------------------------------


@pytest.mark.parametrize(("offered", "message"), [
    ('{"kafka://": Memory}', r"offers 'kafka://': a key is a URL scheme without :// "
                             r"\(\"kafka\"\) or a file suffix with its dot"),
    ('{"csv": print}', r"offers <built-in function print> for 'csv': a source is a "
                       r"subclass of hookline.sources.Source"),
    ('[Memory]', r"returned list; return a mapping"),
])
def test_a_wrong_offer_is_refused_naming_the_plugin(
    install: Install, tmp_path: Path, offered: str, message: str
) -> None:
    install("memory", MEMORY + f"\n\n@hookline.hookimpl(trylast=True)\ndef hookline_sources():"
                               f"\n    return {offered}\n")
    with pytest.raises(PluginError, match=r"^memory \(memory-plugin 1\.0\): hookline_sources\(\) "
                                         + message):
        _run(["memory://1"], tmp_path / "out.db")


def test_two_plugins_offering_one_scheme_are_both_named(
    install: Install, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install("memory", MEMORY)
    install("other", MEMORY, version="2.0")
    code = cli.main(["run", "memory://1", "--db", str(tmp_path / "out.db")])
    assert code == 1
    assert ("plugins memory (memory-plugin 1.0) and other (other-plugin 2.0) both offer a "
            "source for memory:// URLs; deselect one") in capsys.readouterr().err


# -- failures while reading -------------------------------------------------------------------


def test_a_source_that_fails_is_reported_with_the_plugin_and_what_was_read_stays(
    install: Install, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install("memory", MEMORY)
    db = tmp_path / "out.db"
    code = cli.main(["run", "memory://9?fail=5", "--db", str(db), "--batch-size", "2"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    assert ("hookline run: input 'memory://9?fail=5': the source of plugin memory "
            "(memory-plugin 1.0) failed after line 5: ConnectionError: broker went away at "
            "event 5; what was read before is committed") in err
    # Lines 1-4 in two full batches, line 5 in the part of a batch read before the failure.
    assert _rows(db, "SELECT count(*) FROM events") == [(5,)]
    assert _rows(db, "SELECT offset, line FROM checkpoints") == [(5, 5)]


def test_a_source_that_cannot_be_opened_names_the_plugin(install: Install,
                                                         tmp_path: Path) -> None:
    install("memory", MEMORY)
    with pytest.raises(SourceError, match=r"^input 'memory://many': the source of plugin "
                                          r"memory \(memory-plugin 1\.0\) could not be opened: "
                                          r"ValueError: invalid literal"):
        _run(["memory://many"], tmp_path / "out.db")


def test_lines_of_text_instead_of_bytes_are_refused_naming_the_line(
    install: Install, tmp_path: Path
) -> None:
    install("memory", MEMORY)
    with pytest.raises(SourceError, match=r"failed before its first line: TypeError: "
                                          r"Memory\.lines\(\) gave str for line 1: each line "
                                          r"is bytes"):
        _run(["memory://3?text"], tmp_path / "out.db")


def test_a_source_that_yields_something_else_than_batches_is_named() -> None:
    class Odd(Source):
        def batches(self, batch_size: int, *, offset: int = 0, line: int = 0
                    ) -> Iterator[Batch]:
            yield Batch(self, [(1, b"{}")], 1, 1)
            yield [(2, b"{}")]  # type: ignore[misc]

    from hookline._sources import _PluginSource

    batches = _PluginSource(Odd("odd://"), "odd (odd 1.0)").batches(10)
    assert next(batches).end_line == 1
    with pytest.raises(SourceError, match=r"failed after line 1: TypeError: batches\(\) gave "
                                          r"\[\(2, b'\{\}'\)\], not a hookline.sources.Batch"):
        next(batches)


# -- the contract -----------------------------------------------------------------------------


def test_a_line_source_batches_its_lines_and_hands_over_the_part_read_before_a_failure(
) -> None:
    class Counting(LineSource):
        def lines(self, offset: int, line: int) -> Iterator[tuple[int, bytes, int]]:
            for n in range(offset, 7):
                if n == 5:
                    raise OSError("disk")
                yield line + 1 + n - offset, b"{}", n + 10  # positions are the source's own

    source = Counting("counting")
    batches = source.batches(2, offset=0, line=0)
    got = [(batch.lines, batch.end_offset, batch.end_line) for batch in
           (next(batches), next(batches), next(batches))]
    assert got == [([(1, b"{}"), (2, b"{}")], 11, 2), ([(3, b"{}"), (4, b"{}")], 13, 4),
                   ([(5, b"{}")], 14, 5)]
    with pytest.raises(OSError, match="disk"):
        next(batches)
    assert source.key == "counting" and source.size is None and source.resumable


def test_the_process_executor_reads_a_plugins_source_in_each_worker(
    install: Install, tmp_path: Path
) -> None:
    install("csv", CSV_SOURCE)
    rows = [f"p{n},u{n % 7},purchase,{1767225600000 + n},{n},EUR" for n in range(300)]
    rows[40] = "p40,u5,purchase,-1,1,EUR"
    table = _write_csv(tmp_path / "in.csv", rows)
    inline = _run([str(table)], tmp_path / "inline.db", batch_size=50)
    process = _run([str(table)], tmp_path / "process.db", batch_size=50, executor="process",
                   workers=2)
    assert (process.accepted, process.dead_lettered) == (inline.accepted,
                                                         inline.dead_lettered) == (299, 1)
    assert database_content(tmp_path / "process.db") == database_content(tmp_path / "inline.db")
