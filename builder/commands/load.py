"""``pybuild load [-i FILE]``: read images from a docker-archive or OCI archive."""

from __future__ import annotations

import argparse
import shutil
import sys
from typing import TYPE_CHECKING, Iterator

from base.removal import remove_tree

if TYPE_CHECKING:
    from registry.store import Store


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", "--input", help="read from FILE instead of standard input")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def run(args: argparse.Namespace) -> int:
    from registry.errors import PybuildError
    from registry.store import disk_errors

    from ._common import open_store

    store = open_store(args)
    with store.transaction():
        spool = None
        path = args.input
        if path in (None, "-"):
            if sys.stdin.isatty():
                raise PybuildError("no archive given: use -i FILE or pipe one on standard input")
            spool = store.temp_dir("load")
            path = str(spool / "archive.tar")
        try:
            if spool is not None:
                with disk_errors("the archive from standard input", store.root), open(path, "wb") as out:
                    shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
            for line in load_archive(store, path):
                if not args.quiet:
                    print(line)
        finally:
            if spool is not None:
                remove_tree(spool, ignore_errors=True)
    return 0


def load_archive(store: Store, path: str) -> Iterator[str]:
    """Copy every image of the archive at ``path`` into the store (the caller holds its
    transaction); yields docker's line for each as it lands: its name, or its ID when unnamed."""
    from registry.archive import ArchiveReader
    from registry.image import StoreSink, copy_index

    with ArchiveReader(path) as reader:
        for image in reader.images(store):
            sink = StoreSink(store)
            copied = copy_index(image, sink, image.refs)  # an OCI archive's index stays whole
            for ref in image.refs:
                yield f"Loaded image: {ref.familiar()}"
            if not image.refs:
                assert sink.written is not None  # set by the copy that just finished
                yield f"Loaded image ID: {sink.written.digest if copied.is_index else store.image_at(sink.written).id}"
