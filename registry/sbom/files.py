"""The final content of selected files of an image, read straight from its layers.

Layers are read bottom-up as tar streams (any compression); a later layer's file
replaces an earlier one, ``.wh.NAME`` removes a path and what is under it,
``.wh..wh..opq`` empties a directory of lower layers' content.  Only paths the caller
wants are kept, each up to ``max_size`` bytes (larger ones are skipped, not cut), all
together up to ``max_total`` (beyond, the image is refused), so a hostile image cannot
make the reader hold more than it asked for.
"""

from __future__ import annotations

import posixpath
from typing import Callable

from ..errors import PybuildError
from ..image import ImageSource
from ..layer import tarformat as tf
from ..layer.stream import open_layer
from ..layer.tarreader import TarReader
from ..layer.tarwriter import OPAQUE_MARKER, WHITEOUT_PREFIX

Wanted = Callable[[str], bool]


def image_files(source: ImageSource, wanted: Wanted, max_size: int = 32 << 20,
                max_total: int = 256 << 20) -> dict[str, bytes]:
    """``{path: content}`` (paths relative, without a leading ``/``) of the wanted files."""
    manifest = source.manifest()
    files: dict[str, bytes] = {}
    for desc in manifest.blobs()[1:]:
        with source.open_blob(desc) as blob, open_layer(blob, desc.media_type) as stream:
            _apply_layer(TarReader(stream, f"layer {desc.digest[:19]}"), files, wanted, max_size, max_total)
    return files


def _apply_layer(reader: TarReader, files: dict[str, bytes], wanted: Wanted, max_size: int, max_total: int) -> None:
    gone: list[str] = []  # whiteouts and non-regular entries: the path and what is under it
    emptied: list[str] = []  # opaque directories: what is under them
    added: dict[str, bytes] = {}
    held = sum(map(len, files.values()))
    lower = set(files) | _parents(files)
    for entry in reader:
        path = _normal(entry.name.decode("utf-8", "surrogateescape"))
        if path is None or entry.typeflag == tf.DIRECTORY:
            continue
        parent, base = posixpath.split(path)
        if base.encode() == OPAQUE_MARKER:
            emptied.append(parent)
        elif base.encode().startswith(WHITEOUT_PREFIX):
            gone.append(posixpath.join(parent, base[len(WHITEOUT_PREFIX):]))
        elif entry.typeflag == tf.REGULAR and wanted(path) and entry.size <= max_size:
            held += entry.size
            if held > max_total:
                raise PybuildError(f"the image records more than {max_total >> 20} MiB of package metadata; "
                                   f"refusing to read it")
            added[path] = b"".join(reader.chunks())
        elif entry.typeflag == tf.HARDLINK and wanted(path):
            target = _normal(entry.linkname.decode("utf-8", "surrogateescape"))
            if target is not None and (target in added or target in files):
                added[path] = added.get(target, files.get(target, b""))
        elif path in lower:  # a link, device or unwanted file now stands where a wanted file was
            gone.append(path)
            added.pop(path, None)
    for path in list(files):
        if any(_under(path, d) for d in emptied) or any(path == g or _under(path, g) for g in gone):
            del files[path]
    files.update(added)


def _parents(files: dict[str, bytes]) -> set[str]:
    out = set()
    for path in files:
        while (path := posixpath.dirname(path)):
            out.add(path)
    return out


def _under(path: str, directory: str) -> bool:
    return not directory or path.startswith(directory + "/")


def _normal(name: str) -> str | None:
    """``./a//b/`` → ``a/b``; None for the root or a path that climbs out."""
    path = posixpath.normpath("/" + name).lstrip("/")
    return path or None
