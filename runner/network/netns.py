"""A container's network namespace as a bind-mounted file, so CNI plugins can enter it.

Made by this process with ``unshare(CLONE_NEWNET)`` and a bind mount of
``/proc/thread-self/ns/net`` (then ``setns`` back), so no helper process is spawned.
The file keeps the namespace alive after the container's processes are gone, so a
later teardown (even by another pybuild process) can still delete the interfaces in it.
"""

from __future__ import annotations

import errno
import os

from .. import syscalls as sc


def create(path: str) -> None:
    """A new, empty network namespace bound at ``path`` (``lo`` is brought up by pid 1)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.unshare(sc.CLONE_NEWNET)
        try:
            sc.mount("/proc/thread-self/ns/net", path, None, sc.MS_BIND)
        finally:
            sc.setns(own, sc.CLONE_NEWNET)
    finally:
        os.close(own)


def remove(path: str) -> None:
    """Unmount and delete ``path``; nothing to do if it is already gone."""
    try:
        sc.umount(path, sc.MNT_DETACH)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOENT):
            raise
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def is_mounted(path: str) -> bool:
    """Whether ``path`` still holds a namespace (a plain file otherwise)."""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except OSError:
        return False


def write_sysctls(path: str, values: dict[str, str]) -> None:
    """Set ``net.*`` sysctls of the namespace at ``path`` (``/proc/sys/net`` is per opener's namespace)."""
    from ..errors import RunError

    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(target, sc.CLONE_NEWNET)
        for key, value in values.items():
            try:
                with open("/proc/sys/" + key.replace(".", "/"), "w") as fh:
                    fh.write(value)
            except OSError as err:
                raise RunError(f"--sysctl {key}={value}: {(err.strerror or str(err)).lower()}") from None
    finally:
        sc.setns(own, sc.CLONE_NEWNET)
        os.close(own)
        os.close(target)
