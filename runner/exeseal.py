"""A sealed view of our own interpreter, so no container can reach the host's binary.

CVE-2019-5736: while a process that is about to exec into a container still runs
the host's interpreter, ``/proc/self/exe`` of that process *is* the host binary.
An image whose command is a script starting ``#!/proc/self/exe`` makes the kernel
run that very binary inside the container, and the container can keep an
``O_PATH`` handle on it and write to it once nothing executes it any more.

So the processes that enter a container run Python from :func:`sealed` (and the
``--init`` binary is exec'd the same way), as runc does for itself:

- a clone of the interpreter's mount made with ``open_tree(OPEN_TREE_CLONE)`` and
  set read-only with ``mount_setattr`` (Linux 5.12+): no copy, and the mount is
  detached, so nothing in a container can remount it writable (it is in no mount
  namespace); any open for writing through it fails with EROFS;
- else a ``memfd`` copy sealed against writes, growth and shrinking (EPERM).

The descriptor is exec'd as ``/proc/self/fd/N`` with ``argv[0]`` the interpreter's
real path, so Python still finds its standard library.
"""

from __future__ import annotations

import ctypes
import os
import sys

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# System call numbers from 424 up are the same on every architecture but alpha.
_SYS_OPEN_TREE = 428
_SYS_MOUNT_SETATTR = 442
_OPEN_TREE_CLONE = 1
_OPEN_TREE_CLOEXEC = os.O_CLOEXEC
_AT_EMPTY_PATH = 0x1000
_AT_FDCWD = -100
_MOUNT_ATTR_RDONLY = 0x1
_MOUNT_ATTR_NOSUID = 0x2
_MOUNT_ATTR_NODEV = 0x4


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _syscall(*args) -> int:
    result = _libc.syscall(*args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def interpreter() -> str:
    """The real path of the running interpreter (what a sealed copy is made of)."""
    return os.path.realpath(sys.executable)


def read_only_clone(path: str) -> int:
    """An O_PATH descriptor of ``path`` on a detached, read-only clone of its mount."""
    fd = _syscall(_SYS_OPEN_TREE, _AT_FDCWD, os.fsencode(path), _OPEN_TREE_CLONE | _OPEN_TREE_CLOEXEC)
    attr = _MountAttr(attr_set=_MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOSUID | _MOUNT_ATTR_NODEV)
    try:
        _syscall(_SYS_MOUNT_SETATTR, fd, b"", _AT_EMPTY_PATH, ctypes.byref(attr), ctypes.sizeof(attr))
    except OSError:
        os.close(fd)
        raise
    return fd


def sealed_copy(path: str) -> int:
    """A memfd holding a copy of ``path``, sealed so nobody can change it."""
    import fcntl

    fd = os.memfd_create("pybuild-interpreter", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    with open(path, "rb") as src:
        size = os.fstat(src.fileno()).st_size
        done = 0
        while done < size:
            done += os.sendfile(fd, src.fileno(), done, size - done) or size
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    return fd


def sealed(path: str) -> int:
    """A close-on-exec descriptor to exec ``path`` from, never the writable file itself."""
    try:
        return read_only_clone(path)
    except OSError:  # kernel before 5.12, or no CAP_SYS_ADMIN
        return sealed_copy(path)
