"""Transfer progress: per-blob byte bars with ``rich`` on a terminal, plain lines otherwise."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Any, Iterator, TextIO

from .. import oci

_LABELS = {
    "pull": {"copied": "Pull complete", "exists": "Already exists", "mounted": "Mounted"},
    "push": {"copied": "Pushed", "exists": "Layer already exists", "mounted": "Mounted"},
    "copy": {"copied": "Copied", "exists": "Already exists", "mounted": "Mounted"},
}


def short(desc: oci.Descriptor) -> str:
    """The 12 hex digits docker uses to name a layer in progress output."""
    return desc.digest.split(":", 1)[-1][:12]


def human(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1000
    raise AssertionError("unreachable")


class PlainReporter:
    """One line per finished blob, for logs and CI."""

    def __init__(self, action: str, out: TextIO):
        self.labels = _LABELS[action]
        self.out = out
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()

    def begin(self, desc: oci.Descriptor) -> None:
        self._started[desc.digest] = time.monotonic()

    def advance(self, desc: oci.Descriptor, nbytes: int) -> None:
        pass

    def finish(self, desc: oci.Descriptor, status: str) -> None:
        line = f"{short(desc)}: {self.labels.get(status, status)}"
        if status == "copied":
            took = time.monotonic() - self._started.get(desc.digest, time.monotonic())
            line += f" ({human(desc.size)} in {took:.1f}s)"
        with self._lock:
            print(line, file=self.out, flush=True)

    def close(self) -> None:
        pass


class RichReporter:
    """A live ``rich`` progress bar per blob."""

    def __init__(self, action: str, out: TextIO):
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self.labels = _LABELS[action]
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), console=Console(file=out), transient=False)
        self._tasks: dict[str, Any] = {}  # rich's TaskIDs
        self._lock = threading.Lock()
        self.progress.start()

    def _task(self, desc: oci.Descriptor) -> Any:
        with self._lock:
            if desc.digest not in self._tasks:
                self._tasks[desc.digest] = self.progress.add_task(short(desc), total=desc.size)
            return self._tasks[desc.digest]

    def begin(self, desc: oci.Descriptor) -> None:
        self.progress.reset(self._task(desc), total=desc.size)

    def advance(self, desc: oci.Descriptor, nbytes: int) -> None:
        self.progress.advance(self._task(desc), nbytes)

    def finish(self, desc: oci.Descriptor, status: str) -> None:
        self.progress.update(self._task(desc), completed=desc.size,
                             description=f"{short(desc)}: {self.labels.get(status, status)}")

    def close(self) -> None:
        self.progress.stop()


def reporter_for(action: str, quiet: bool = False, out: TextIO | None = None) -> "PlainReporter | RichReporter | None":
    """Bars on a terminal, lines otherwise, nothing with ``quiet``."""
    if quiet:
        return None
    out = out or sys.stderr
    return RichReporter(action, out) if out.isatty() else PlainReporter(action, out)


@contextlib.contextmanager
def reporting(action: str, quiet: bool = False) -> Iterator["PlainReporter | RichReporter | None"]:
    """:func:`reporter_for`, closed (the live display stopped) when the block ends."""
    reporter = reporter_for(action, quiet)
    try:
        yield reporter
    finally:
        if reporter is not None:
            reporter.close()
