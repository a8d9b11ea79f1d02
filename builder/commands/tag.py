"""``pybuild tag SRC DST``: give an image another name."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    parser.add_argument("target", metavar="TARGET_IMAGE[:TAG]")


def run(args: argparse.Namespace) -> int:
    from registry.reference import parse

    from ._common import open_store

    store = open_store(args)
    target = parse(args.target)
    if target.digest:
        from registry.errors import InvalidReference

        raise InvalidReference(f"cannot tag with a digest: {args.target!r}; use NAME[:TAG]")
    store.tag(target, store.resolve(args.source))
    return 0
