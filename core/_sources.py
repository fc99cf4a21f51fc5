"""hookline's own source, JSON lines from files, globs, ``.gz`` files or ``-`` (stdin), and the
resolution of a run's inputs to sources: built in, or offered by a plugin.

:class:`FileSource` reads bytes in chunks, splits them into lines and knows the byte offset
after every line, so a run can commit "everything up to here" and a re-run can resume exactly
there. A file is identified by its real path, device and inode
(:func:`~hookline.sources.file_key`): appending to it keeps its identity (a resumed run reads
only the new lines); replacing it makes a new source.

What it hands over is bounded, whatever the input: a line over
:data:`~hookline._limits.MAX_LINE_BYTES` is never held whole (it is read to its end while
counting, and handed over as a :class:`~hookline._limits.CutLine` of its first bytes); a
corrupt or truncated gzip file ends in one ``CutLine`` naming the problem, after every
complete line before it. ``\\n``, ``\\r\\n`` and ``\\r`` all end a line, and a UTF-8 byte order
mark at the start of an input is skipped.

:func:`expand_inputs` turns the inputs of a run into sources. ``-`` is stdin; a
``scheme://…`` input is read by the source a plugin offers for that scheme (none: a
:class:`~hookline.errors.UsageError` naming the schemes installed); a path or glob pattern
names files, each read by the source a plugin offers for its suffix (the longest that
matches), else by :class:`FileSource`. A plugin's source is wrapped so that what it raises
stops the run as a :class:`~hookline.errors.SourceError` naming the plugin.
"""

from __future__ import annotations

import glob
import os
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any

from ._limits import KEPT_BYTES, MAX_LINE_BYTES, CutLine
from .errors import PluginError, SourceError, UsageError, short_repr
from .sources import Batch, Source, file_key

if TYPE_CHECKING:
    from ._pipeline import Pipeline

# Batch and Source are the contract (hookline.sources), listed for the modules that import
# them from here with the sources they deal in.
__all__ = ["CHUNK_BYTES", "Batch", "FileSource", "Source", "expand_inputs", "open_input"]

#: How much is read (or decompressed) at a time.
CHUNK_BYTES = 1 << 16
_BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"
_ENDINGS = re.compile(rb"(\r\n|\r|\n)")
#: While an over-long line is skipped, a batch ends (before the line) every this many bytes,
#: so that the run loop can hear a stop request during an endless line (``- < /dev/zero``).
_BEAT_BYTES = 1 << 24
#: ``scheme://`` at the start of an input: a URL, read by a plugin's source.
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
#: What ``hookline_sources`` may offer: a URL scheme (without ``://``) or a file suffix.
_SCHEME_KEY = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_SUFFIX_KEY = re.compile(r"\.[\w.+\-]+")


