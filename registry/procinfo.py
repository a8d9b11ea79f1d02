"""What /proc says about a process: its start time (to tell it from a reused pid) and liveness."""

from __future__ import annotations

import os

_boot_time: float | None = None


def _stat_fields(pid: int) -> list[bytes] | None:
    """Fields of /proc/PID/stat after the command name (field 3 onwards), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return data.rsplit(b")", 1)[1].split()


def proc_start_time(pid: int) -> str | None:
    """A process's start time (clock ticks since boot), to tell it from a reused pid."""
    fields = _stat_fields(pid)
    return None if fields is None else fields[19].decode()


def alive(pid: int | None, start: str | None) -> bool:
    """Whether ``pid`` still runs (not a zombie) and is the process that started at ``start``."""
    fields = _stat_fields(pid) if pid else None
    return fields is not None and fields[19].decode() == start and fields[0] != b"Z"


def started_at(start: str) -> float:
    """A start time from :func:`proc_start_time` in seconds since the epoch (to within a second)."""
    global _boot_time
    if _boot_time is None:
        with open("/proc/stat", "rb") as fh:
            _boot_time = next(float(line.split()[1]) for line in fh if line.startswith(b"btime "))
    return _boot_time + int(start) / os.sysconf("SC_CLK_TCK")
