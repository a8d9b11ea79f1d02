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

_CWD_LOCK = threading.Lock()


def _options(lowers: list[str], upper: str | None, work: str | None) -> tuple[str, str]:
    """``(cwd, data)``: lowerdirs (bottom first) relative to their common parent, so 100+
    layers fit in the one page the kernel takes; ``volatile`` as the runner's mounts
    (an upper dir is never reused after a crash: the layer is made durable as a blob)."""
    base = os.path.commonpath(lowers) if len(lowers) > 1 else os.path.dirname(lowers[0])
    data = "lowerdir=" + ":".join(os.path.relpath(p, base) for p in reversed(lowers))
    if upper is not None:
        data += f",upperdir={upper},workdir={work},volatile"
    if len(data) >= 4096:
        raise OSError(f"overlay options for {len(lowers)} layers exceed one page; use a shorter PYBUILD_ROOT")
    return base, data


def _mount(lowers: list[str], target: str, upper: str | None = None, work: str | None = None) -> None:
    base, data = _options(lowers, upper, work)
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
