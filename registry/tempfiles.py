"""Temp files named after the process that made them, and the sweep of what dead ones left.

A temp name ends in ``-<pid>-<random>``.  ``kill -9`` (or a crash, or a power cut)
leaves it behind; the next command that writes to the same place removes it.  An
entry is left by a dead process when no process has its pid, or when the process
that has that pid now started after the entry's inode last changed (the pid was reused;
the ctime, since an extractor may set an old mtime on a temp dir it fills).
The sweep is one ``scandir`` and, per entry, one ``kill(pid, 0)``: cheap enough to
run in every command that writes (see docs/performance.md).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

_CLOCK_SLACK = 2.0  # seconds: /proc/stat's boot time is whole seconds


def temp_name(prefix: str) -> str:
    """``<prefix>-<our pid>-<random>``: a name the sweep can attribute to this process."""
    return f"{prefix}-{os.getpid()}-{os.urandom(6).hex()}"


def owner_pid(name: str) -> int | None:
    """The pid a temp name carries, or None for a name that is not ours."""
    parts = name.split("-")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None


class _Processes:
    """Which pids are alive, and since when (read once per sweep, only when needed)."""

    def __init__(self) -> None:
        self._boot: float | None = None
        self._tick = os.sysconf("SC_CLK_TCK")

    def started_after(self, pid: int, when: float) -> bool:
        """True when the live process ``pid`` started after ``when`` (so it made nothing older)."""
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return False
        start_ticks = int(stat.rsplit(b")", 1)[1].split()[19])
        if self._boot is None:
            with open("/proc/stat", "rb") as f:
                self._boot = next(float(line.split()[1]) for line in f if line.startswith(b"btime "))
        return self._boot + start_ticks / self._tick > when + _CLOCK_SLACK

    @staticmethod
    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def sweep(directory: Path, *, prefix: str = "", unnamed_after: float | None = None) -> list[Path]:
    """Remove entries of ``directory`` (whose names start with ``prefix``) left by dead processes.

    ``unnamed_after``: also remove entries without a pid that were not changed for that
    many seconds.  Returns what was removed.
    """
    removed: list[Path] = []
    processes = _Processes()
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
            dead = pid != os.getpid() and (not processes.alive(pid) or processes.started_after(pid, changed))
        if dead:
            remove(Path(entry.path))
            removed.append(Path(entry.path))
    return removed


def remove(path: Path) -> None:
    """Remove a file or a directory tree; what is already gone is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
