"""Open a layer blob as its uncompressed tar stream, whatever it claims to be.

Archives from the wild lie about their media type, so the compression is detected
from the first bytes: gzip, zstd, or else plain tar.  Decompression is streamed
(bounded reads), so a small blob that inflates to a huge stream costs no memory.
Corrupt compressed data raises BadArchive.  (A zstd stream cut at a block boundary
ends quietly in python-zstandard; the tar reader then reports the archive as
truncated, since it requires the end-of-archive marker.)
"""

from __future__ import annotations

import io
from typing import IO, cast

import zstandard
from isal import igzip, isal_zlib

from ..errors import BadArchive

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class _Prefixed(io.RawIOBase):
    """A read-only stream: ``head`` followed by the rest of ``tail``."""

    def __init__(self, head: bytes, tail: IO[bytes]):
        self._head = memoryview(head)
        self._tail = tail

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if self._head:
            n = min(len(buf), len(self._head))
            buf[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        readinto = getattr(self._tail, "readinto", None)
        if readinto is not None:
            return readinto(buf) or 0
        data = self._tail.read(len(buf))
        buf[:len(data)] = data
        return len(data)


class _Decompressed(io.RawIOBase):
    """A decompressing stream whose failures are :class:`BadArchive` errors."""

    def __init__(self, inner: IO[bytes], kind: str):
        self._inner = inner
        self._kind = kind

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        try:
            return self._inner.readinto(buf) or 0  # type: ignore[attr-defined]  # every decompressor has it
        except (EOFError, OSError, zstandard.ZstdError, isal_zlib.error) as err:  # type: ignore[misc]
            raise BadArchive(f"corrupt or truncated {self._kind} layer data: {err}") from None

    def close(self) -> None:
        self._inner.close()
        super().close()


def detect_compression(head: bytes) -> str:
    """``gzip``, ``zstd`` or ``none`` from a stream's first bytes."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def _read_head(fileobj: IO[bytes], size: int) -> bytes:
    head = b""
    while len(head) < size and (more := fileobj.read(size - len(head))):
        head += more
    return head


def open_layer(fileobj: IO[bytes] | io.RawIOBase, media_type: str | None = None) -> IO[bytes]:
    """The uncompressed tar stream of a layer blob (use as a context manager).

    ``media_type`` is informative only: the bytes decide.  Closing the result does
    not close ``fileobj``.
    """
    stream = cast(IO[bytes], fileobj)  # a raw stream reads the same way
    head = _read_head(stream, 4)
    raw = _Prefixed(head, stream)
    kind = detect_compression(head)
    if kind == "gzip":
        inner: IO[bytes] = igzip.IGzipFile(fileobj=io.BufferedReader(raw, 1 << 20), mode="rb")  # type: ignore[assignment]
    elif kind == "zstd":
        inner = zstandard.ZstdDecompressor().stream_reader(raw, read_size=1 << 20, read_across_frames=True,  # type: ignore[arg-type]
                                                           closefd=False)
    else:
        return io.BufferedReader(raw, 1 << 20)
    return io.BufferedReader(_Decompressed(inner, kind), 1 << 20)
