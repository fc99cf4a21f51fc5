"""The stage time limit, and telling a real Ctrl-C from a stage's ``raise KeyboardInterrupt``.

One :class:`Watchdog` per pipeline, one thread for it while a batch runs (never a thread per
call; none left behind between batches, so a process executor may still fork). The per-event
loop writes the line it is on into ``beat[0]``, one store per event; the thread looks every
``poll`` seconds at that, and at which stage call the loop's thread is in (the line of the
innermost generated phase plan on its stack: nothing is recorded per call), and when both
have stayed the same for the limit, it interrupts the thread running the loop:

* in the main thread (``hookline run``, a worker process), with a signal to itself whose
  handler raises :class:`~hookline.errors._Overran` if that line is still the one running. A
  signal also ends a blocking call (``time.sleep``, a lock, a socket read): the handler runs
  when the call returns with EINTR, and what it raises comes out of the call (PEP 475);
* in another thread, with ``PyThreadState_SetAsyncExc``, which is seen at the next bytecode:
  a pure-Python loop stops, a blocking C call only when it returns.

C code that neither returns nor checks for signals (a huge regular expression backtracking,
an extension's busy loop) cannot be interrupted in-process: the process executor is the
answer for plugins that may do that.

The same context installs, in the main thread, a SIGINT handler raising
:class:`~hookline.errors.Interrupted` where Python's default one would raise a plain
KeyboardInterrupt: the per-event loop stops the run for that one, and treats any other
``BaseException`` out of a stage as that stage's failure.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import Any

from .errors import Interrupted, _Overran

__all__ = ["Watchdog"]


def _timer_signal() -> int | None:
    """The signal the watchdog sends to the main thread: a real-time one where the platform
    has them (no one else's handler is replaced), else SIGALRM if no one handles it; None:
    raise an asynchronous exception instead."""
    low = getattr(signal, "SIGRTMIN", None)
    if low is None and sys.platform.startswith("linux"):
        low = 34  # Python 3.10 names no real-time signal; glibc's SIGRTMIN
    if low is not None:
        return int(low) + 5
    alarm = getattr(signal, "SIGALRM", None)
    if alarm is not None and signal.getsignal(alarm) in (signal.SIG_DFL, None):
        return int(alarm)
    return None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted


def _position(frame: FrameType | None) -> tuple[Any, int] | None:
    """Which stage call ``frame``'s stack is in: the code and line of its innermost generated
    phase plan (each step calls its stage on a line of its own), or None."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<hookline generated phase"):
            return frame.f_code, frame.f_lineno
        frame = frame.f_back
    return None


def _async_raise(thread: int, error: type[BaseException] | None) -> None:
    """Raise ``error`` in ``thread`` at its next bytecode (None: cancel a pending one)."""
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread),
                                               None if error is None else ctypes.py_object(error))


#: Set in a process executor's worker: the exit status with which the process ends when a
#: stage call is still the same one a whole limit after it was interrupted.
exit_when_stuck: int | None = None


class Watchdog:
    """Interrupts the per-event loop's current stage call after ``limit`` seconds (0: off).

    ``with watchdog as beat:`` around a batch; ``beat[0] = line`` for each event.
    """

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.poll = min(1.0, max(0.005, limit / 10))
        self.beat: list[Any] = [None]
        self._lock = threading.Lock()
        self._armed = False
        self._thread: threading.Thread | None = None
        self._target = 0
        self._main = False
        self._number = 0
        self._firing: Any = None  # the beat the handler may interrupt
        self._at: tuple[Any, int] | None = None  # and the stage call
        self._restore: list[tuple[int, Any]] = []
        self._stop = threading.Event()

    def __enter__(self) -> list[Any]:
        if threading.current_thread() is threading.main_thread():
            self._install(signal.SIGINT, _interrupt, only_over=signal.default_int_handler)
        if not self.limit:
            return self.beat
        self._main = threading.current_thread() is threading.main_thread()
        number = _timer_signal() if self._main else None
        if number is not None:
            self._install(number, self._on_signal, only_over=None)
            self._number = number
        self._main = number is not None
        with self._lock:
            self._target = threading.get_ident()
            self.beat[0] = None
            self._armed = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="hookline-watchdog",
                                        daemon=True)
        self._thread.start()
        return self.beat

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        with self._lock:
            if self._armed and not self._main:
                _async_raise(self._target, None)  # one the loop has not seen yet
            self._armed = False
            self._firing = None
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        while self._restore:
            number, handler = self._restore.pop()
            signal.signal(number, handler)

    def _install(self, number: int, handler: Any, *, only_over: Any) -> None:
        current = signal.getsignal(number)
        if only_over is not None and current is not only_over:
            return  # someone else's handler (the CLI's, an application's): theirs stays
        signal.signal(number, handler)
        self._restore.append((number, current))

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # In the main thread, between two bytecodes of whatever it runs: still that call?
        if (self._armed and self._firing is not None and self._firing is self.beat[0]
                and _position(frame) == self._at):
            self._firing = None
            raise _Overran

    def _watch(self) -> None:
        last: Any = None
        fired: tuple[Any, Any] = (None, None)  # the beat and call last interrupted
        since = time.monotonic()
        while not self._stop.wait(self.poll):
            now = time.monotonic()
            with self._lock:
                if not self._armed:
                    return
                beat = self.beat[0]
                at = _position(sys._current_frames().get(self._target))
                if beat is not last or at != self._at:
                    last, self._at, since = beat, at, now
                    continue
                if beat is None or at is None or now - since < self.limit:
                    continue
                since = now  # again after another limit, if the stage swallows it
                if exit_when_stuck is not None and fired[0] is beat and fired[1] == at:
                    os._exit(exit_when_stuck)  # interrupted once, still stuck: a worker ends
                fired = (beat, at)
                if self._main:
                    self._firing = beat
                    signal.pthread_kill(self._target, self._number)
                else:
                    _async_raise(self._target, _Overran)
