"""``pybuild stop``: stop running containers (StopSignal, then SIGKILL after a timeout)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    """``-t`` seconds to wait before SIGKILL."""
    parser.add_argument("-t", "--time", type=float, default=10, help="seconds to wait before killing (default 10)")
    parser.add_argument("containers", nargs="+", metavar="CONTAINER", help="container names or IDs")


def run(args: argparse.Namespace) -> int:
    """Stop each container; print its name as given."""
    from runner import containers, lifecycle

    for ref in args.containers:
        lifecycle.stop(containers.lookup(args.root, ref), args.time)
        print(ref)
    return 0
