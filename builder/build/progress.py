"""BuildKit-like progress lines: ``#N [stage i/n] STEP``, CACHED, DONE with durations.

Plain text when the output is not a terminal (or ``--progress plain``); on a terminal
(``tty``) the same lines, with the step header in bold and RUN output dimmed.  RUN
output is streamed as it comes, prefixed with the step number and elapsed time.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    """Thread-safe step reporter; ``quiet`` prints nothing."""

    def __init__(self, mode: str = "auto", stream: TextIO | None = None, quiet: bool = False):
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "tty" if self.stream.isatty() else "plain"
        self.tty = mode == "tty"
        self.quiet = quiet
        self._lock = threading.Lock()
        self._counter = 0

    def _print(self, text: str) -> None:
        if self.quiet:
            return
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def step(self, label: str) -> "Step":
        """Announce a step; returns its handle."""
        with self._lock:
            self._counter += 1
            number = self._counter
        step = Step(self, number)
        self._print(f"\033[1m#{number} {label}\033[0m" if self.tty else f"#{number} {label}")
        return step

    def message(self, text: str) -> None:
        """A line outside any step."""
        self._print(text)


class Step:
    """One announced step."""

    def __init__(self, progress: Progress, number: int):
        self.progress = progress
        self.number = number
        self.started = time.monotonic()

    def output(self, line: str) -> None:
        """A line of the step's output."""
        elapsed = time.monotonic() - self.started
        text = f"#{self.number} {elapsed:.3f} {line}"
        self.progress._print(f"\033[2m{text}\033[0m" if self.progress.tty else text)

    def cached(self) -> None:
        self.progress._print(f"#{self.number} CACHED")

    def done(self, note: str = "") -> None:
        suffix = f" ({note})" if note else ""
        self.progress._print(f"#{self.number} DONE {time.monotonic() - self.started:.1f}s{suffix}")

    def error(self, message: str) -> None:
        self.progress._print(f"#{self.number} ERROR: {message}")
