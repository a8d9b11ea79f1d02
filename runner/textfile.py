"""Small text-file helpers shared by the runner (cgroup files, generated /etc files)."""

from __future__ import annotations


def read_text(path: str) -> str:
    """The file's text, or ``""`` if it cannot be read (missing, gone, no permission)."""
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""


def write_text(path: str, text: str) -> None:
    """Write (truncate) ``path`` with ``text``."""
    with open(path, "w") as fh:
        fh.write(text)
