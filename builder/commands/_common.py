"""Helpers shared by the image commands: opening the store, human-readable output."""

from __future__ import annotations

import datetime as _dt
import sys
import time

from registry.store import Store


def open_store(args) -> Store:
    """The store under ``--root``."""
    return Store(args.root)


def human_size(size: int) -> str:
    """Sizes as docker prints them (decimal units): ``4.86MB``."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.3g}{unit}" if unit != "B" else f"{int(value)}B"
        value /= 1000
    raise AssertionError("unreachable")


def parse_time(text: str | None) -> float | None:
    """An RFC 3339 timestamp as seconds since the epoch (``None`` when absent or bad)."""
    if not text:
        return None
    try:
        return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def time_ago(text: str | None) -> str:
    """``3 minutes ago`` style, as docker prints creation times."""
    when = parse_time(text)
    if when is None:
        return "N/A"
    seconds = max(0, time.time() - when)
    for unit, length in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400), ("day", 86400),
                         ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = int(seconds // length)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "Less than a minute ago" if seconds >= 1 else "Less than a second ago"


def print_table(rows: list[list[str]], headers: list[str]) -> None:
    """Left-aligned columns separated by three spaces, like docker's tables."""
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    for row in [headers] + rows:
        line = "   ".join(str(cell).ljust(width) for cell, width in zip(row, widths))
        sys.stdout.write(line.rstrip() + "\n")


def short_id(digest: str) -> str:
    """The 12-hex-digit image ID docker shows."""
    return digest.split(":", 1)[-1][:12]
