"""``pybuild stop``: stop running containers (StopSignal, then SIGKILL after a timeout)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    """``-t`` seconds to wait before SIGKILL."""
    parser.add_argument("-t", "--time", type=float, help="seconds to wait before killing (default: the container's "
                        "--stop-timeout, else 10)")
    parser.add_argument("containers", nargs="+", metavar="CONTAINER", help="container names or IDs")


def run(args: argparse.Namespace) -> int:
    """Stop each container; print its name as given."""
    from runner import containers, lifecycle

    for ref in args.containers:
        container = containers.lookup(args.root, ref)
        timeout = args.time if args.time is not None else container.config.get("stop_timeout")
        lifecycle.stop(container, 10 if timeout is None else timeout)
        print(ref)
    return 0
