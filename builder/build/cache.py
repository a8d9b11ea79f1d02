"""The build cache: step keys and their records under ``$ROOT/cache/steps/``.

A key is ``sha256(parent key, step description)``; the description holds the
expanded instruction, the build args it sees and, for COPY/ADD, the checksums of
its sources (content and metadata, never mtimes).  A base image's key is its config
digest, so a key chain pins everything below it.  A record says what the step made:
its layer descriptor and diff_id (or none for an empty layer) and the history
``created`` time, so a cached rebuild yields the same config and image ID.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from registry.errors import PybuildError


def step_key(parent: str, description: Any) -> str:
    """The cache key of a step on top of ``parent`` (a hex digest)."""
    blob = json.dumps(description, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{parent}\n{blob}".encode("utf-8", "surrogateescape")).hexdigest()


class BuildCache:
    """Records of finished layer steps, one small JSON file per key."""

    def __init__(self, root: str | os.PathLike[str]):
        self.dir = Path(root) / "cache" / "steps"

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / key

    def get(self, key: str) -> dict[str, Any] | None:
        """The record for ``key``, or None."""
        try:
            with open(self._path(key), "rb") as fh:
                return json.loads(fh.read())
        except (OSError, ValueError):
            return None

    def put(self, key: str, record: dict[str, Any]) -> None:
        """Store a record atomically (a concurrent writer of the same key is harmless)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{key}.{os.getpid()}.{id(record)}")
        with open(tmp, "w") as fh:
            json.dump(record, fh, sort_keys=True)
        os.replace(tmp, path)

    def mount_dir(self, cache_id: str) -> Path:
        """The persistent directory of a ``RUN --mount=type=cache`` id."""
        digest = hashlib.sha256(cache_id.encode()).hexdigest()[:32]
        return Path(self.dir).parent / "mounts" / digest


class CacheBlobMissing(PybuildError):
    """A cached layer could not be fetched; ``keys`` are the steps that must run instead."""

    def __init__(self, message: str, keys: set[str]):
        super().__init__(message)
        self.keys = keys
