"""Deterministic tar stream of a directory tree, cut into fixed-size segments.

Entries are written depth first with each directory's names sorted bytewise, owners
numeric, no user/group names, mtimes in whole seconds (clamped to SOURCE_DATE_EPOCH
when given), xattrs as PAX records, hard links as links to their first occurrence.

In overlay-upper mode the tree is a RUN step's overlayfs upper dir: 0/0 character
devices become ``.wh.NAME`` whiteouts and ``trusted.overlay.opaque=y`` directories get a
``.wh..wh..opq`` entry.  ``trusted.overlay.*`` xattrs are never written.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Callable, Iterator

from ..errors import PybuildError
from . import tarformat as tf

SEGMENT = 1 << 20  # the tar stream is emitted in pieces of exactly this size
OPAQUE_XATTR = b"trusted.overlay.opaque"
OPAQUE_XATTRS = (OPAQUE_XATTR, b"user.overlay.opaque")  # root's overlay, and overlay in a user namespace (userxattr)
SKIPPED_XATTR_PREFIXES = (b"trusted.overlay.", b"user.overlay.")
# an upper dir with these is not a self-contained diff (data or renames live in the lower dirs)
UNSUPPORTED_OVERLAY = {prefix + name: option for prefix in SKIPPED_XATTR_PREFIXES
                       for name, option in ((b"redirect", "redirect_dir=off"), (b"metacopy", "metacopy=off"))}
WHITEOUT_PREFIX = b".wh."
OPAQUE_MARKER = b".wh..wh..opq"


class Segmenter:
    """Collects the tar stream into fixed-size buffers and hands each full one to ``emit``."""

    def __init__(self, emit: Callable[[bytearray], None], size: int = SEGMENT):
        self._emit = emit
        self._size = size
        self._new()

    def _new(self) -> None:
        self._buf = bytearray(self._size)
        self._view = memoryview(self._buf)
        self._pos = 0

    def _flush_full(self) -> None:
        if self._pos == self._size:
            self._view.release()
            self._emit(self._buf)
            self._new()

    def write(self, data: bytes) -> None:
        """Append bytes."""
        view = memoryview(data)
        while view:
            room = self._size - self._pos
            piece = view[:room]
            self._view[self._pos:self._pos + len(piece)] = piece
            self._pos += len(piece)
            view = view[len(piece):]
            self._flush_full()

    def write_zeros(self, count: int) -> None:
        """Append ``count`` zero bytes."""
        while count:
            piece = min(count, self._size - self._pos)
            self._view[self._pos:self._pos + piece] = bytes(piece)
            self._pos += piece
            count -= piece
            self._flush_full()

    def copy_from(self, readinto: Callable[[memoryview], int | None], count: int = -1) -> int:
        """Read up to ``count`` bytes (all when -1) straight into the buffers; return bytes read."""
        done = 0
        while done != count:
            room = self._size - self._pos
            want = room if count < 0 else min(count - done, room)
            got = readinto(self._view[self._pos:self._pos + want])
            if not got:
                break
            self._pos += got
            done += got
            self._flush_full()
        return done

    def close(self) -> None:
        """Emit the last, partial buffer."""
        if self._pos:
            self._view.release()
            self._emit(self._buf[:self._pos])
        self._pos = 0


def _xattrs(path: bytes) -> dict[bytes, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as err:
        if err.errno in (errno.ENOTSUP, errno.ENODATA):
            return {}
        raise
    out: dict[bytes, bytes] = {}
    for name in names:
        key = name.encode()
        if key in UNSUPPORTED_OVERLAY:
            raise PybuildError(f"{os.fsdecode(path)} carries {name}: mount the overlay with "
                               f"{UNSUPPORTED_OVERLAY[key]} so that its upper dir is a complete layer")
        if key.startswith(SKIPPED_XATTR_PREFIXES):
            continue
        try:
            out[key] = os.getxattr(path, name, follow_symlinks=False)
        except OSError as err:
            if err.errno != errno.ENODATA:
                raise
    return out


def _listing(dir_path: bytes, prefix: bytes) -> Iterator[tuple[bytes, bytes, os.stat_result]]:
    """(path, archive name, lstat) of a directory's entries, sorted bytewise."""
    with os.scandir(dir_path) as it:
        entries = sorted(it, key=lambda e: e.name)
    return iter([(e.path, prefix + e.name, e.stat(follow_symlinks=False)) for e in entries])


