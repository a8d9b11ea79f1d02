"""File descriptors a forked container monitor must not inherit.

Handler threads fork the runner's detached monitors; a fork copies every fd of the
service.  A monitor that kept a client's socket would hold the connection open after
the service closed it, one that kept an attach's stdin FIFO would never let the
container see EOF, and one that kept the listening socket would hold its port.
"""

from __future__ import annotations

import os
import threading

_FDS: set[int] = set()
_LOCK = threading.Lock()


def hide(fd: int) -> None:
    """Close ``fd`` in every child forked from now on (until :func:`release`)."""
    with _LOCK:
        _FDS.add(fd)


def release(fd: int) -> None:
    with _LOCK:
        _FDS.discard(fd)


def _close_in_child() -> None:
    for fd in list(_FDS):
        try:
            os.close(fd)
        except OSError:
            pass
    _FDS.clear()


os.register_at_fork(after_in_child=_close_in_child)
