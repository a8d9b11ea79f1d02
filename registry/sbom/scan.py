"""The SBOM of one image from any :class:`~registry.image.ImageSource` (store, registry, archive)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from ..image import ImageSource
from .files import image_files
from .packages import os_release, read_packages, wanted
from .spdx import document


def image_sbom(source: ImageSource, name: str) -> dict[str, Any]:
    """The SPDX 2.3 document of the image ``source`` gives, described under ``name``."""
    manifest = source.manifest()
    with source.open_blob(manifest.blobs()[0]) as stream:
        config = json.loads(stream.read(4 << 20))
    files = image_files(source, wanted)
    return document(name, manifest.digest, spdx_time(config.get("created")), read_packages(files),
                    os_release(files))


def spdx_time(text: str | None) -> str:
    """An RFC 3339 time as SPDX writes it (``YYYY-MM-DDThh:mm:ssZ``, UTC); the epoch when absent."""
    if not text:
        return "1970-01-01T00:00:00Z"
    try:
        when = dt.datetime.fromisoformat(re.sub(r"\.\d+", "", text).replace("Z", "+00:00"))
    except ValueError:
        return "1970-01-01T00:00:00Z"
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
