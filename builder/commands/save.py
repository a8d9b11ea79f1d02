"""``pybuild save [-o FILE] [--format docker|oci] NAME...``: write images to an archive."""

from __future__ import annotations

import argparse
import os
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", metavar="IMAGE")
    parser.add_argument("-o", "--output", help="write to FILE instead of standard output")
    parser.add_argument("--format", choices=["docker", "oci"], default="docker",
                        help="docker-archive (what 'docker load' reads; default) or OCI archive")


def run(args: argparse.Namespace) -> int:
    from registry.archive import ArchiveWriter
    from registry.errors import PybuildError
    from registry.reference import parse

    from ._common import open_store

    store = open_store(args)
    images = []
    for name in args.names:
        image = store.image(name)
        try:
            ref = parse(name)
        except PybuildError:
            ref = None
        if ref is not None and ref.digest is None and any(r == ref for r, _ in store.entries()):
            refs = [ref]
        else:
            refs = [r for r, d in store.entries() if r is not None and d.digest == image.descriptor.digest]
        images.append((image, refs))
    if args.output is None and sys.stdout.isatty():
        raise PybuildError("refusing to write an archive to a terminal; use -o FILE or redirect standard output")
    fmt = "oci-archive" if args.format == "oci" else "docker-archive"
    target = args.output
    temp = f"{target}.tmp-{os.getpid()}" if target else None
    try:
        with (open(temp, "wb") if temp else os.fdopen(os.dup(sys.stdout.fileno()), "wb")) as out:
            writer = ArchiveWriter(store, out, fmt)
            for image, refs in images:
                writer.add(image, refs)
            writer.close()
        if temp:
            os.replace(temp, target)
    finally:
        if temp and os.path.exists(temp):
            os.unlink(temp)
    return 0
