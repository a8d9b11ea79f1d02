"""``pybuild rm``: remove containers (``-f`` stops running ones first)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    """``-f`` kills a running container before removing it."""
    parser.add_argument("-f", "--force", action="store_true", help="kill a running container, then remove it")
    parser.add_argument("containers", nargs="+", metavar="CONTAINER", help="container names or IDs")


def run(args: argparse.Namespace) -> int:
    """Remove each container's record, writable layer and logs."""
    from runner import containers, lifecycle

    for ref in args.containers:
        lifecycle.remove_container(containers.lookup(args.root, ref), args.force)
        print(ref)
    return 0
