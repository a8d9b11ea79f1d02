"""A streaming tar reader for hostile input: ustar, PAX and GNU long names.

Every size is bounded: metadata headers (PAX, GNU long names) are refused above
``MAX_META`` bytes, entries above ``MAX_ENTRY_SIZE``; data is handed out in chunks,
never read whole.  Truncated or non-tar input raises :class:`BadArchive`; a stream
that stops without the end-of-archive zero block counts as truncated (every tar
writer in use writes it), an empty stream is an empty archive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Iterator

from ..errors import BadArchive
from . import tarformat as tf

MAX_META = 1 << 20  # bytes of one PAX header or GNU long name
MAX_ENTRY_SIZE = 1 << 40
CHUNK = 1 << 20
HEADER_ONLY = (tf.HARDLINK, tf.SYMLINK, tf.CHARDEV, tf.BLOCKDEV, tf.DIRECTORY, tf.FIFO)


@dataclass
class Entry:
    """One archive member, with its PAX and GNU extensions applied."""

    name: bytes
    typeflag: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime: float
    linkname: bytes = b""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[bytes, bytes] = field(default_factory=dict)


def _number(field_: bytes, what: str) -> int:
    if field_[:1] and field_[0] & 0x80:  # base-256 (GNU/star/Go) for big or negative values
        if field_[0] == 0xFF:
            if what != "mtime":
                raise BadArchive(f"negative {what} in tar header")
            return int.from_bytes(field_, "big", signed=True)  # a date before 1970
        return int.from_bytes(bytes([field_[0] & 0x7F]) + field_[1:], "big")
    text = field_.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise BadArchive(f"invalid {what} {text!r} in tar header") from None


def _signed_checksum(block: bytes) -> int:
    """The checksum some old tars wrote, summing bytes as signed chars."""
    with_spaces = block[:148] + b" " * 8 + block[156:]
    return sum(b - 256 if b > 127 else b for b in with_spaces)


def _parse_pax(data: bytes) -> dict[bytes, bytes]:
    records: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise BadArchive("malformed PAX record") from None
        record = data[space + 1:pos + length]
        if space < 0 or length <= 0 or pos + length > len(data) or not record.endswith(b"\n") or b"=" not in record:
            raise BadArchive("malformed PAX record")
        key, _, value = record[:-1].partition(b"=")
        records[key] = value
        pos += length
    return records


class TarReader:
    """Iterate over the entries of a tar stream; read each entry's data with :meth:`chunks`."""

    def __init__(self, stream: IO[bytes], name: str = "layer"):
        self._stream = stream
        self._label = name
        self._offset = 0
        self._left = 0  # data + padding of the current entry not yet consumed
        self._data_left = 0

    def _read(self, size: int) -> bytes:
        parts: list[bytes] = []
        want = size
        while want:
            data = self._stream.read(min(want, CHUNK))
            if not data:
                break
            parts.append(data)
            want -= len(data)
        data = b"".join(parts)
        self._offset += len(data)
        if len(data) != size:
            raise BadArchive(f"{self._label}: truncated tar archive (ends at byte {self._offset}); the file is incomplete")
        return data

    def _skip(self) -> None:
        while self._left:
            step = min(self._left, CHUNK)
            self._read(step)
            self._left -= step
        self._data_left = 0

    def chunks(self) -> Iterator[bytes]:
        """The current entry's data, in chunks of up to 1 MiB."""
        while self._data_left:
            data = self._read(min(self._data_left, CHUNK))
            self._data_left -= len(data)
            self._left -= len(data)
            yield data

    def _meta(self, size: int, kind: str) -> bytes:
        if size > MAX_META:
            raise BadArchive(f"{self._label}: {kind} of {size} bytes at byte {self._offset} is too large (limit {MAX_META})")
        data = self._read(size + tf.padding(size))
        return data[:size]

    def _header(self) -> bytes | None:
        start = self._offset
        block = self._stream.read(tf.BLOCK)
        while block and len(block) < tf.BLOCK:
            more = self._stream.read(tf.BLOCK - len(block))
            if not more:
                break
            block += more
        self._offset += len(block)
        if block == tf.ZERO_BLOCK or not block and start == 0:
            return None  # the end-of-archive marker (or an empty stream)
        if len(block) < tf.BLOCK:
            raise BadArchive(f"{self._label}: truncated tar archive (ends at byte {self._offset}); the file is incomplete")
        stored = block[148:156].split(b"\0", 1)[0].strip(b" ")
        unsigned = tf.checksum_of(block[:148] + b" " * 8 + block[156:])
        try:
            valid = int(stored, 8) == unsigned or int(stored, 8) == _signed_checksum(block)
        except ValueError:
            valid = False
        if not valid:
            what = "not a tar archive" if start == 0 else f"corrupt tar header at byte {start}"
            raise BadArchive(f"{self._label}: {what}")
        return block

    def __iter__(self) -> Iterator[Entry]:
        pax: dict[bytes, bytes] = {}
        long_name = long_link = None
        while True:
            self._skip()
            block = self._header()
            if block is None:
                return
            typeflag = block[156:157]
            size = _number(block[124:136], "size")
            if typeflag in (tf.PAX_HEADER, tf.PAX_GLOBAL):
                records = _parse_pax(self._meta(size, "PAX header"))
                if any(k.startswith(b"GNU.sparse.") for k in records):
                    raise BadArchive(f"{self._label}: sparse files are not supported")
                if typeflag == tf.PAX_HEADER:
                    pax.update(records)
                continue
            if typeflag in (tf.GNU_LONGNAME, tf.GNU_LONGLINK):
                value = self._meta(size, "GNU long name").split(b"\0", 1)[0]
                if typeflag == tf.GNU_LONGNAME:
                    long_name = value
                else:
                    long_link = value
                continue
            if typeflag == b"S":
                raise BadArchive(f"{self._label}: sparse files are not supported")
            entry = self._entry(block, typeflag, size, pax, long_name, long_link)
            pax, long_name, long_link = {}, None, None
            self._data_left = 0 if entry.typeflag in HEADER_ONLY else entry.size
            self._left = self._data_left + tf.padding(self._data_left)
            yield entry

    def _entry(self, block: bytes, typeflag: bytes, size: int, pax: dict[bytes, bytes],
               long_name: bytes | None, long_link: bytes | None) -> Entry:
        name = block[:100].split(b"\0", 1)[0]
        prefix = block[345:500].split(b"\0", 1)[0] if block[257:263] == b"ustar\0" else b""
        if prefix:
            name = prefix + b"/" + name
        linkname = block[157:257].split(b"\0", 1)[0]
        entry = Entry(
            name=pax.get(b"path", long_name or name),
            typeflag=tf.REGULAR if typeflag in (b"\0", b"7") else typeflag,
            mode=_number(block[100:108], "mode") & 0o7777,
            uid=_number(block[108:116], "uid"),
            gid=_number(block[116:124], "gid"),
            size=size,
            mtime=_number(block[136:148], "mtime"),
            linkname=pax.get(b"linkpath", long_link or linkname),
            devmajor=_number(block[329:337], "devmajor"),
            devminor=_number(block[337:345], "devminor"),
        )
        try:
            for key, attr in ((b"size", "size"), (b"uid", "uid"), (b"gid", "gid")):
                if key in pax:
                    setattr(entry, attr, int(pax[key]))
            if b"mtime" in pax:
                entry.mtime = float(pax[b"mtime"])
        except ValueError:
            raise BadArchive(f"{self._label}: invalid number in the PAX header of {entry.name!r}") from None
        prefix_x = tf.XATTR_PREFIX.encode()
        entry.xattrs = {k[len(prefix_x):]: v for k, v in pax.items() if k.startswith(prefix_x)}
        if entry.typeflag == tf.REGULAR and entry.name.endswith(b"/"):
            entry.typeflag = tf.DIRECTORY  # pre-POSIX directories
        if b"\0" in entry.name or b"\0" in entry.linkname:
            raise BadArchive(f"{self._label}: entry {entry.name!r} has a NUL byte in its name or link target")
        if not 0 <= entry.size <= MAX_ENTRY_SIZE:
            raise BadArchive(f"{self._label}: entry {entry.name!r} claims an absurd size of {entry.size} bytes")
        return entry
