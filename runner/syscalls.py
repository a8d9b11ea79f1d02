"""ctypes bindings to the Linux system calls the sandbox needs.

Python 3.11 has no ``os.unshare``/``os.setns``/``mount``; these wrappers call libc
directly and raise :class:`OSError` with the real ``errno`` on failure.  Only
``ctypes`` is imported: this module sits on the ``pybuild run`` fast path.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)

# unshare(2)/setns(2)/clone(2) flags
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24

# umount2(2) flags
MNT_DETACH = 2

# prctl(2) options
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# System call numbers glibc has no wrapper for, per architecture (``platform.machine()``,
# read as ``os.uname().machine``: the same string without importing platform on the run path).
# x86_64 has its own table; aarch64, riscv64 and the other newer ports share the
# generic one (asm-generic/unistd.h); calls added since 5.1 have one number everywhere.
SYSCALL_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": {"pivot_root": 155, "close_range": 436},
    "aarch64": {"pivot_root": 41, "close_range": 436},
    "riscv64": {"pivot_root": 41, "close_range": 436},
}


def syscall_numbers(machine: str) -> dict[str, int]:
    """The numbers for ``machine``; an unknown architecture is a clear error, not a wrong call."""
    try:
        return SYSCALL_NUMBERS[machine]
    except KeyError:
        raise OSError(f"unsupported architecture {machine!r}: pybuild knows the system calls of "
                      f"{', '.join(sorted(SYSCALL_NUMBERS))}") from None


_NUMBERS = SYSCALL_NUMBERS.get(os.uname().machine, {})
CLOSE_RANGE_CLOEXEC = 4

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _check(result: int, what: str, path: str | None = None) -> int:
    if result == -1:
        err = ctypes.get_errno()
        if path is not None:
            raise OSError(err, f"{what}: {os.strerror(err)}", path)
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long


def _b(value: str | bytes | os.PathLike | None) -> bytes | None:
    if value is None:
        return None
    return os.fsencode(value)


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces (``CLONE_NEW*`` flags)."""
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace that ``fd`` (an open ``/proc/PID/ns/X``) refers to."""
    _check(_libc.setns(fd, nstype), "setns")


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0, data: str | None = None) -> None:
    """mount(2); ``data`` is the comma-separated option string."""
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {fstype or 'bind'}", target)


def umount(target: str, flags: int = 0) -> None:
    """umount2(2)."""
    _check(_libc.umount2(_b(target), flags), "umount", target)


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2) (glibc has no wrapper)."""
    number = _NUMBERS.get("pivot_root") or syscall_numbers(os.uname().machine)["pivot_root"]
    _check(_libc.syscall(number, _b(new_root), _b(put_old)), "pivot_root", new_root)


def close_range(first: int, last: int = 0xFFFFFFFF, cloexec: bool = False) -> None:
    """Close (or mark close-on-exec) fds ``first..last`` in one syscall, whatever RLIMIT_NOFILE."""
    flags = CLOSE_RANGE_CLOEXEC if cloexec else 0
    number = _NUMBERS.get("close_range") or syscall_numbers(os.uname().machine)["close_range"]
    _check(_libc.syscall(number, ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags)), "close_range")


def sethostname(name: str) -> None:
    """Set the UTS namespace's hostname."""
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2)."""
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_libc.capget.argtypes = [ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData)]
_libc.capset.argtypes = [ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData)]


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) capability masks of ``pid`` (0: this thread)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(header), data), "capget")
    join = lambda name: getattr(data[0], name) | (getattr(data[1], name) << 32)  # noqa: E731
    return join("effective"), join("permitted"), join("inheritable")


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's effective, permitted and inheritable capability masks."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(header), data), "capset")

