"""Stopping on SIGTERM or SIGINT with nothing unsafe inside the signal handler.

Python runs a signal handler in the main thread between two bytecodes, and
that may be while the main thread is inside `threading.Event.wait()` holding
the Event's lock. A handler that calls `Event.set()` then waits for that lock
forever: `make up` hung like that when make forwarded a second SIGTERM. A
handler that logs can likewise re-enter stderr's buffered writer. So the
handler here only records the signal number (one attribute assignment, no
lock), and the process's main loop does the stopping.

Whoever waits is woken at once: Python's C-level handler writes a byte to
the wakeup fd (`signal.set_wakeup_fd`), and the Python handler writes one too.

    stop = StopSignals().install()      # in the main thread, once
    while not stop.wait(0.5):
        ...                             # the main loop's work
    ...                                 # stop, from the main loop
"""
from __future__ import annotations

import os
import select
import signal
import time

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequested(Exception):
    """A stop was asked for while waiting for something else (a service to start, say)."""


class StopSignals:
    """A one-way stop latch that SIGTERM and SIGINT set; `is_set` and `wait` as on `threading.Event`."""

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self.signum: int | None = None  # the first stop signal received, if any
        self._requested = False

    def install(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> "StopSignals":
        """Handle `signals` (from the main thread). SIGINT is handled even if it was ignored when we started."""
        for signum in signals:
            signal.signal(signum, self._on_signal)
        signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        return self

    def _on_signal(self, signum: int, frame: object) -> None:
        # Nothing here may take a lock, log, or print: see the module's docstring.
        if self.signum is None:
            self.signum = signum
        self._wake()

    def set(self) -> None:
        """Ask for a stop from code (never from a signal handler: that is what install() is for)."""
        self._requested = True
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._write_fd, b"\0")
        except OSError:
            pass  # the pipe is full, so whoever waits is woken already

    def is_set(self) -> bool:
        return self._requested or self.signum is not None

    @property
    def reason(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else "a stop request"

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a stop is requested or `timeout` seconds pass; answer whether a stop is requested."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            readable, _, _ = select.select([self._read_fd], [], [], remaining)
            if readable and not self.is_set():
                # Woken before the Python handler ran (it runs in the main thread, and writes its own byte),
                # or by another handled signal: take the byte and look again.
                try:
                    os.read(self._read_fd, 512)
                except BlockingIOError:
                    pass
        return self.is_set()