class _Unreadable(Exception):
    """The rest of an input cannot be read (corrupt or truncated compressed data)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class FileSource(Source):
    """One input of JSON lines: a path (plain or gzip) or stdin (``-``, not resumable)."""

    def __init__(self, name: str) -> None:
        self.is_stdin = name == "-"
        if self.is_stdin:
            super().__init__(name)
            self.resumable = False
        else:
            super().__init__(name, key=file_key(name), size=os.path.getsize(name))

    @classmethod
    def named(cls, name: str) -> FileSource:
        """A source that is only a name (lines replayed from the database), not resumable."""
        source = cls.__new__(cls)
        source.name, source.key, source.size = name, name, None
        source.is_stdin, source.resumable = False, False
        return source

    def _chunks(self, offset: int) -> Iterator[bytes]:
        """The input's bytes from ``offset`` on (decompressed), in chunks.

        A file is gzip when its name ends in ``.gz``, or when it starts with the gzip magic
        bytes and a valid gzip header; any other file is plain text. Raises
        :class:`_Unreadable` where compressed data turns out corrupt or truncated.
        """
        if self.is_stdin:
            stream = sys.stdin.buffer
            read = getattr(stream, "read1", stream.read)  # what is there: no waiting
            yield from _skip(_plain(read, b""), offset)
            return
        with open(self.name, "rb", buffering=0) as handle:
            head = handle.read(CHUNK_BYTES)
            if self.name.endswith(".gz") or (head[:2] == _GZIP_MAGIC and _gzip_header(head)):
                yield from _skip(_gunzip(handle.read, head), offset)
                return
            if offset:
                handle.seek(offset)
                head = b""
            yield from _plain(handle.read, head)

    def batches(self, batch_size: int, *, offset: int = 0, line: int = 0) -> Iterator[Batch]:
        """Batches of up to ``batch_size`` non-blank lines, starting after ``offset``/``line``.

        A last line without a line ending is still read (it may be truncated: validation
        decides). Blank lines are skipped but counted in line numbers. A line over the size
        limit, or the unreadable rest of a corrupt gzip file, comes as a
        :class:`~hookline._limits.CutLine`.
        """
        position, number = offset, line
        lines: list[tuple[int, bytes]] = []
        append = lines.append
        for pieces, widths in _lines(self._chunks(offset), offset):
            if not pieces:  # deep in an endless line: end the batch before it
                yield Batch(self, lines, position, number)
                lines = []
                append = lines.append
                continue
            for raw, width in zip(pieces, widths):
                length = len(raw)
                start = position
                position += length + width  # width: the line ending, and what was cut
                number += 1
                if length > MAX_LINE_BYTES:
                    raw = CutLine(raw[:KEPT_BYTES], _too_long(length, start))
                elif (not raw or raw.isspace()) and type(raw) is not CutLine:
                    continue  # blank (the rest of a corrupt file may be empty: kept)
                append((number, raw))
                if len(lines) >= batch_size:
                    yield Batch(self, lines, position, number)
                    lines = []
                    append = lines.append
        if lines or number > line:
            yield Batch(self, lines, position, number)


def _too_long(length: int, start: int) -> str:
    return (f"line of {length:,} bytes exceeds the limit of {MAX_LINE_BYTES:,} "
            f"(at byte {start:,}; kept: its first {KEPT_BYTES:,} bytes)")


def _lines(chunks: Iterator[bytes], offset: int
           ) -> Iterator[tuple[list[bytes], Iterable[int]]]:
    """Lines of the chunks, chunk by chunk: ``(lines, widths)``, each line without its
    ending and the number of bytes after it that belong to it (its ending, a byte order
    mark before it, or the part of it that was cut), so that the offsets add up exactly.

    Holds at most one line of :data:`MAX_LINE_BYTES` plus a chunk: a longer line is read to
    its end while counting, and comes as a :class:`CutLine` of its first bytes.
    """
    pending = b""  # the start of a line whose end is not read yet
    total = 0  # bytes taken from the chunks (and a skipped byte order mark)
    credit = 0  # bytes before the next line that belong to it (a byte order mark)
    cut: bytes | None = None  # the first bytes of an over-long line being skipped
    cut_length = at = 0  # how much of it is behind us, and where it starts
    after_cr = False  # the over-long line ended with a \r that closed a chunk
    try:
        if offset == 0:  # a byte order mark at the start of the input is skipped
            for chunk in chunks:
                pending += chunk
                if len(pending) >= len(_BOM):
                    break
            if pending.startswith(_BOM):
                pending, credit = pending[len(_BOM):], len(_BOM)
                total = credit
            chunks = _prefixed(pending, chunks)
            pending = b""
        for chunk in chunks:
            total += len(chunk)
            if cut is not None:  # skipping the rest of an over-long line
                if after_cr:  # its \r closed the last chunk: is it a \r\n?
                    end, width = 0, 2 if chunk[:1] == b"\n" else 1
                    taken = width - 1
                else:
                    end = _first_ending(chunk)
                    if end < 0:
                        cut_length += len(chunk)
                        if cut_length // _BEAT_BYTES != (cut_length - len(chunk)) // _BEAT_BYTES:
                            yield [], ()  # a batch may end before this line: a stop is heard
                        continue
                    cut_length += end
                    if chunk[end] == 0x0D and end + 1 == len(chunk):
                        after_cr = True
                        continue
                    width = 2 if chunk[end:end + 2] == b"\r\n" else 1
                    taken = end + width
                yield [CutLine(cut, _too_long(cut_length, at))], [
                    cut_length - len(cut) + width + credit]
                chunk = chunk[taken:]
                cut, cut_length, after_cr, credit = None, 0, False, 0
            widths: Iterable[int]
            if b"\r" in chunk or pending[-1:] == b"\r":
                pieces, ends = _split_crlf(pending + chunk)
                if credit and len(pieces) > 1:
                    ends[0] += credit
                    credit = 0
                widths = ends
            else:
                pieces = chunk.split(b"\n")
                pieces[0] = pending + pieces[0]
                widths = repeat(1)
                if credit and len(pieces) > 1:
                    widths = chain((1 + credit,), widths)
                    credit = 0
            pending = pieces.pop()
            if pieces:
                yield pieces, widths
            if len(pending) > MAX_LINE_BYTES and len(pending.rstrip(b"\r")) > MAX_LINE_BYTES:
                at = offset + total - len(pending)
                after_cr = pending.endswith(b"\r")
                cut, cut_length = pending[:KEPT_BYTES], len(pending) - after_cr
                pending = b""
        if cut is not None:
            yield [CutLine(cut, _too_long(cut_length, at))], [
                cut_length - len(cut) + after_cr + credit]
        elif pending:
            line = pending[:-1] if pending.endswith(b"\r") else pending
            yield [line], [len(pending) - len(line) + credit]
    except _Unreadable as problem:
        head = cut if cut is not None else pending[:KEPT_BYTES]
        read = cut_length + after_cr if cut is not None else len(pending)
        # One byte past what could be read: a resumed run finds nothing more to read.
        yield [CutLine(head, problem.reason)], [read - len(head) + credit + 1]


def _first_ending(chunk: bytes) -> int:
    """Where the first \\n or \\r of ``chunk`` is, or -1."""
    newline, carriage = chunk.find(b"\n"), chunk.find(b"\r")
    if carriage < 0 or 0 <= newline < carriage:
        return newline
    return carriage


def _split_crlf(data: bytes) -> tuple[list[bytes], list[int]]:
    """``data`` split at ``\\r\\n``, ``\\r`` and ``\\n``, with each ending's width; the last
    piece is the start of a line not ended yet (a final ``\\r`` stays on it: the ``\\n`` of
    a ``\\r\\n`` may be in the next chunk)."""
    held = data.endswith(b"\r")
    parts = _ENDINGS.split(data[:-1] if held else data)
    pieces = parts[0::2]
    if held:
        pieces[-1] += b"\r"
    return pieces, [len(ending) for ending in parts[1::2]]


def _prefixed(first: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from chunks


def _plain(read: Callable[[int], bytes], head: bytes) -> Iterator[bytes]:
    if head:
        yield head
    while chunk := read(CHUNK_BYTES):
        yield chunk


def _gzip_header(head: bytes) -> bool:
    """Whether ``head`` starts like gzip data (a plain file may start with 1f 8b too)."""
    try:
        zlib.decompressobj(31).decompress(head, 1)
    except zlib.error:
        return False
    return True


def _gunzip(read: Callable[[int], bytes], head: bytes) -> Iterator[bytes]:
    """The decompressed bytes of gzip data (several members, zero padding allowed), at most
    a chunk at a time, whatever the compression ratio."""
    decompressor = zlib.decompressobj(31)
    data, produced, started, full = head, 0, False, False
    while True:
        if not data and not full:
            data = read(CHUNK_BYTES)
            if not data:
                if started:
                    raise _Unreadable(
                        f"truncated gzip file: it ends after {produced:,} bytes, before its "
                        "end-of-stream marker (the rest is missing)")
                return
        if not started:
            data = data.lstrip(b"\0")  # zero padding between or after members
            if not data:
                continue
        saved = decompressor.copy()
        try:
            out = decompressor.decompress(data, CHUNK_BYTES)
        except zlib.error as exc:
            out = _salvage(saved, data)  # what came out before the damage
            if out:
                yield out
            raise _Unreadable(f"corrupt gzip file: {exc} (after {produced + len(out):,} "
                              "bytes; the rest of the file cannot be read)") from None
        started, full = True, len(out) == CHUNK_BYTES
        data = decompressor.unconsumed_tail
        if decompressor.eof:  # a member ends; another may follow
            data = decompressor.unused_data + data
            decompressor = zlib.decompressobj(31)
            started = full = False
        if out:
            produced += len(out)
            yield out


def _salvage(decompressor: Any, data: bytes) -> bytes:
    """What ``decompressor`` makes of ``data`` before it fails, fed a few bytes at a time (a
    failing call returns nothing, not even what it decompressed before the damage)."""
    out: list[bytes] = []
    try:
        for start in range(0, len(data), 16):
            out.append(decompressor.decompress(data[start:start + 16], CHUNK_BYTES))
            if sum(map(len, out)) >= CHUNK_BYTES or decompressor.eof:
                break
    except zlib.error:
        pass
    return b"".join(out)[:CHUNK_BYTES]


def _skip(chunks: Iterator[bytes], offset: int) -> Iterator[bytes]:
    """``chunks`` from ``offset`` on."""
    remaining = offset
    while remaining > 0:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except _Unreadable:
            return  # a run before this one dead-lettered the rest (its checkpoint is past it)
        if len(chunk) > remaining:
            yield chunk[remaining:]
            break
        remaining -= len(chunk)
    yield from chunks


class _PluginSource(Source):
    """A plugin's source as the run sees it: what the plugin's code raises, or a batch that
    is not one, stops the run as a :class:`SourceError` naming the plugin and the line after
    which it failed (the batches before are committed)."""

    def __init__(self, inner: Source, plugin: str) -> None:
        super().__init__(inner.name, key=inner.key, size=inner.size)
        self.resumable = inner.resumable
        self.inner = inner
        self.plugin = plugin

    def batches(self, batch_size: int, *, offset: int = 0, line: int = 0) -> Iterator[Batch]:
        last = line
        try:
            for batch in self.inner.batches(batch_size, offset=offset, line=line):
                _check(batch)
                last = batch.end_line
                yield batch
        except Exception as exc:
            raise SourceError(self.name, self.plugin, f"{type(exc).__name__}: {exc}",
                              last) from exc


def _check(batch: Any) -> None:
    """Raise TypeError, saying what is wrong, unless ``batch`` is a Batch of
    ``(int, bytes)`` lines."""
    if not isinstance(batch, Batch):
        raise TypeError(f"batches() gave {short_repr(batch)}, not a hookline.sources.Batch")
    for item in batch.lines:
        if not (type(item) is tuple and len(item) == 2 and type(item[0]) is int
                and isinstance(item[1], bytes)):
            raise TypeError(f"a batch holds {short_repr(item)}: each line is a pair (line "
                            "number, bytes of JSON text)")


@dataclass(frozen=True)
class _Offer:
    """A source class a plugin offers, and the plugin as messages name it."""

    cls: type[Source]
    plugin: str


class _Offers:
    """The sources the plugins offer through ``hookline_sources``, by URL scheme and by file
    suffix, each checked when collected: a mistake raises :class:`PluginError` naming the
    plugin and the fix."""

    def __init__(self, pipeline: Pipeline | None) -> None:
        self.schemes: dict[str, _Offer] = {}
        self.suffixes: dict[str, _Offer] = {}
        if pipeline is None:
            return
        labels = {record.name: record.label for record in pipeline.plugins.records}
        for impl in pipeline.plugins.impls("hookline_sources"):
            plugin = labels.get(impl.plugin_name, impl.plugin_name)
            try:
                found = impl.function() or {}
            except Exception as exc:
                raise PluginError(f"{plugin}: hookline_sources() raised "
                                  f"{type(exc).__name__}: {exc}") from exc
            if not isinstance(found, Mapping):
                raise PluginError(f"{plugin}: hookline_sources() returned "
                                  f"{type(found).__name__}; return a mapping of URL scheme "
                                  'or file suffix to Source class ({".csv": CsvSource})')
            for key, cls in found.items():
                self._add(plugin, key, cls)

    def _add(self, plugin: str, key: Any, cls: Any) -> None:
        if isinstance(key, str) and _SUFFIX_KEY.fullmatch(key):
            table, shown = self.suffixes, f"*{key.lower()} files"
        elif isinstance(key, str) and _SCHEME_KEY.fullmatch(key):
            table, shown = self.schemes, f"{key.lower()}:// URLs"
        else:
            raise PluginError(f"{plugin}: hookline_sources() offers {key!r}: a key is a URL "
                              'scheme without :// ("kafka") or a file suffix with its dot '
                              '(".csv")')
        if not (isinstance(cls, type) and issubclass(cls, Source)):
            raise PluginError(f"{plugin}: hookline_sources() offers {short_repr(cls)} for "
                              f"{key!r}: a source is a subclass of hookline.sources.Source")
        key = key.lower()
        if key in table:
            raise PluginError(f"plugins {table[key].plugin} and {plugin} both offer a source "
                              f"for {shown}; deselect one (HOOKLINE_DISABLE_PLUGINS)")
        table[key] = _Offer(cls, plugin)

    def open(self, name: str) -> Source:
        """The source of the input ``name`` (``-``, a URL, or the path of a file)."""
        if name == "-":
            return FileSource(name)
        url = _URL.match(name)
        if url:
            offer = self.schemes.get(url.group(1).lower())
            if offer is None:
                raise self._unknown(name, url.group(1).lower())
        else:
            lowered = name.lower()
            suffixes = [suffix for suffix in self.suffixes if lowered.endswith(suffix)]
            if not suffixes:
                return FileSource(name)
            offer = self.suffixes[max(suffixes, key=len)]
        try:
            source = offer.cls(name)
        except Exception as exc:
            raise SourceError(name, offer.plugin, f"{type(exc).__name__}: {exc}", None
                              ) from exc
        return _PluginSource(source, offer.plugin)

    def _unknown(self, name: str, scheme: str) -> UsageError:
        from ._suggest import did_you_mean

        installed = ", ".join(f"{key}:// ({offer.plugin})"
                              for key, offer in sorted(self.schemes.items()))
        return UsageError(
            f"input {name!r}: no installed source reads {scheme}:// URLs"
            f"{did_you_mean(scheme, self.schemes)}; installed: "
            f"{installed or 'none'}. A plugin adds a scheme through the hookline_sources hook "
            "(see the plugin guide, Writing a source)")


def expand_inputs(inputs: Iterable[str], pipeline: Pipeline | None = None) -> list[Source]:
    """The sources of a run's inputs: ``-``, URLs read by the sources ``pipeline``'s plugins
    offer, paths and glob patterns. A pattern matching nothing or a missing file is a
    FileNotFoundError naming it; a URL whose scheme no plugin offers, a UsageError naming
    the schemes installed."""
    offers = _Offers(pipeline)
    sources: list[Source] = []
    for item in inputs:
        if item == "-" or _URL.match(item):
            sources.append(offers.open(item))
            continue
        matches = sorted(glob.glob(item)) if glob.has_magic(item) else [item]
        if not matches:
            raise FileNotFoundError(f"no input matches {item!r}")
        for path in matches:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"input {path!r} does not exist or is not a file")
            sources.append(offers.open(path))
    return sources


def open_input(name: str, pipeline: Pipeline | None = None) -> Source:
    """The source of one input as :func:`expand_inputs` made it (its ``name``): how a worker
    process opens, with its own plugins, the input the run gave it."""
    return _Offers(pipeline).open(name)
