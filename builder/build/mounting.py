"""Overlay mounts in the builder's own mount namespace, for COPY/ADD/WORKDIR steps and
read-only views of stages (``COPY --from``, ``RUN --mount=type=bind,from=``).

The overlay option string uses lowerdirs relative to their common parent, which needs
a ``chdir``: a process-wide change, so mounts are serialised by a lock while other
threads only use absolute paths.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

from runner import syscalls as sc
from runner.overlay import overlay_options

_CWD_LOCK = threading.Lock()


def _mount(lowers: list[str], target: str, upper: str | None = None, work: str | None = None) -> None:
    base, data = overlay_options(lowers, upper, work)
    with _CWD_LOCK:
        old = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.chdir(base)
            sc.mount("overlay", target, "overlay", 0, data)
        finally:
            os.fchdir(old)
            os.close(old)


@contextlib.contextmanager
def writable(lowers: list[str], scratch: str) -> Iterator[tuple[str, str]]:
    """Mount ``lowers`` (bottom first) + a fresh upper under ``scratch``: ``(merged, upper)``."""
    upper, work, merged, empty = (os.path.join(scratch, n) for n in ("upper", "work", "merged", "empty"))
    for d in (upper, work, merged, empty):
        os.makedirs(d, exist_ok=True)
    os.chmod(upper, 0o755)
    _mount(lowers or [empty], merged, upper, work)
    try:
        yield merged, upper
    finally:
        sc.umount(merged, sc.MNT_DETACH)


def readonly(lowers: list[str], target: str) -> None:
    """Mount ``lowers`` read-only at ``target`` (an extra empty lower: overlay needs two)."""
    empty = target + ".empty"
    os.makedirs(empty, exist_ok=True)
    os.makedirs(target, exist_ok=True)
    _mount([empty, *lowers], target)


def unmount(target: str) -> None:
    """Lazily unmount ``target``; ignore it if it was not mounted."""
    with contextlib.suppress(OSError):
        sc.umount(target, sc.MNT_DETACH)
