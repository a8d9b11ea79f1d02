"""Where blobs are known to live remotely, for cross-repository mounts.

Pulls and pushes record ``digest -> registry/repository``; a later push of the
same blob to another repository of that registry asks the registry to mount it
from there instead of uploading it again (docker keeps the same record).  One
small append-only file per digest under ``$ROOT/distribution``; stale lines only
cost a failed mount attempt.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

MAX_REPOSITORIES = 8


class BlobOrigins:
    """A ``digest -> {registry/repository}`` record under one pybuild root."""

    def __init__(self, root: str | os.PathLike[str]):
        self.dir = Path(root) / "distribution" / "sha256"

    def _path(self, digest: str) -> Path:
        return self.dir / digest.split(":", 1)[-1]

    def add(self, digests: Iterable[str], registry: str, repository: str) -> None:
        """Record that ``registry/repository`` holds each of ``digests``."""
        self.dir.mkdir(parents=True, exist_ok=True)
        line = f"{registry}/{repository}"
        for digest in digests:
            path = self._path(digest)
            known = self._lines(path)
            if line in known:
                continue
            if len(known) >= MAX_REPOSITORIES:
                known = known[1:] + [line]
                tmp = path.with_name(path.name + f".{os.getpid()}")
                tmp.write_text("".join(f"{k}\n" for k in known))
                os.replace(tmp, path)
                continue
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{line}\n".encode())
            finally:
                os.close(fd)

    def repositories(self, digest: str, registry: str) -> list[str]:
        """Repositories of ``registry`` known to hold ``digest``, most recent first."""
        prefix = registry + "/"
        return [line[len(prefix):] for line in reversed(self._lines(self._path(digest))) if line.startswith(prefix)]

    def locations(self, digest: str) -> list[tuple[str, str]]:
        """Every ``(registry, repository)`` known to hold ``digest``, most recent first."""
        return [tuple(line.split("/", 1)) for line in reversed(self._lines(self._path(digest)))  # type: ignore[misc]
                if "/" in line]

    @staticmethod
    def _lines(path: Path) -> list[str]:
        try:
            return [line for line in path.read_text().splitlines() if line]
        except FileNotFoundError:
            return []
