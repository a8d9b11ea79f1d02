"""Removing a tree that an image, a build or a container made.

``shutil.rmtree`` works on fds and never follows a symlink, but it recurses in Python, so
a hostile image with directories nested deeper than the recursion limit would end the
command in a traceback. Such a tree is handed to ``rm -rf`` (coreutils' fts walks it
without recursion and without following symlinks either).
"""

from __future__ import annotations

import os


def remove_tree(path: str | bytes | os.PathLike[str], *, dir_fd: int | None = None, ignore_errors: bool = False) -> None:
    """``rm -rf path`` (relative to ``dir_fd`` when given), whatever its depth."""
    import shutil  # noqa: PLC0415 (shutil pulls in bz2, lzma and zlib: not on the run path's start)

    try:
        shutil.rmtree(path, ignore_errors=ignore_errors, dir_fd=dir_fd)
    except RecursionError:
        _rm_rf(path, dir_fd, ignore_errors)


def _rm_rf(path: str | bytes | os.PathLike[str], dir_fd: int | None, ignore_errors: bool) -> None:
    import subprocess  # noqa: PLC0415 (rare: only for trees deeper than the recursion limit)

    name = os.fsdecode(path)
    target = name if dir_fd is None else f"/proc/self/fd/{dir_fd}/{name}"
    proc = subprocess.run(["rm", "-rf", "--", target], pass_fds=() if dir_fd is None else (dir_fd,),
                          capture_output=True)
    if proc.returncode and not ignore_errors:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise OSError(f"cannot remove {name}: {message[-1] if message else 'rm failed'}")