def _is_opaque(path: bytes) -> bool:
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


class TreeWriter:
    """Writes one directory tree as a tar stream into a :class:`Segmenter`."""

    def __init__(self, out: Segmenter, *, source_date_epoch: int | None = None, overlay_upper: bool = False):
        self._out = out
        self._epoch = source_date_epoch
        self._overlay = overlay_upper
        self._links: dict[tuple[int, int], bytes] = {}

    def _mtime(self, st: os.stat_result) -> int:
        mtime = max(int(st.st_mtime), 0)
        return mtime if self._epoch is None else min(mtime, self._epoch)

    def _header(self, name: bytes, st: os.stat_result, typeflag: bytes, *, size: int = 0, linkname: bytes = b"",
                xattrs: dict[bytes, bytes] | None = None, mode: int | None = None) -> None:
        rdev = st.st_rdev if typeflag in (tf.CHARDEV, tf.BLOCKDEV) else 0
        self._out.write(tf.header(name, stat.S_IMODE(st.st_mode) if mode is None else mode, st.st_uid, st.st_gid,
                                  size, self._mtime(st), typeflag, linkname,
                                  os.major(rdev), os.minor(rdev), xattrs))

    def write_tree(self, root: str | os.PathLike[str]) -> None:
        """Every entry below ``root`` (not ``root`` itself), then the end-of-archive blocks."""
        root_b = os.fsencode(root)
        if not os.path.isdir(root_b):
            raise PybuildError(f"cannot make a layer from {os.fsdecode(root_b)}: not a directory")
        try:
            self._walk(root_b)
        except OSError as err:
            where = os.fsdecode(err.filename) if err.filename is not None else os.fsdecode(root_b)
            raise PybuildError(f"cannot read {where} for the layer: {err.strerror}") from None
        self._out.write(tf.ZERO_BLOCK * 2)

    def _walk(self, top: bytes) -> None:
        """Depth first without recursion (a RUN step can nest directories thousands deep)."""
        pending = [_listing(top, b"")]
        while pending:
            item = next(pending[-1], None)
            if item is None:
                pending.pop()
            elif self._entry(*item):
                path, name, _st = item
                pending.append(_listing(path, name + b"/"))

    def _entry(self, path: bytes, name: bytes, st: os.stat_result) -> bool:
        """Write one entry; True for a directory, whose entries come next."""
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            xattrs = _xattrs(path)
            self._header(name + b"/", st, tf.DIRECTORY, xattrs=xattrs)
            if self._overlay and _is_opaque(path):
                self._header(name + b"/" + OPAQUE_MARKER, st, tf.REGULAR, mode=0o600)
            return True
        if stat.S_ISREG(mode):
            self._file(path, name, st)
        elif stat.S_ISLNK(mode):
            self._header(name, st, tf.SYMLINK, linkname=os.readlink(path), xattrs=_xattrs(path))
        elif stat.S_ISCHR(mode) and self._overlay and st.st_rdev == 0:
            head, _, base = name.rpartition(b"/")
            whiteout = (head + b"/" if head else b"") + WHITEOUT_PREFIX + base
            self._header(whiteout, st, tf.REGULAR, mode=0o600)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            self._header(name, st, tf.CHARDEV if stat.S_ISCHR(mode) else tf.BLOCKDEV,
                         xattrs=_xattrs(path))
        elif stat.S_ISFIFO(mode):
            self._header(name, st, tf.FIFO, xattrs=_xattrs(path))
        # sockets cannot be archived: skipped, as docker and GNU tar do
        return False

    def _file(self, path: bytes, name: bytes, st: os.stat_result) -> None:
        xattrs = _xattrs(path)
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = self._links.get(key)
            if first is not None:
                self._header(name, st, tf.HARDLINK, linkname=first, xattrs=xattrs)
                return
            self._links[key] = name
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            self._header(name, st, tf.REGULAR, size=size, xattrs=xattrs)
            got = self._out.copy_from(lambda view: os.readv(fd, [view]), size)
        finally:
            os.close(fd)
        self._out.write_zeros(size - got + tf.padding(size))  # a file that shrank is padded
