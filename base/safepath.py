"""Resolve paths inside a root directory as if that directory were ``/``.

Images and build contexts are hostile input: a symlink ``/etc -> /../../host`` or a
``..`` must never lead out of the rootfs.  Every path pybuild opens, creates or mounts
inside a rootfs goes through this module.  Symlinks are followed with their absolute
targets taken from the root, and ``..`` stops at the root, so a lookup always ends
inside it.

Two implementations with the same semantics:

- ``openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`` (Linux 5.6+, through ctypes): the
  kernel does the whole walk in one system call;
- a walk one component at a time from an fd of the root, each component opened with
  ``O_NOFOLLOW`` and each symlink read and followed by hand.  Used where the kernel has
  no openat2, and for what openat2 cannot do: creating the missing directories of a
  path (also through a dangling symlink: its target is made inside the root, as docker
  does for COPY and WORKDIR).

Callers get file descriptors (:func:`open_in_root`, :func:`open_dir`), or host paths
(:func:`resolve`) where a path is what the next tool takes; a host path is only as
good as the moment it was made, so it is for trees no container is running in.
"""

from __future__ import annotations

import errno
import os
import stat

# (no typing import: this module is on the run path, which keeps its imports light)

MAX_SYMLINKS = 40  # the kernel's limit (ELOOP beyond it)
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_IN_ROOT = 0x10
# openat2 is 437 on every architecture with the unified syscall table (x86_64, aarch64,
# arm, riscv64, ppc64le, s390x); only alpha, ia64 and mips differ, and pybuild runs on none.
_SYS_OPENAT2 = 437

use_openat2 = True  # cleared when the kernel lacks openat2; tests clear it to run the walk


class _Openat2:
    """The ctypes binding, made on first use (ctypes is not on the cached build's path)."""

    def __init__(self) -> None:
        import ctypes  # noqa: PLC0415

        class OpenHow(ctypes.Structure):
            _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]

        self.ctypes = ctypes
        self.how_type = OpenHow
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.syscall.restype = ctypes.c_long

    def __call__(self, dirfd: int, path: bytes, flags: int, mode: int, resolve: int) -> int:
        how = self.how_type(flags, mode if flags & os.O_CREAT else 0, resolve)
        while True:
            fd = self.libc.syscall(_SYS_OPENAT2, self.ctypes.c_int(dirfd), self.ctypes.c_char_p(path),
                                   self.ctypes.byref(how), self.ctypes.c_size_t(self.ctypes.sizeof(how)))
            if fd >= 0:
                return int(fd)
            err = self.ctypes.get_errno()
            if err not in (errno.EAGAIN, errno.EINTR):  # EAGAIN: a rename raced the walk; retry
                raise OSError(err, os.strerror(err), os.fsdecode(path))


_binding: _Openat2 | None = None


def openat2(dirfd: int, path: str | bytes, flags: int, mode: int = 0o644, follow: bool = True) -> int | None:
    """``openat2(dirfd, path, RESOLVE_IN_ROOT)`` (and no symlink at all unless ``follow``);
    None when the kernel has no openat2."""
    global _binding, use_openat2
    if not use_openat2:
        return None
    if _binding is None:
        _binding = _Openat2()
    try:
        resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (0 if follow else RESOLVE_NO_SYMLINKS)
        return _binding(dirfd, os.fsencode(path) or b".", flags | os.O_CLOEXEC, mode, resolve)
    except OSError as err:
        # ENOSYS: a kernel before 5.6, or a seccomp filter that does not know openat2;
        # EPERM: older filters (docker's before 20.10.?) answer unknown calls with it
        if err.errno == errno.EPERM and _openat2_works():
            raise
        if err.errno not in (errno.ENOSYS, errno.EPERM):
            raise
        use_openat2 = False
        return None


def _openat2_works() -> bool:
    """Whether openat2 itself is allowed (a probe on ``/``), to tell a seccomp EPERM from
    a real one."""
    assert _binding is not None
    root = os.open("/", os.O_PATH | os.O_CLOEXEC)
    try:
        os.close(_binding(root, b".", os.O_PATH | os.O_CLOEXEC, 0, RESOLVE_IN_ROOT))
        return True
    except OSError:
        return False
    finally:
        os.close(root)


def _components(path: str | bytes) -> list[bytes]:
    return [p for p in os.fsencode(path).split(b"/") if p not in (b"", b".")]


def _root_fd(root: str | os.PathLike[str] | int) -> tuple[int, bool]:
    """An fd of ``root`` and whether the caller must close it."""
    if isinstance(root, int):
        return root, False
    return os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), True


