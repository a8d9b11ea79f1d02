"""Container output: the json-lines log, relaying pipes and ptys, terminal raw mode.

A log line is ``{"stream": "stdout"|"stderr", "time": RFC3339, "log": text}``; bytes
that are not UTF-8 survive (``surrogateescape``, escaped by JSON).
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import time

from .containers import now

TYPE_CHECKING = False  # typing itself is not imported on the run path
if TYPE_CHECKING:
    from typing import Callable, Iterator

LOG_FILE = "log.jsonl"


class LogWriter:
    """Appends output chunks to a container's log, one JSON object per line of output."""

    def __init__(self, path: str):
        self._fh = open(path, "ab", buffering=0)
        self._partial = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, data: bytes) -> None:
        """Log ``data`` (complete lines now, a trailing partial line later)."""
        data = self._partial[stream] + data
        *lines, rest = data.split(b"\n")
        self._partial[stream] = rest
        out = b"".join(self._record(stream, line + b"\n") for line in lines)
        if out:
            self._fh.write(out)

    def _record(self, stream: str, data: bytes) -> bytes:
        text = data.decode("utf-8", "surrogateescape")
        return json.dumps({"stream": stream, "time": now(), "log": text}).encode() + b"\n"

    def close(self) -> None:
        """Flush partial lines and close."""
        for stream, rest in self._partial.items():
            if rest:
                self._fh.write(self._record(stream, rest))
        self._fh.close()


def read_log(path: str, follow: bool = False, running: Callable[[], bool] = lambda: False) -> Iterator[tuple[str, bytes]]:
    """``(stream, bytes)`` records of a log; with ``follow``, wait for more while ``running()``."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return
    with fh:
        buffer = b""
        while True:
            chunk = fh.readline()
            if chunk.endswith(b"\n"):
                record = json.loads(buffer + chunk)
                buffer = b""
                yield record["stream"], record["log"].encode("utf-8", "surrogateescape")
                continue
            buffer += chunk
            if not follow:
                return
            if not running():
                follow = False  # one last pass for what was written before the exit
            time.sleep(0.05)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data):]
        except BlockingIOError:
            select.select([], [fd], [])


def relay(sources: dict[int, tuple[str, int | None]], log: LogWriter | None, stdin: tuple[int, int] | None = None) -> None:
    """Copy each source fd to its echo fd and/or the log until every source is at EOF.

    ``sources``: fd -> (stream name, echo fd or None).  ``stdin``: (from fd, to fd),
    copied while open; the ``to`` fd is closed at EOF.
    """
    poller = select.poll()
    open_sources = dict(sources)
    for fd in open_sources:
        poller.register(fd, select.POLLIN)
    if stdin is not None:
        poller.register(stdin[0], select.POLLIN)
    while open_sources:
        for fd, _event in poller.poll():
            if stdin is not None and fd == stdin[0]:
                data = _read(fd)
                if data:
                    _write_all(stdin[1], data)
                else:
                    poller.unregister(fd)
                    if stdin[1] not in open_sources:  # a pipe: EOF for the container; a pty master stays
                        os.close(stdin[1])
                    stdin = None
                continue
            data = _read(fd)
            if not data:
                poller.unregister(fd)
                del open_sources[fd]
                continue
            stream, echo = open_sources[fd]
            if echo is not None:
                try:
                    _write_all(echo, data)
                except BrokenPipeError:
                    open_sources[fd] = (stream, None)
            if log is not None:
                log.write(stream, data)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError as err:
        if err.errno == errno.EIO:  # pty master after the last slave closed
            return b""
        raise


class RawTerminal:
    """Context manager: put a terminal fd in raw mode, restore it on exit."""

    def __init__(self, fd: int):
        self.fd = fd
        self._saved: list | None = None

    def __enter__(self) -> "RawTerminal":
        import termios
        import tty

        if os.isatty(self.fd):
            self._saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd, termios.TCSANOW)  # keep what was typed ahead
        return self

    def __exit__(self, *exc) -> None:
        import termios

        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)


def copy_winsize(src: int, dst: int) -> None:
    """Give the pty ``dst`` the window size of terminal ``src`` (if it is one)."""
    import fcntl
    import termios

    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def follow_winsize(src: int, master: int) -> None:
    """Copy the window size now and on every SIGWINCH."""
    copy_winsize(src, master)
    signal.signal(signal.SIGWINCH, lambda *_: copy_winsize(src, master))
