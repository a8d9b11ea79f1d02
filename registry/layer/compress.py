"""Layer compressors: gzip (default), zstd and none, fed one tar segment at a time.

gzip is written pigz-style: each segment is deflated on its own (so segments can be
compressed in parallel) and ends on a byte boundary with a sync flush, inside one
standard gzip member.  Parts of a segment that do not compress (random data, already
compressed files) are written as stored deflate blocks instead of being deflated for
nothing.  ISA-L (``isal``) does levels 0-3, the fastest deflate on PyPI here (see
docs/performance.md); levels 4-9 use zlib-ng.  The output depends only on the input
bytes and the level: same tar, same blob.
"""

from __future__ import annotations

import struct
from typing import Any, Protocol

import zstandard
from isal import isal_zlib
from zlib_ng import zlib_ng

from .. import oci
from ..errors import PybuildError

COMPRESSIONS = ("gzip", "zstd", "none")
GZIP_DEFAULT_LEVEL = 1
ZSTD_DEFAULT_LEVEL = 3
ZSTD_THREADS = 2  # fixed: zstd's multi-threaded output depends on the parameters, not on timing
ZSTD_JOB_SIZE = 2 << 20  # small jobs keep zstd's buffers (and our RSS) small: ~40 MB instead of ~130
PART = 256 * 1024  # a segment is judged compressible or not in parts of this size
PROBE, PROBES = 2048, 4  # a part is judged by deflating this many bytes at this many evenly spread places
STORE_RATIO = 0.9  # a part whose every probe shrinks less than this is stored, not deflated
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, mtime 0, OS unknown
_FINAL_EMPTY_STORED = b"\x01\x00\x00\xff\xff"
_STORED_MAX = 0xFFFF


class Codec(Protocol):
    """What the pipeline needs of a compressor."""

    media_type: str
    parallel: bool  # segment() may run concurrently and out of order
    identity: bool  # output is the input (the blob digest is the diff_id)

    def begin(self) -> bytes: ...
    def observe(self, data: bytes) -> None: ...  # every input segment, in order
    def segment(self, data: bytes) -> bytes: ...
    def end(self) -> bytes: ...


def _stored_blocks(data: memoryview) -> list[bytes | memoryview]:
    out: list[bytes | memoryview] = []
    for start in range(0, len(data), _STORED_MAX):
        piece = data[start:start + _STORED_MAX]
        out.append(struct.pack("<BHH", 0, len(piece), len(piece) ^ 0xFFFF))
        out.append(piece)
    return out


class GzipCodec:
    """Standard single-member gzip made of independently deflated segments."""

    media_type = oci.OCI_LAYER_GZIP
    parallel = True
    identity = False

    def __init__(self, level: int | None = None):
        level = GZIP_DEFAULT_LEVEL if level is None else level
        if not 0 <= level <= 9:
            raise PybuildError(f"gzip level {level} is out of range; use 0 to 9")
        self._level = level
        self._zlib = isal_zlib if level <= 3 else zlib_ng
        self._crc = 0
        self._size = 0

    def begin(self) -> bytes:
        return _GZIP_HEADER

    def observe(self, data: bytes) -> None:
        self._crc = isal_zlib.crc32(data, self._crc)
        self._size += len(data)

    def _compressible(self, part: memoryview) -> bool:
        step = max(len(part) // PROBES, 1)
        for start in range(0, len(part), step):
            probe = part[start:start + PROBE]
            if len(isal_zlib.compress(probe, 0, -15)) < STORE_RATIO * len(probe):
                return True
        return False

    def segment(self, data: bytes) -> bytes:
        view = memoryview(data)
        out: list[bytes | memoryview] = []
        start = 0
        while start < len(view):
            deflate = self._compressible(view[start:start + PART])
            end = start + PART
            while end < len(view) and self._compressible(view[end:end + PART]) == deflate:
                end += PART
            run = view[start:end]
            if deflate:
                comp = self._zlib.compressobj(self._level, self._zlib.DEFLATED, -15)
                out += (comp.compress(run), comp.flush(self._zlib.Z_SYNC_FLUSH))
            else:
                out += _stored_blocks(run)
            start = end
        return b"".join(out)

    def end(self) -> bytes:
        return _FINAL_EMPTY_STORED + struct.pack("<II", self._crc, self._size & 0xFFFFFFFF)


class ZstdCodec:
    """zstd through ``zstandard``'s multi-threaded compressor."""

    media_type = oci.OCI_LAYER_ZSTD
    parallel = False
    identity = False

    def __init__(self, level: int | None = None):
        level = ZSTD_DEFAULT_LEVEL if level is None else level
        if not 1 <= level <= 22:
            raise PybuildError(f"zstd level {level} is out of range; use 1 to 22")
        params = zstandard.ZstdCompressionParameters.from_level(level, threads=ZSTD_THREADS, job_size=ZSTD_JOB_SIZE)
        self._comp = zstandard.ZstdCompressor(compression_params=params).compressobj()

    def begin(self) -> bytes:
        return b""

    def observe(self, data: bytes) -> None:
        pass

    def segment(self, data: bytes) -> bytes:
        return self._comp.compress(data)

    def end(self) -> bytes:
        return self._comp.flush()


class PlainCodec:
    """No compression: the blob is the tar."""

    media_type = oci.OCI_LAYER
    parallel = True
    identity = True

    def __init__(self, level: int | None = None):
        pass

    def begin(self) -> bytes:
        return b""

    def observe(self, data: bytes) -> None:
        pass

    def segment(self, data: bytes) -> bytes:
        return data

    def end(self) -> bytes:
        return b""


_CODECS: dict[str, Any] = {"gzip": GzipCodec, "zstd": ZstdCodec, "none": PlainCodec}


def make_codec(compression: str, level: int | None = None) -> Codec:
    """A fresh codec for one blob."""
    try:
        return _CODECS[compression](level)
    except KeyError:
        raise PybuildError(f"unknown compression {compression!r}; use one of {', '.join(COMPRESSIONS)}") from None
