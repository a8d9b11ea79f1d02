"""Unpack a layer's tar stream into a directory, treating the archive as hostile.

Every path is resolved inside the target by :mod:`base.safepath` (openat2 with
RESOLVE_IN_ROOT, or its fd walk): names are cleaned (a leading ``/`` is dropped; ``..``
that would leave the target rejects the layer), parent directories are opened
relative to a directory fd of the target, and a symlink met on the way is followed
with ``/`` and ``..`` clamped to the target.  The last component is always handled
without following it.  Nothing is ever written outside the target.

Whiteouts: ``apply`` (a flat unpack) deletes what ``.wh.NAME`` names and empties
``.wh..wh..opq`` directories of lower content; ``overlay`` (a snapshot for an
overlayfs stack) turns them into 0/0 character devices and ``trusted.overlay.opaque``.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from dataclasses import dataclass
from typing import IO

from base import rootless, safepath
from base.removal import remove_tree

from ..errors import BadArchive
from . import tarformat as tf
from .tarreader import Entry, TarReader
from .tarwriter import OPAQUE_MARKER, WHITEOUT_PREFIX

log = logging.getLogger("pybuild.layer")

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MIN_MTIME, MAX_MTIME = -(1 << 31), 1 << 33
SKIPPED_XATTRS = (b"trusted.overlay.", b"user.overlay.")  # would change how overlayfs reads the snapshot


@dataclass
class ExtractStats:
    """What an extraction did."""

    entries: int = 0
    bytes: int = 0
    skipped: int = 0


def clean_name(name: bytes, label: str, clamp: bool = False) -> list[bytes]:
    """Path components of an entry name, inside the root; ``[]`` for the root itself.
    A ``..`` above the root rejects the archive, or with ``clamp`` stays at the root."""
    parts: list[bytes] = []
    for part in name.split(b"/"):
        if part in (b"", b"."):
            continue
        if part == b"..":
            if not parts and clamp:
                continue
            if not parts:
                raise BadArchive(f"{label}: entry {name.decode(errors='replace')!r} points outside the layer")
            parts.pop()
        else:
            parts.append(part)
    return parts


def _ns(mtime: float) -> int:
    """An archive mtime as nanoseconds, clamped to what filesystems store (1902-2242)."""
    return int(min(max(mtime, MIN_MTIME), MAX_MTIME) * 1e9)


def _reopen(fd: int, name: bytes) -> int:
    """Open the directory ``name`` relative to ``fd`` (never a symlink) and close ``fd``."""
    new = os.open(name, DIR_FLAGS, dir_fd=fd)
    os.close(fd)
    return new


_lstat = safepath.lstat_at


class _Root:
    """The target directory and in-root path resolution relative to its fd."""

    def __init__(self, path: str | os.PathLike[str] | int, label: str):
        if isinstance(path, int):
            self.fd = os.dup(path)
        else:
            os.makedirs(path, exist_ok=True)
            self.fd = os.open(path, DIR_FLAGS)
        self.label = label
        self._cache: tuple[tuple[bytes, ...], int] | None = None
        self._stale = False

    def close(self) -> None:
        self.forget()
        self._drop()
        os.close(self.fd)

    def forget(self) -> None:
        """Invalidate the cached parent (after removing a directory or symlink); the fd stays
        open until the next :meth:`parent` call, so the caller may finish with it."""
        self._stale = True

    def _drop(self) -> None:
        if self._cache is not None:
            os.close(self._cache[1])
            self._cache = None

    def parent(self, parts: list[bytes], create: bool = True) -> int | None:
        """A (cached, do not close) fd of the directory ``parts``, or None if missing and not ``create``."""
        key = tuple(parts)
        if self._cache is not None and not self._stale and self._cache[0] == key:
            return self._cache[1]
        fd = self._below_cache(key) if not self._stale else None
        self._drop()
        self._stale = False
        if fd is None:
            fd = self.open_dir(parts, create)
        if fd is not None:
            self._cache = (key, fd)
        return fd

    def _below_cache(self, key: tuple[bytes, ...]) -> int | None:
        """The fd of ``key`` opened from the cached parent when ``key`` is a plain directory
        below it (the common case: a directory entry, then its children); None otherwise."""
        if self._cache is None or key[:len(self._cache[0])] != self._cache[0]:
            return None
        fd = os.dup(self._cache[1])
        for part in key[len(self._cache[0]):]:
            try:
                nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError:
                nxt = None
            os.close(fd)
            if nxt is None:
                return None  # a symlink, a file or nothing: resolve from the root
            fd = nxt
        return fd

    def open_dir(self, parts: list[bytes], create: bool) -> int | None:
        """A new fd of the directory ``parts`` resolved inside the root (symlinks clamped to
        it); with ``create`` missing directories are made and a file in the way is replaced
        (the later entry wins), else None for a missing or non-directory path."""
        try:
            return safepath.open_dir(self.fd, b"/".join(parts), create=create, replace=create)
        except NotADirectoryError:
            return None
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise BadArchive(f"{self.label}: too many levels of symbolic links "
                                 f"under {b'/'.join(parts)!r}") from None
            raise


class _Extractor:
    def __init__(self, root: _Root, whiteouts: str, allow_devices: bool, allow_setuid: bool,
                 max_bytes: int | None, clamp: bool = False, owner: tuple[int, int] | None = None,
                 keep_kinds: bool = False):
        if whiteouts not in ("overlay", "apply", "none"):
            raise ValueError(f"whiteouts must be 'overlay', 'apply' or 'none', not {whiteouts!r}")
        self.root = root
        self.label = root.label
        self.overlay = whiteouts == "overlay"
        self.whiteouts = whiteouts != "none"
        self.allow_devices = allow_devices
        self.allow_setuid = allow_setuid
        self.max_bytes = max_bytes
        self.clamp = clamp
        self.chown = os.geteuid() == 0
        self.owner = owner
        self.keep_kinds = keep_kinds
        self.stats = ExtractStats()
        self.dir_times: list[tuple[list[bytes], int]] = []
        self.written: set[bytes] = set()  # apply mode: paths this layer wrote (kept by opaque whiteouts)
        self.written_parents: set[bytes] = set()

    # -- entry dispatch ---------------------------------------------------------------------
    def entry(self, entry: Entry, reader: TarReader) -> None:
        parts = clean_name(entry.name, self.label, self.clamp)
        if not parts:
            return  # the root itself: its metadata belongs to whoever owns the target
        *parent, base = parts
        if base.startswith(WHITEOUT_PREFIX) and self.whiteouts:
            self.whiteout(parent, base[len(WHITEOUT_PREFIX):], entry)
            return
        self.stats.entries += 1
        if not self.overlay and self.whiteouts:
            self.remember(parts)
        kind = entry.typeflag
        if kind in (tf.CHARDEV, tf.BLOCKDEV) and not self.allow_devices:
            self.skip(entry, "device nodes are not allowed here")
            return
        mode = entry.mode if self.allow_setuid else entry.mode & ~(stat.S_ISUID | stat.S_ISGID)
        dirfd = self.root.parent(parent)
        assert dirfd is not None
        if kind == tf.DIRECTORY:
            self.directory(dirfd, parent, base, entry, mode)
        elif kind == tf.REGULAR:
            self.regular(dirfd, base, entry, mode, reader)
        elif kind == tf.SYMLINK:
            self.replace(dirfd, base)
            os.symlink(entry.linkname, base, dir_fd=dirfd)
            self.metadata_at(dirfd, base, entry, None)
        elif kind == tf.HARDLINK:
            self.hardlink(dirfd, base, entry)
        elif kind in (tf.CHARDEV, tf.BLOCKDEV, tf.FIFO):
            kind_bits = {tf.CHARDEV: stat.S_IFCHR, tf.BLOCKDEV: stat.S_IFBLK, tf.FIFO: stat.S_IFIFO}[kind]
            self.replace(dirfd, base)
            os.mknod(base, kind_bits | mode, os.makedev(entry.devmajor, entry.devminor), dir_fd=dirfd)
            self.metadata_at(dirfd, base, entry, mode)
        else:
            self.skip(entry, f"unknown entry type {kind!r}")

    def skip(self, entry: Entry, why: str) -> None:
        self.stats.skipped += 1
        log.warning("%s: skipped %s: %s", self.label, entry.name.decode(errors="replace"), why)

    def remember(self, parts: list[bytes]) -> None:
        self.written.add(b"/".join(parts))
        for i in range(len(parts) - 1, 0, -1):  # longest first: a known prefix has its own prefixes
            prefix = b"/".join(parts[:i])
            if prefix in self.written_parents:
                break
            self.written_parents.add(prefix)

    # -- filesystem operations, all relative to a parent dir fd -----------------------------
    def replace(self, dirfd: int, base: bytes, keep_dir: bool = False) -> os.stat_result | None:
        """Clear the way for a new entry named ``base``; keep an existing directory if asked."""
        st = _lstat(base, dirfd)
        if st is None:
            return None
        if self.keep_kinds and stat.S_ISDIR(st.st_mode) != keep_dir:
            what = ("directory", "non-directory") if keep_dir else ("non-directory", "directory")
            raise BadArchive(f"{self.label}: cannot overwrite {what[1]} {base.decode(errors='replace')!r} "
                             f"with {what[0]}")
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return st
            self.root.forget()
            remove_tree(base, dir_fd=dirfd)
        else:
            if not stat.S_ISREG(st.st_mode):
                self.root.forget()
            os.unlink(base, dir_fd=dirfd)
        return None

    def directory(self, dirfd: int, parent: list[bytes], base: bytes, entry: Entry, mode: int) -> None:
        if self.replace(dirfd, base, keep_dir=True) is None:
            os.mkdir(base, 0o700, dir_fd=dirfd)
        fd = os.open(base, DIR_FLAGS, dir_fd=dirfd)
        try:
            self.metadata_fd(fd, entry, mode, times=False)
        finally:
            os.close(fd)
        self.dir_times.append((parent + [base], _ns(entry.mtime)))

    def regular(self, dirfd: int, base: bytes, entry: Entry, mode: int, reader: TarReader) -> None:
        self.replace(dirfd, base)
        fd = os.open(base, FILE_FLAGS, 0o600, dir_fd=dirfd)
        try:
            for chunk in reader.chunks():
                self.stats.bytes += len(chunk)
                if self.max_bytes is not None and self.stats.bytes > self.max_bytes:
                    raise BadArchive(f"{self.label}: layer unpacks to more than {self.max_bytes} bytes; refusing it")
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            self.metadata_fd(fd, entry, mode)
        finally:
            os.close(fd)

    def hardlink(self, dirfd: int, base: bytes, entry: Entry) -> None:
        *target_parent, target_base = clean_name(entry.linkname, self.label, self.clamp) or [b""]
        source_fd = self.root.open_dir(target_parent, create=False) if target_base else None
        if source_fd is None:
            self.skip(entry, f"hard link target {entry.linkname.decode(errors='replace')!r} is not in the layer")
            return
        try:
            st = _lstat(target_base, source_fd)
            if st is None or stat.S_ISDIR(st.st_mode):
                self.skip(entry, f"hard link target {entry.linkname.decode(errors='replace')!r} is missing or a directory")
                return
            existing = _lstat(base, dirfd)
            if existing is not None and os.path.samestat(st, existing):
                return
            self.replace(dirfd, base)
            try:
                os.link(target_base, base, src_dir_fd=source_fd, dst_dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:  # the entry replaced the directory its target was in
                self.skip(entry, f"hard link target {entry.linkname.decode(errors='replace')!r} is gone")
        finally:
            os.close(source_fd)

    def whiteout(self, parent: list[bytes], name: bytes, entry: Entry) -> None:
        if name == OPAQUE_MARKER[len(WHITEOUT_PREFIX):]:
            self.opaque(parent)
            return
        if name in (b"", b".", b"..") or name.startswith(WHITEOUT_PREFIX):
            self.skip(entry, "not a valid whiteout")
            return
        if self.overlay:
            dirfd = self.root.parent(parent)
            assert dirfd is not None
            self.replace(dirfd, name)
            os.mknod(name, stat.S_IFCHR, 0, dir_fd=dirfd)
            if self.chown:
                os.chown(name, entry.uid, entry.gid, dir_fd=dirfd, follow_symlinks=False)
            return
        dirfd = self.root.parent(parent, create=False)
        if dirfd is not None:
            self.replace(dirfd, name)

    def opaque(self, parent: list[bytes]) -> None:
        if self.overlay:
            fd = self.root.open_dir(parent, create=True)
            assert fd is not None
            try:
                os.setxattr(fd, rootless.overlay_xattr("opaque"), b"y")
            finally:
                os.close(fd)
        else:
            self.root.forget()
            self.prune(parent)

    def prune(self, top: list[bytes]) -> None:
        """Remove what lower layers put under ``top``, keeping what this layer wrote.

        Depth first with one open directory at a time: down with O_NOFOLLOW into real
        directories, back up through their ``..``."""
        fd = self.root.open_dir(top, create=True)
        assert fd is not None
        try:
            stack = [(top, self.prune_here(fd, top))]
            while stack:
                parts, subdirs = stack[-1]
                if subdirs:
                    name = subdirs.pop()
                    fd = _reopen(fd, name)
                    stack.append((parts + [name], self.prune_here(fd, parts + [name])))
                else:
                    stack.pop()
                    if stack:
                        fd = _reopen(fd, b"..")
        finally:
            os.close(fd)

    def prune_here(self, fd: int, parts: list[bytes]) -> list[bytes]:
        """Remove the lower entries of one directory; return the subdirectories to visit."""
        subdirs = []
        for name in map(os.fsencode, os.listdir(fd)):
            child = b"/".join(parts + [name])
            is_dir = stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
            if child in self.written or child in self.written_parents:
                if is_dir:
                    subdirs.append(name)
            elif is_dir:
                remove_tree(name, dir_fd=fd)
            else:
                os.unlink(name, dir_fd=fd)
        return subdirs

    # -- metadata ---------------------------------------------------------------------------
    def xattrs(self, target: int | str, entry: Entry) -> None:
        for key, value in entry.xattrs.items():
            if key.startswith(SKIPPED_XATTRS):
                continue
            try:
                if isinstance(target, int):
                    os.setxattr(target, key, value)
                else:
                    os.setxattr(target, key, value, follow_symlinks=False)
            except (OSError, ValueError) as err:  # ValueError: a NUL in the name
                log.warning("%s: cannot set xattr %s on %s: %s", self.label, key.decode(errors="replace"),
                            entry.name.decode(errors="replace"), getattr(err, "strerror", None) or err)

    def metadata_fd(self, fd: int, entry: Entry, mode: int, times: bool = True) -> None:
        if self.chown:
            os.fchown(fd, *(self.owner or (entry.uid, entry.gid)))
        os.fchmod(fd, mode)  # after chown, which clears setuid bits
        self.xattrs(fd, entry)
        if times:
            os.utime(fd, ns=(_ns(entry.mtime),) * 2)

    def metadata_at(self, dirfd: int, base: bytes, entry: Entry, mode: int | None) -> None:
        if self.chown:
            os.chown(base, *(self.owner or (entry.uid, entry.gid)), dir_fd=dirfd, follow_symlinks=False)
        if mode is not None:
            os.chmod(base, mode, dir_fd=dirfd)  # fifos and devices (never symlinks)
        if entry.xattrs:
            self.xattrs(f"/proc/self/fd/{dirfd}/{os.fsdecode(base)}", entry)
        os.utime(base, ns=(_ns(entry.mtime),) * 2, dir_fd=dirfd, follow_symlinks=False)

    def finish(self) -> None:
        """Directory mtimes, once nothing more is written into them (archive order: the
        parent cache opens each one below the last)."""
        for parts, mtime in self.dir_times:
            fd = self.root.parent(parts[:-1], create=False)
            st = _lstat(parts[-1], fd) if fd is not None else None
            if st is not None and stat.S_ISDIR(st.st_mode):
                os.utime(parts[-1], ns=(mtime, mtime), dir_fd=fd, follow_symlinks=False)


def extract_layer(stream: IO[bytes], target_dir: str | os.PathLike[str] | int, *, whiteouts: str = "overlay",
                  allow_devices: bool = False, allow_setuid: bool = True, max_bytes: int | None = None,
                  name: str = "layer", clamp_dotdot: bool = False, owner: tuple[int, int] | None = None,
                  keep_kinds: bool = False) -> ExtractStats:
    """Unpack the uncompressed tar ``stream`` into ``target_dir`` (created if missing; or
    an open directory fd, the root every entry is resolved in).

    ``whiteouts``: ``"apply"`` for a flat unpack over lower content, ``"overlay"`` for an
    overlayfs snapshot, ``"none"`` for an archive that is not a layer (ADD: ``.wh.`` names
    are ordinary files).  Devices are skipped (with a warning) unless ``allow_devices``;
    setuid/setgid bits are dropped unless ``allow_setuid``; more than ``max_bytes`` of
    file data rejects the layer.  ``name`` labels error messages.  A name or hard link
    with ``..`` above the target rejects the archive, or with ``clamp_dotdot`` stays at
    the target (docker unpacks ADD archives chrooted into the destination).  ``owner``
    (uid, gid) replaces every entry's owner (``docker cp`` without ``-a``); ``keep_kinds``
    rejects an entry that would replace a directory by a non-directory or the other way
    round (docker's ``noOverwriteDirNonDir``).  Raises BadArchive.
    """
    root = _Root(target_dir, name)
    try:
        extractor = _Extractor(root, whiteouts, allow_devices, allow_setuid, max_bytes, clamp_dotdot, owner,
                               keep_kinds)
        reader = TarReader(stream, name)
        for entry in reader:
            extractor.entry(entry, reader)
        extractor.finish()
        return extractor.stats
    finally:
        root.close()