class _Walk:
    """The by-hand resolution: a stack of open directory fds from the root down."""

    def __init__(self, rootfd: int, path: str | bytes, follow: bool = True):
        self.follow_links = follow
        self.stack = [os.dup(rootfd)]
        self.todo = list(reversed(_components(path)))
        self.hops = 0
        self.path = path

    def close(self) -> None:
        for fd in self.stack:
            os.close(fd)
        self.stack = []

    def follow(self, cur: int, part: bytes) -> bool:
        """Queue the target of ``part`` if it is a symlink; False if it is not one."""
        try:
            st = os.stat(part, dir_fd=cur, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if not stat.S_ISLNK(st.st_mode):
            return False
        if not self.follow_links:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), os.fsdecode(self.path))
        self.hops += 1
        if self.hops > MAX_SYMLINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), os.fsdecode(self.path))
        target = os.readlink(part, dir_fd=cur)
        if target.startswith(b"/"):
            while len(self.stack) > 1:
                os.close(self.stack.pop())
        self.todo.extend(reversed(target.split(b"/")))
        return True

    def next_part(self) -> bytes | None:
        """The next name to look up, after ``.`` and ``..`` (clamped at the root) are applied."""
        while self.todo:
            part = self.todo.pop()
            if part in (b"", b"."):
                continue
            if part == b"..":
                if len(self.stack) > 1:
                    os.close(self.stack.pop())
                continue
            return part
        return None

    def dirs(self, create: bool, mode: int, owner: tuple[int, int] | None, replace: bool,
             leaf_ok: bool = False) -> list[bytes]:
        """Descend through every remaining component as a directory.  Returns ``[]`` when
        all exist (or were created), else the missing rest (plain names, ``..`` applied
        lexically).  A non-directory in the way raises ENOTDIR, or is replaced if asked;
        with ``leaf_ok`` a non-directory as the last component is kept in :attr:`leaf`."""
        self.leaf: bytes | None = None
        while (part := self.next_part()) is not None:
            cur = self.stack[-1]
            try:
                self.stack.append(os.open(part, DIR_FLAGS, dir_fd=cur))
                continue
            except FileNotFoundError:
                if not create:
                    return self._missing(part)
                _mkdir(cur, part, mode, owner)
            except OSError as err:
                if err.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                if self.follow(cur, part):
                    continue
                if leaf_ok and not any(p not in (b"", b".") for p in self.todo):
                    self.leaf = part
                    return []
                if not replace:
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), os.fsdecode(part)) from None
                os.unlink(part, dir_fd=cur)  # a file in the way of a directory: the later tar entry wins
                _mkdir(cur, part, mode, owner)
            self.stack.append(os.open(part, DIR_FLAGS, dir_fd=cur))
        return []

    def _missing(self, first: bytes) -> list[bytes]:
        missing = [first]
        while self.todo:
            part = self.todo.pop()
            if part == b"..":
                if missing:
                    missing.pop()
                elif len(self.stack) > 1:
                    os.close(self.stack.pop())
            elif part not in (b"", b"."):
                missing.append(part)
        return missing

    def take(self) -> int:
        """The fd of the deepest directory reached (the caller closes it)."""
        fd = self.stack.pop()
        self.close()
        return fd


def _mkdir(dirfd: int, name: bytes, mode: int, owner: tuple[int, int] | None) -> None:
    """``mkdir`` with exactly ``mode`` (whatever the umask) and ``owner``; an existing
    directory (made concurrently) is fine."""
    try:
        os.mkdir(name, mode, dir_fd=dirfd)
    except FileExistsError:
        return
    fd = os.open(name, DIR_FLAGS, dir_fd=dirfd)
    try:
        if owner is not None:
            os.fchown(fd, *owner)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def open_dir(root: str | os.PathLike[str] | int, path: str | bytes, *, create: bool = False,
             mode: int = 0o755, owner: tuple[int, int] | None = None, replace: bool = False,
             follow: bool = True) -> int | None:
    """An fd of the directory ``path`` inside ``root`` (a path or a directory fd).

    Missing: None, or with ``create`` the missing directories are made (``mode``,
    ``owner``), including the target of a dangling symlink.  A non-directory on the way
    raises :class:`NotADirectoryError` (its name in ``filename``), or with ``replace`` is
    removed for the directory.  Without ``follow`` a symlink anywhere on the way raises
    ELOOP (for trees whose symlinks mean nothing yet, like an upper dir).  The caller
    closes the fd.
    """
    rootfd, own = _root_fd(root)
    try:
        try:
            fd = openat2(rootfd, path, os.O_RDONLY | os.O_DIRECTORY, follow=follow)
        except (FileNotFoundError, NotADirectoryError):
            fd = None  # the walk below creates, replaces or reports it
        if fd is not None:
            return fd
        walk = _Walk(rootfd, path, follow)
        try:
            if walk.dirs(create, mode, owner, replace):
                return None
            return walk.take()
        finally:
            walk.close()
    finally:
        if own:
            os.close(rootfd)


