"""Temp files named after the process that made them, and the sweep of what dead ones left.

A temp name ends in ``-<pid>-<random>``.  ``kill -9`` (or a crash, or a power cut)
leaves it behind; the next command that writes to the same place removes it.  An
entry is left by a dead process when no process has its pid, or when the process
that has that pid now started after the entry's inode last changed (the pid was reused;
the ctime, since an extractor may set an old mtime on a temp dir it fills).
The sweep is one ``scandir`` and, per entry, one read of ``/proc/PID/stat``: cheap
enough to run in every command that writes (about 10 µs for an empty directory).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from base.removal import remove_tree

from .procinfo import alive, proc_start_time, started_at

_CLOCK_SLACK = 2.0  # seconds: /proc/stat's boot time is whole seconds


def temp_name(prefix: str) -> str:
    """``<prefix>-<our pid>-<random>``: a name the sweep can attribute to this process."""
    return f"{prefix}-{os.getpid()}-{os.urandom(6).hex()}"


def owner_pid(name: str) -> int | None:
    """The pid a temp name carries, or None for a name that is not ours."""
    parts = name.split("-")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None


def _left_by_dead_process(pid: int, changed: float) -> bool:
    """No process has ``pid`` (or only a zombie), or the one that has it started after ``changed``."""
    if pid == os.getpid():
        return False
    start = proc_start_time(pid)
    if start is None or not alive(pid, start):
        return True
    return started_at(start) > changed + _CLOCK_SLACK


def sweep(directory: Path, *, prefix: str = "", unnamed_after: float | None = None) -> list[Path]:
    """Remove entries of ``directory`` (whose names start with ``prefix``) left by dead processes.

    ``unnamed_after``: also remove entries without a pid that were not changed for that
    many seconds.  Returns what was removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        try:
            changed = entry.stat(follow_symlinks=False).st_ctime
        except FileNotFoundError:
            continue
        pid = owner_pid(entry.name)
        if pid is None:
            dead = unnamed_after is not None and time.time() - changed > unnamed_after
        else:
            dead = _left_by_dead_process(pid, changed)
        if dead:
            remove(Path(entry.path))
            removed.append(Path(entry.path))
    return removed


def remove(path: Path) -> None:
    """Remove a file or a directory tree; what is already gone is fine."""
    if path.is_dir() and not path.is_symlink():
        remove_tree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
