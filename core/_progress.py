"""What a run shows while it runs: a progress bar on a terminal, a log line now and then
elsewhere.

On a terminal (stderr is a TTY) the bar is tqdm's: the bytes read and the share of the
inputs, the time left, and the events, events per second, dead letters and duplicates so far.
tqdm is imported only then, so a run in a pipeline or a test pays nothing for it. Without a
terminal, ``--progress`` logs one line every ``every`` seconds (logger ``hookline.progress``,
INFO: stderr under the ``hookline`` command) with the same figures; without ``--progress``
nothing is shown. The figures are taken after each committed batch, so what is shown is
committed.

The share of the inputs counts bytes: those a run resumes after (committed before) count as
read, but not in the rate. It is known when every input has a size in bytes of what is read
(not a gzip file: its offsets are in the uncompressed text, its size compressed; not stdin).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._report import Report
    from .sources import Source

__all__ = ["Progress", "make_progress"]

log = logging.getLogger("hookline.progress")


def make_progress(enabled: bool | None, sources: Sequence[Source], every: float = 10.0
                  ) -> Progress:
    """The display of a run: ``enabled`` None shows the bar on a terminal and nothing
    elsewhere; True the bar on a terminal, else log lines every ``every`` seconds; False
    nothing."""
    if enabled is False:
        return Progress(sources)
    if sys.stderr.isatty():
        return Bar(sources)
    if enabled:
        return LogLines(sources, every)
    return Progress(sources)


class Progress:
    """Where a run is: the figures both displays show. This base shows nothing."""

    def __init__(self, sources: Sequence[Source]) -> None:
        sizes = [_size(source) for source in sources]
        #: The bytes of all the inputs, or None when one of them has no known size.
        self.total: int | None = (None if not sizes or any(size is None for size in sizes)
                                  else sum(size for size in sizes if size is not None))
        self.done_before = 0  # bytes of the inputs finished before the current one
        self.offset = 0  # in the current input
        self.skipped = 0  # bytes committed before this run (not read by it)
        self.current: Source | None = None
        self.started = time.monotonic()

    def source(self, source: Source, offset: int) -> None:
        """The run starts reading ``source`` after byte ``offset`` (committed before)."""
        if self.current is not None:
            self.done_before += _size(self.current) or self.offset
        self.current, self.offset = source, offset
        self.skipped += offset
        self._check(source, offset)

    def update(self, report: Report, offset: int) -> None:
        """A batch is committed: the current input is read up to byte ``offset``."""
        self.offset = offset
        self._check(self.current, offset)
        self.show(report)

    def _check(self, source: Source | None, offset: int) -> None:
        """An input read past its size is compressed after all: the share is unknown."""
        size = _size(source) if source is not None else None
        if size is not None and offset > size:
            self.total = None

    @property
    def position(self) -> int:
        """Bytes of the inputs behind the run, those committed before it included."""
        return self.done_before + self.offset

    def eta(self) -> float | None:
        """Seconds left at this run's rate of bytes, or None when unknown."""
        read = self.position - self.skipped
        elapsed = time.monotonic() - self.started
        if self.total is None or read <= 0 or elapsed <= 0:
            return None
        return max(0.0, (self.total - self.position) * elapsed / read)

    def figures(self, report: Report) -> str:
        """``12,000 events, 8,286 events/s, 120 dead-lettered, 3 duplicates``."""
        elapsed = time.monotonic() - self.started
        rate = report.read / elapsed if elapsed > 0 else 0.0
        text = (f"{report.read:,} events, {rate:,.0f} events/s, "
                f"{report.dead_lettered:,} dead-lettered")
        if report.duplicates:
            text += f", {report.duplicates:,} duplicates"
        return text + report.where(short=True)

    def show(self, report: Report) -> None:
        """Show where the run is (nothing, in this base)."""

    def close(self) -> None:
        """The run ended: take the display away."""


class Bar(Progress):
    """A tqdm bar on stderr: bytes and percent of the inputs, time left, the figures."""

    def __init__(self, sources: Sequence[Source]) -> None:
        super().__init__(sources)
        from tqdm import tqdm

        known = ("{percentage:3.0f}% |{bar}| {n_fmt}B of {total_fmt}B, {desc}, "
                 "{elapsed} elapsed, ETA {remaining}")
        unknown = "{n_fmt}B read, {desc}, {elapsed} elapsed, ETA ?"
        width = _columns()  # a terminal that tells no width (0) gets 100 columns
        self.bar = tqdm(total=self.total, unit="B", unit_scale=True, unit_divisor=1024,
                        file=sys.stderr, mininterval=0.2, smoothing=0, leave=False,
                        dynamic_ncols=bool(width), ncols=None if width else 100,
                        desc="0 events",
                        bar_format=known if self.total is not None else unknown)

    def source(self, source: Source, offset: int) -> None:
        before = self.position
        super().source(source, offset)
        # bytes committed before the run: behind it, but not in its rate (smoothing=0 makes
        # tqdm's rate (n - initial) / elapsed)
        self.bar.initial += self.position - before
        self.bar.n = self.position
        self.bar.refresh()

    def show(self, report: Report) -> None:
        bar = self.bar
        if self.total is None and bar.total is not None:
            bar.total = None
            bar.bar_format = "{n_fmt}B read, {desc}, {elapsed} elapsed, ETA ?"
        bar.set_description_str(self.figures(report), refresh=False)
        bar.update(self.position - bar.n)

    def close(self) -> None:
        self.bar.close()


class LogLines(Progress):
    """One log line every ``every`` seconds (and none for a run shorter than that)."""

    def __init__(self, sources: Sequence[Source], every: float) -> None:
        super().__init__(sources)
        self.every = every
        self.last = self.started

    def show(self, report: Report) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        where = ""
        if self.total is not None:
            eta = self.eta()
            where = (f", {100 * self.position / self.total:.1f}% of {_bytes(self.total)}"
                     + (f", ETA {_duration(eta)}" if eta is not None else ""))
        elif self.current is not None:
            where = f", {_bytes(self.position)} read"
        log.info("%s%s", self.figures(report), where,
                 extra=_fields(report, self.position, self.total))


def _fields(report: Report, position: int, total: int | None) -> dict[str, Any]:
    """The figures of a progress line as fields of its log record (``--log-format json``)."""
    return {"run_id": report.run_id, "read": report.read,
            "dead_lettered": report.dead_lettered, "duplicates": report.duplicates,
            "bytes": position, "bytes_total": total}


def _columns() -> int:
    """The width of the terminal on stderr (0 when it tells none)."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        return 0


def _size(source: Source) -> int | None:
    """The bytes of ``source`` its offsets count, when known (a gzip file's are not)."""
    size = getattr(source, "size", None)
    if size is None or source.name.endswith(".gz"):
        return None
    return int(size)


def _bytes(count: float) -> str:
    units = ("B", "KiB", "MiB", "GiB")
    at = 0
    while count >= 1024 and at < len(units) - 1:
        count /= 1024
        at += 1
    return f"{count:.0f} B" if at == 0 else f"{count:.1f} {units[at]}"


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
