"""``pybuild rm``: remove containers (``-f`` stops running ones first)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    """``-f`` kills a running container before removing it."""
    parser.add_argument("-f", "--force", action="store_true", help="kill a running container, then remove it")
    parser.add_argument("containers", nargs="+", metavar="CONTAINER", help="container names or IDs")


def run(args: argparse.Namespace) -> int:
    """Remove each container's record, writable layer and logs."""
    from registry.errors import PybuildError
    from runner import containers, lifecycle

    for ref in args.containers:
        container = containers.lookup(args.root, ref)
        if container.running or container.state.get("status") == "restarting":
            if not args.force:
                raise PybuildError(f"container {container.name} is running: stop it first or use rm -f")
            lifecycle.mark_stopped(container)
            container.cgroup().kill_all()
            lifecycle.wait_exit(container)
        if containers.refresh(container) is not None:
            containers.remove(container)
        print(ref)
    return 0
