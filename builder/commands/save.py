"""``pybuild save [-o FILE] [--format docker|oci] NAME...``: write images to an archive."""

from __future__ import annotations

import argparse
import os
import sys
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry.reference import Reference
    from registry.store import Store


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", metavar="IMAGE")
    parser.add_argument("-o", "--output", help="write to FILE instead of standard output")
    parser.add_argument("--format", choices=["docker", "oci"], default="docker",
                        help="docker-archive (what 'docker load' reads; default) or OCI archive")
    parser.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                        help="the platform a docker-archive holds of a multi-platform image (default: the host's)")


def run(args: argparse.Namespace) -> int:
    from registry.errors import PybuildError

    from ._common import open_store

    store = open_store(args)
    images = resolve_images(store, args.names)
    if args.output is None and sys.stdout.isatty():
        raise PybuildError("refusing to write an archive to a terminal; use -o FILE or redirect standard output")
    fmt = "oci-archive" if args.format == "oci" else "docker-archive"
    target = args.output
    temp = f"{target}.tmp-{os.getpid()}" if target else None
    try:
        with (open(temp, "wb") if temp else os.fdopen(os.dup(sys.stdout.fileno()), "wb")) as out:
            for note in write_archive(store, images, out, fmt, args.platform):
                print(note, file=sys.stderr)
        if temp:
            os.replace(temp, target)
    finally:
        if temp and os.path.exists(temp):
            os.unlink(temp)
    return 0


def resolve_images(store: Store, names: list[str]) -> list[tuple[Any, list[Reference]]]:
    """Each name's image (or multi-platform index) and the references it is saved under;
    an unknown name fails here, before any byte of the archive is written."""
    from registry import oci
    from registry.errors import PybuildError
    from registry.reference import parse

    images = []
    for name in names:
        top = store.resolve(name)
        image = top if top.media_type in oci.INDEX_TYPES else store.image_at(top)
        try:
            ref = parse(name)
        except PybuildError:
            ref = None
        if ref is not None and ref.digest is None and any(r == ref for r, _ in store.entries()):
            refs = [ref]
        else:
            refs = [r for r, d in store.entries() if r is not None and d.digest == top.digest]
        images.append((image, refs))
    return images


def write_archive(store: Store, images: list[tuple[Any, list[Reference]]], out: IO[bytes], fmt: str,
                  platform: str | None = None) -> list[str]:
    """Write ``images`` (from :func:`resolve_images`) as one archive to ``out``; returns
    notes for the user (which platform of a multi-platform image a docker-archive holds)."""
    from registry import oci
    from registry.archive import ArchiveWriter
    from registry.platform import of_config

    notes = []
    writer = ArchiveWriter(store, out, fmt)
    for image, refs in images:
        if isinstance(image, oci.Descriptor):  # a multi-platform image: its index
            chosen = writer.add_index(image, refs, platform)
            if chosen is not None:
                notes.append(f"{_name(refs, image)} is a multi-platform image; a docker-archive holds one platform: "
                             f"saved {of_config(chosen.config)} (use --format oci to save every platform)")
        else:
            writer.add(image, refs)
    writer.close()
    return notes


def _name(refs, desc) -> str:
    return refs[0].familiar() if refs else desc.digest
