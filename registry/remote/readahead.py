"""Read a stream ahead in a thread, so network receive overlaps hashing and writing.

The consumer (hash + write, which release the GIL) runs on one core while the
producer thread keeps the socket drained on the other.  At most ``depth`` chunks
of about ``chunk`` bytes are buffered: memory stays flat whatever the blob size.
"""

from __future__ import annotations

import queue
import threading
from typing import BinaryIO

_END = object()


class ReadAhead:
    """A read-only stream fed by a thread reading ``stream``; errors surface in :meth:`read`."""

    def __init__(self, stream: BinaryIO, *, chunk: int = 1 << 20, depth: int = 16):
        self._stream = stream
        self._chunk = chunk
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._rest = b""
        self._thread = threading.Thread(target=self._produce, name="pybuild-readahead", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            parts: list[bytes] = []
            size = 0
            while data := self._stream.read(self._chunk):
                parts.append(data)
                size += len(data)
                if size >= self._chunk:
                    if not self._put(b"".join(parts)):
                        return
                    parts, size = [], 0
            if parts and not self._put(b"".join(parts)):
                return
            self._put(_END)
        except BaseException as err:  # handed to the consumer
            self._put(err)

    def read(self, size: int = -1) -> bytes:
        """The next buffered chunk (at most ``size`` bytes when given); ``b""`` at the end."""
        if not self._rest:
            if self._done:
                return b""
            item = self._queue.get()
            if item is _END:
                self._done = True
                return b""
            if isinstance(item, BaseException):
                self._done = True
                raise item
            self._rest = item
        if size is None or size < 0 or size >= len(self._rest):
            out, self._rest = self._rest, b""
        else:
            out, self._rest = self._rest[:size], self._rest[size:]
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._stream.close()

    def __enter__(self) -> "ReadAhead":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
