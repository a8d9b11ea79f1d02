"""Tar header encoding (ustar + PAX) shared by the writer and the reader.

Only what a deterministic writer needs: no user/group names, integer mtimes, PAX
records for anything ustar cannot carry (long or non-ASCII names, big numbers, xattrs).
"""

from __future__ import annotations

import zlib

BLOCK = 512
REGULAR, HARDLINK, SYMLINK, CHARDEV, BLOCKDEV, DIRECTORY, FIFO = b"0", b"1", b"2", b"3", b"4", b"5", b"6"
PAX_HEADER, PAX_GLOBAL, GNU_LONGNAME, GNU_LONGLINK = b"x", b"g", b"L", b"K"
XATTR_PREFIX = "SCHILY.xattr."
MAX_OCTAL_7 = 0o7777777
MAX_OCTAL_11 = 0o77777777777
ZERO_BLOCK = bytes(BLOCK)


def padding(size: int) -> int:
    """Bytes of zero padding after ``size`` bytes of entry data."""
    return -size % BLOCK


def pax_record(key: bytes, value: bytes) -> bytes:
    """One ``"%d %s=%s\\n"`` record; the length counts its own digits."""
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


_USTAR = (b"%s%07o\0%07o\0%07o\0%011o\0%011o\0        %s%sustar\x0000" + bytes(64)  # empty uname, gname
          + b"%07o\0%07o\0" + bytes(167))


def _ustar(name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int, typeflag: bytes,
           linkname: bytes = b"", devmajor: int = 0, devminor: int = 0) -> bytes:
    header = _USTAR % (name[:100].ljust(100, b"\0"), mode, uid, gid, size, mtime, typeflag,
                       linkname[:100].ljust(100, b"\0"), devmajor, devminor)
    checksum = b"%06o\0 " % checksum_of(header)
    return header[:148] + checksum + header[156:]


def checksum_of(block: bytes) -> int:
    """Sum of the block's bytes (adler32's low half is 1 + the byte sum, exact for 256 bytes)."""
    return (zlib.adler32(block[:256]) & 0xFFFF) + (zlib.adler32(block[256:]) & 0xFFFF) - 2


def _portable(text: bytes, limit: int) -> bool:
    return len(text) <= limit and text.isascii()


def header(name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int, typeflag: bytes,
           linkname: bytes = b"", devmajor: int = 0, devminor: int = 0,
           xattrs: dict[bytes, bytes] | None = None) -> bytes:
    """The header block(s) of one entry: a PAX header first when ustar is not enough."""
    records: list[bytes] = []
    if not _portable(name, 100):
        records.append(pax_record(b"path", name))
    if not _portable(linkname, 100):
        records.append(pax_record(b"linkpath", linkname))
    if size > MAX_OCTAL_11:
        records.append(pax_record(b"size", b"%d" % size))
    for key, value in (("uid", uid), ("gid", gid)):
        if value > MAX_OCTAL_7:
            records.append(pax_record(key.encode(), b"%d" % value))
    if mtime > MAX_OCTAL_11:
        records.append(pax_record(b"mtime", b"%d" % mtime))
    for xattr, value_ in sorted((xattrs or {}).items()):
        records.append(pax_record(XATTR_PREFIX.encode() + xattr, value_))
    entry = _ustar(name, mode, min(uid, MAX_OCTAL_7), min(gid, MAX_OCTAL_7), min(size, MAX_OCTAL_11),
                   min(mtime, MAX_OCTAL_11), typeflag, linkname, devmajor, devminor)
    if not records:
        return entry
    data = b"".join(records)
    pax = _ustar(b"././@PaxHeader", 0o644, 0, 0, len(data), 0, PAX_HEADER)
    return pax + data + bytes(padding(len(data))) + entry
