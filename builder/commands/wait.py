"""``pybuild wait``: block until containers stop, then print their exit codes."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    """One or more containers."""
    parser.add_argument("containers", nargs="+", metavar="CONTAINER", help="container names or IDs")


def run(args: argparse.Namespace) -> int:
    """Print each container's exit code once it has exited."""
    from runner import containers, lifecycle

    for ref in args.containers:
        container = containers.lookup(args.root, ref)
        lifecycle.wait_exit(container)
        print(container.state.get("exit_code", containers.CRASHED_EXIT_CODE))
    return 0