def open_in_root(root: str | os.PathLike[str] | int, path: str | bytes, flags: int = os.O_RDONLY,
                 mode: int = 0o644) -> int:
    """``os.open`` of ``path`` resolved inside ``root``; every symlink (the last one too,
    unless ``O_NOFOLLOW``) is followed inside the root.  With ``O_CREAT`` the file is
    made in its (existing) parent directory."""
    rootfd, own = _root_fd(root)
    try:
        fd = openat2(rootfd, path, flags, mode)
        if fd is not None:
            return fd
        parts = _components(path)
        hops = 0
        while True:
            parent = open_dir(rootfd, b"/".join(parts[:-1])) if parts else os.dup(rootfd)
            if parent is None:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), os.fsdecode(path))
            try:
                if not parts:
                    return os.open(".", flags | os.O_CLOEXEC, mode, dir_fd=parent)
                name = parts[-1]
                st = lstat_at(name, parent)
                if st is None or not stat.S_ISLNK(st.st_mode) or flags & os.O_NOFOLLOW:
                    return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent)
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), os.fsdecode(path))
                target = os.readlink(name, dir_fd=parent)
                base = [] if target.startswith(b"/") else _in_root_parts(rootfd, parent)
                parts = base + _components(target)
            finally:
                os.close(parent)
    finally:
        if own:
            os.close(rootfd)


def lstat_at(name: bytes, dirfd: int) -> os.stat_result | None:
    """``lstat`` of ``name`` in ``dirfd``; None if it does not exist."""
    try:
        return os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _in_root_parts(rootfd: int, fd: int) -> list[bytes]:
    """Components of the directory ``fd`` relative to the root (both open, ``fd`` below it)."""
    top = os.readlink(f"/proc/self/fd/{rootfd}")
    here = os.readlink(f"/proc/self/fd/{fd}")
    if here == top:
        return []
    prefix = top.rstrip("/") + "/"
    if not here.startswith(prefix):
        raise OSError(errno.EXDEV, f"{here} is not inside {top}")
    return _components(here[len(prefix):])


def path_of(root: str | os.PathLike[str], fd: int) -> str:
    """The host path, under ``root`` as the caller spells it, of an fd opened inside it."""
    rootfd, _ = _root_fd(root)
    try:
        return os.path.join(os.fspath(root), *map(os.fsdecode, _in_root_parts(rootfd, fd)))
    finally:
        os.close(rootfd)


def resolve(root: str | os.PathLike[str], path: str | bytes, *, create_parents: bool = False, mode: int = 0o755,
            owner: tuple[int, int] | None = None) -> str:
    """The host path of ``path`` inside ``root``, every symlink (the last one too) followed
    inside the root; a missing rest is appended as named.  With ``create_parents`` the
    directories leading to the result are made (``mode``, ``owner``), also where a
    dangling symlink points, so the caller can create the result itself.  A
    non-directory met before the last component raises NotADirectoryError."""
    root = os.fspath(root)
    rootfd, _ = _root_fd(root)
    try:
        try:
            fd = openat2(rootfd, path, os.O_PATH)
        except FileNotFoundError:
            fd = None
        if fd is not None:
            try:
                return os.path.join(root, *map(os.fsdecode, _in_root_parts(rootfd, fd)))
            finally:
                os.close(fd)
        walk = _Walk(rootfd, path)
        try:
            missing = walk.dirs(False, mode, owner, False, leaf_ok=True)
            if walk.leaf is not None:
                missing = [walk.leaf]
            fd = walk.take()
        finally:
            walk.close()
        try:
            if create_parents and len(missing) > 1:
                sub = open_dir(fd, b"/".join(missing[:-1]), create=True, mode=mode, owner=owner)
                if sub is not None:
                    os.close(sub)
            parts = _in_root_parts(rootfd, fd)
        finally:
            os.close(fd)
    finally:
        os.close(rootfd)
    return os.path.join(root, *map(os.fsdecode, parts + missing))
