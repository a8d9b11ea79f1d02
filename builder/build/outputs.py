"""``--output``/``-o``: where the built image goes, as buildx writes it.

``type=image`` (the default: the local store), ``type=registry`` (the store, then a push of
every ``-t`` name: ``--push``), ``type=local,dest=DIR`` (the final filesystem as files),
``type=tar,dest=FILE|-`` (the same as one tar), ``type=oci,dest=FILE|-`` and
``type=docker,dest=FILE|-`` (image archives).  A bare ``-o DIR`` is ``type=local,dest=DIR``
and ``-o -`` is ``type=tar,dest=-``, as in buildx.  The image is always built into the
store first; the exporters read it from there.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import BinaryIO

from base.removal import remove_tree
from registry.errors import PybuildError

KINDS = ("image", "registry", "local", "tar", "oci", "docker")


class OutputSpec:
    def __init__(self, kind: str, dest: str = "", name: str = "", push: bool = False):
        self.kind = kind
        self.dest = dest
        self.name = name  # type=image,name=... : extra tags
        self.push = push


def parse_output(text: str) -> OutputSpec:
    """Parse one ``-o`` value (buildx's CSV form or its shorthands)."""
    if "=" not in text:
        return OutputSpec("tar", "-") if text == "-" else OutputSpec("local", text)
    fields = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise PybuildError(f"invalid --output {text!r}: use type=KIND[,dest=PATH]")
        fields[key.strip()] = value.strip()
    kind = fields.pop("type", "local")
    if kind not in KINDS:
        raise PybuildError(f"invalid --output {text!r}: type must be one of {', '.join(KINDS)}")
    spec = OutputSpec(kind, fields.pop("dest", ""), fields.pop("name", ""),
                      fields.pop("push", "false").lower() == "true" or kind == "registry")
    if kind in ("local", "tar", "oci", "docker") and not spec.dest:
        raise PybuildError(f"invalid --output {text!r}: type={kind} needs dest=PATH")
    fields.pop("compression", None)
    fields.pop("oci-mediatypes", None)
    if fields:
        raise PybuildError(f"invalid --output {text!r}: unknown option {sorted(fields)[0]!r}")
    return spec


def write_output(spec: OutputSpec, store, image, tags: list[str]) -> None:
    """Export ``image`` (a stored image) as ``spec`` says (image/registry: nothing to write here)."""
    if spec.kind in ("local", "tar"):
        scratch = store.temp_dir("output")
        try:
            root = os.path.join(scratch, "fs")
            _flatten(store, image, root)
            if spec.kind == "local":
                _move_tree(root, spec.dest)
            else:
                with _open_dest(spec.dest) as out:
                    _write_tar(root, out)
        finally:
            remove_tree(scratch, ignore_errors=True)
    elif spec.kind in ("oci", "docker"):
        _write_archive(store, image, "oci-archive" if spec.kind == "oci" else "docker-archive", spec.dest,
                       spec.name or (tags[0] if tags else ""))


def _flatten(store, image, root: str) -> None:
    """Apply the image's layers in order into ``root`` (whiteouts applied)."""
    from registry.layer.extract import extract_layer  # noqa: PLC0415
    from registry.layer.stream import open_layer  # noqa: PLC0415

    os.makedirs(root)
    for layer in image.layers:
        with store.open_blob(layer.digest) as blob, open_layer(blob, layer.media_type) as stream:
            extract_layer(stream, root, whiteouts="apply", name=f"layer {layer.digest[:19]}")


def _move_tree(src: str, dest: str) -> None:
    os.makedirs(dest, exist_ok=True)
    for name in os.listdir(src):
        target = os.path.join(dest, name)
        if os.path.isdir(target) and not os.path.islink(target):
            remove_tree(target)
        elif os.path.lexists(target):
            os.unlink(target)
        os.rename(os.path.join(src, name), target)


class _Stdout:
    def __enter__(self) -> BinaryIO:
        return sys.stdout.buffer

    def __exit__(self, *exc) -> None:
        sys.stdout.buffer.flush()


def _open_dest(dest: str):
    if dest == "-":
        if sys.stdout.isatty():
            raise PybuildError("refusing to write a tar to a terminal; redirect stdout or use dest=FILE")
        return _Stdout()
    return open(dest, "wb")


def _write_tar(root: str, out: BinaryIO) -> None:
    """A tar of ``root`` with entries in sorted order (names relative, no leading ./)."""
    import tarfile  # noqa: PLC0415

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                path = os.path.join(dirpath, name)
                tar.add(path, arcname=os.path.relpath(path, root), recursive=False)


def _write_archive(store, image, kind: str, dest: str, name: str) -> None:
    from registry.remote.locations import Location, copy_between  # noqa: PLC0415

    if dest != "-":
        copy_between(store, Location("store", name=image.descriptor.digest), Location(kind, dest, name))
        return
    scratch = store.temp_dir("output")
    try:
        path = os.path.join(scratch, "image.tar")
        copy_between(store, Location("store", name=image.descriptor.digest), Location(kind, path, name))
        with open(path, "rb") as fh, _open_dest("-") as out:
            shutil.copyfileobj(fh, out, 1 << 20)
    finally:
        remove_tree(scratch, ignore_errors=True)
