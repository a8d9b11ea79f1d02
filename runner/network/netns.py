"""A container's network namespace as a bind-mounted file, so CNI plugins can enter it.

Made by this process with ``unshare(CLONE_NEWNET)`` and a bind mount of
``/proc/thread-self/ns/net`` (then ``setns`` back), so no helper process is spawned.
The file keeps the namespace alive after the container's processes are gone, so a
later teardown (even by another pybuild process) can still delete the interfaces in it.
"""

from __future__ import annotations

import errno
import os

from base import rootless

from .. import syscalls as sc


def create(path: str) -> None:
    """A new, empty network namespace bound at ``path`` (``lo`` is brought up by pid 1)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    if rootless.active():
        _create_in_child(path)
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.unshare(sc.CLONE_NEWNET)
        try:
            sc.mount("/proc/thread-self/ns/net", path, None, sc.MS_BIND)
        finally:
            sc.setns(own, sc.CLONE_NEWNET)
    finally:
        os.close(own)


def _create_in_child(path: str) -> None:
    """Rootless: a user namespace may not ``setns`` back into the host's network namespace
    (its owner is the initial user namespace), so a child makes the namespace and binds it."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            sc.unshare(sc.CLONE_NEWNET)
            sc.mount("/proc/self/ns/net", path, None, sc.MS_BIND)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError(f"cannot create a network namespace at {path}")


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
    if not values:
        return
    if rootless.active():  # no way back to the host's namespace: a thread goes in and ends there
        import threading

        errors: list[BaseException] = []

        def write() -> None:
            try:
                _write_sysctls(path, values, back=False)
            except BaseException as err:  # noqa: BLE001 - handed to the caller
                errors.append(err)

        thread = threading.Thread(target=write)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]
        return
    _write_sysctls(path, values, back=True)


def _write_sysctls(path: str, values: dict[str, str], back: bool) -> None:
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
        if back:
            sc.setns(own, sc.CLONE_NEWNET)
        os.close(own)
        os.close(target)
